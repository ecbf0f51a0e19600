"""The OpenAPI schema, fuzzed: no 5xx, responses match the schema, every 4xx names a field.

Runs over the app on SQLite with the admin token (without one nearly every operation answers
401), with studies whose trials and metric points hold NaN and infinities, so that generated
ids sometimes hit real rows. Three of schemathesis's phases, bounded for CI:

- coverage and fuzzing per operation, TUNELAB_FUZZ_EXAMPLES examples each (30 by default);
- stateful: sequences that follow the links schemathesis infers (create a study, ask a trial,
  report on it, ...), TUNELAB_FUZZ_SCENARIOS scenarios (50 by default).

A full run against a live server, with every phase unbounded, is in tests/fuzz/hooks.py."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.db.migrate import upgrade
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.fixtures.studies import study_body
from tests.fuzz.hooks import STREAM_OPERATIONS, error_names_its_field

pytestmark = pytest.mark.slow

FUZZ_EXAMPLES = int(os.environ.get("TUNELAB_FUZZ_EXAMPLES", "30"))
FUZZ_SCENARIOS = int(os.environ.get("TUNELAB_FUZZ_SCENARIOS", "50"))
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    error_names_its_field,
]
# What the seeded trials end with: every kind of number a value can be (the last one's
# id is the seeded trial_id).
SEED_VALUES: list[Any] = [0.5, "Infinity", "-Infinity", "NaN"]


def _seed(client: TestClient) -> dict[str, int]:
    """A study whose trials and points hold every kind of value; its ids by name."""
    sid = client.post("/api/v1/studies", json=study_body()).json()["id"]
    trial_id = 0
    for value in SEED_VALUES:
        trial_id = client.post(f"/api/v1/studies/{sid}/trials").json()["id"]
        client.post(
            f"/api/v1/trials/{trial_id}/metrics",
            json=[{"name": "loss", "step": 1, "value": value}],
        )
        client.post(f"/api/v1/trials/{trial_id}/logs", json={"offset": 0, "text": "x\n"})
        client.post(f"/api/v1/trials/{trial_id}/complete", json={})
    # An imported result too, as the transfer and followup paths write one.
    params = client.get(f"/api/v1/trials/{trial_id}").json()["params"]
    client.post(
        f"/api/v1/studies/{sid}/trials",
        json={"params": params, "value": "-Infinity", "state": "completed"},
    )
    return {"study_id": sid, "trial_id": trial_id}


# The app exists at import, so that schemathesis can read its schema while collecting; its
# database is migrated and seeded only when the tests run.
_ROOT = Path(tempfile.mkdtemp(prefix="tunelab-fuzz-"))
_URL = f"sqlite:///{_ROOT / 'fuzz.db'}"
_DATABASE = Database(_URL)
# Authentication on, as on a shared server; the fuzzer holds the admin token, so that
# every role's routes are reached.
_ADMIN = "fuzz-admin-token-0123456789abcdef"
_AUTH = {"Authorization": f"Bearer {_ADMIN}"}


def _app(database: Database) -> Any:
    return create_app(
        Settings(
            data_dir=_ROOT,
            database_url=database.url,
            reaper_interval_s=3600,
            auth="required",
            admin_token=_ADMIN,
        ),
        database,
    )


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's backup: a consistent copy, the write-ahead log included."""
    with sqlite3.connect(source) as reader, sqlite3.connect(target) as writer:
        reader.backup(writer)


_APP = _app(_DATABASE)
# The database as seeded: every stateful scenario starts from a copy of it.
_SEEDED_COPY = _ROOT / "seeded.db"
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)
for _operation_id in STREAM_OPERATIONS:
    schema = schema.exclude(operation_id=_operation_id)
_SEEDED: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def fuzz_database() -> Iterator[None]:
    upgrade(_URL)
    with TestClient(_APP, headers=_AUTH) as client:
        _SEEDED.update(_seed(client))
    _copy_database(_ROOT / "fuzz.db", _SEEDED_COPY)
    yield
    _DATABASE.dispose()
    shutil.rmtree(_ROOT, ignore_errors=True)


# The reads that carry a trial's value or a point's value, on rows that hold NaN and
# infinities (and the study reads beside them): the schema must describe them as sent.
SEEDED_READS = [
    ("/api/v1/studies/{study_id}/trials", True),
    ("/api/v1/trials/{trial_id}", True),
    ("/api/v1/trials/{trial_id}/metrics", True),
    ("/api/v1/studies/{study_id}", False),
    ("/api/v1/studies", False),
    ("/api/v1/studies/{study_id}/summary", False),
    ("/api/v1/studies/{study_id}/lineage", False),
]


@pytest.mark.parametrize(("path", "non_finite"), SEEDED_READS)
def test_non_finite_values_match_the_schema(path: str, non_finite: bool) -> None:
    params = {name: _SEEDED[name] for name in ("study_id", "trial_id") if "{" + name + "}" in path}
    case = schema[path]["GET"].Case(path_parameters=params)
    response = case.call(headers=_AUTH)
    assert response.status_code == 200, response.text
    if non_finite:
        assert any(text in response.text for text in ('"NaN"', '"Infinity"', '"-Infinity"'))
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms(case: Any) -> None:
    case.call_and_validate(headers=_AUTH, checks=CHECKS)


class APIWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    """Each scenario runs on an app and database of its own, copied from the seeded one:
    hypothesis replays a scenario's prefix while it explores, and a server that remembers
    the previous scenarios (a deleted project, a revoked token) would answer it differently
    (FlakyStrategyDefinition) instead of the same way every time."""

    def setup(self) -> None:
        path = Path(tempfile.mkstemp(prefix="scenario-", suffix=".db", dir=_ROOT)[1])
        _copy_database(_SEEDED_COPY, path)
        self.database = Database(f"sqlite:///{path}")
        self.app = _app(self.database)

    def teardown(self) -> None:
        self.database.dispose()
        Path(self.database.url.removeprefix("sqlite:///")).unlink(missing_ok=True)

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"headers": _AUTH, "app": self.app}

    def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
        case.validate_response(response, checks=CHECKS)


TestAPIWorkflow = APIWorkflow.TestCase
TestAPIWorkflow.settings = settings(
    max_examples=FUZZ_SCENARIOS,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
