"""Schemathesis hooks shared by tests/fuzz and a full, unbounded run against a live server.

The full run: start a server with authentication and no trial execution (the fuzzer writes
commands into studies), seed it, then run every phase over every operation but the streams:

    TUNELAB_AUTH=required TUNELAB_ADMIN_TOKEN=$TOKEN TUNELAB_RUN_TRIALS=false \
        tunelab serve --port 8617 &
    SCHEMATHESIS_HOOKS=tests.fuzz.hooks .venv/bin/schemathesis run \
        http://127.0.0.1:8617/openapi.json -H "Authorization: Bearer $TOKEN" -w 1 \
        --phases coverage,fuzzing,stateful \
        --exclude-operation-id all_events_api_v1_events_get \
        --exclude-operation-id study_events_api_v1_studies__study_id__events_get \
        -c not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,error_names_its_field

(`-w 1`: with several workers, Python 3.11's parser can fail inside the generator when
threads parse at once; the run reports that as a runtime error of schemathesis itself.)
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

# Server-sent event streams never end: a fuzzer that reads a whole body would wait forever.
# tests/live covers them.
STREAM_OPERATIONS = (
    "all_events_api_v1_events_get",
    "study_events_api_v1_studies__study_id__events_get",
)


@schemathesis.check
def error_names_its_field(ctx: Any, response: Any, case: Any) -> bool | None:
    """Our error contract: a 4xx JSON body is {"detail", "field"} with a field."""
    if 400 <= response.status_code < 500:
        body = response.json()
        if not isinstance(body, dict) or not body.get("field") or "detail" not in body:
            raise AssertionError(f"a {response.status_code} without a field: {body!r}")
    return None


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    """A streamed import: one JSON document per line."""
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()
