"""The OpenAPI schema, fuzzed: no 5xx, responses match the schema, every 4xx names a field.

Runs over the app on SQLite, with a study and trials in it so that generated ids sometimes
hit real rows. Bounded by FUZZ_EXAMPLES per operation (TUNELAB_FUZZ_EXAMPLES overrides)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.db.migrate import upgrade
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.fixtures.studies import study_body

pytestmark = pytest.mark.slow

FUZZ_EXAMPLES = int(os.environ.get("TUNELAB_FUZZ_EXAMPLES", "15"))


@schemathesis.check
def error_names_its_field(ctx: Any, response: Any, case: Any) -> bool | None:
    """Our error contract: a 4xx JSON body is {"detail", "field"} with a field."""
    if 400 <= response.status_code < 500:
        body = response.json()
        if not isinstance(body, dict) or not body.get("field") or "detail" not in body:
            raise AssertionError(f"a {response.status_code} without a field: {body!r}")
    return None


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """A streamed import: one JSON document per line."""
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def _seed(client: TestClient) -> None:
    sid = client.post("/api/v1/studies", json=study_body()).json()["id"]
    for _ in range(3):
        trial = client.post(f"/api/v1/studies/{sid}/trials").json()
        client.post(
            f"/api/v1/trials/{trial['id']}/metrics",
            json=[{"name": "loss", "step": 1, "value": 0.5}],
        )
        client.post(f"/api/v1/trials/{trial['id']}/logs", json={"offset": 0, "text": "x\n"})
    client.post(f"/api/v1/trials/{trial['id']}/complete", json={})


# The app exists at import, so that schemathesis can read its schema while collecting; its
# database is migrated and seeded only when the test runs.
_ROOT = Path(tempfile.mkdtemp(prefix="tunelab-fuzz-"))
_URL = f"sqlite:///{_ROOT / 'fuzz.db'}"
_DATABASE = Database(_URL)
# Authentication on, as on a shared server; the fuzzer holds the admin token, so that
# every role's routes are reached.
_ADMIN = "fuzz-admin-token-0123456789abcdef"
_AUTH = {"Authorization": f"Bearer {_ADMIN}"}
_APP = create_app(
    Settings(
        data_dir=_ROOT,
        database_url=_URL,
        reaper_interval_s=3600,
        auth="required",
        admin_token=_ADMIN,
    ),
    _DATABASE,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@pytest.fixture(scope="module", autouse=True)
def fuzz_database() -> Iterator[None]:
    upgrade(_URL)
    with TestClient(_APP, headers=_AUTH) as client:
        _seed(client)
    yield
    _DATABASE.dispose()
    shutil.rmtree(_ROOT, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms(case: Any) -> None:
    case.call_and_validate(
        headers=_AUTH,
        checks=[not_a_server_error, response_schema_conformance, error_names_its_field],
    )
