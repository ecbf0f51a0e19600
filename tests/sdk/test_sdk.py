from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.transport.scripted import Reply, scripted_server

ROOT = Path(__file__).resolve().parents[2]

# Run inside a fresh interpreter: every server dependency refuses to import.
BLOCKED_RUNNER = r"""
import sys
BLOCKED = {"app", "worker", "fastapi", "starlette", "sqlalchemy", "pydantic", "httpx", "celery",
           "kombu", "redis", "re2", "numpy", "uvicorn", "alembic", "psycopg", "yaml"}

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Block())
import tunelab
from tunelab import report
result = report(step=1, val_acc=0.5, loss=float("nan"))
print(result.decision, result.should_stop, result.reason)
print(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
"""


def _run(env: dict[str, str]) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TUNELAB_")}
    out = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUNNER],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.fixture
def stub_api() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(
                {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
            )
            payload = json.dumps({"decision": "stop", "reason": "worse than the median"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()


def test_report_outside_a_trial_does_nothing_and_imports_no_server_package():
    lines = _run({})
    assert lines[0] == "continue False "
    assert lines[1] == "[]"


def test_report_posts_and_returns_the_decision(stub_api):
    url, received = stub_api
    lines = _run({"TUNELAB_TRIAL_ID": "42", "TUNELAB_API_URL": url, "TUNELAB_TOKEN": "tok"})
    assert lines[0] == "stop True worse than the median"
    assert lines[1] == "[]"
    [call] = received
    assert call["path"] == "/api/v1/trials/42/metrics"
    assert call["auth"] == "Bearer tok"
    assert call["body"] == [
        {"name": "val_acc", "step": 1.0, "value": 0.5},
        {"name": "loss", "step": 1.0, "value": "NaN"},
    ]


def test_without_httpx_a_report_rides_over_a_restarting_api():
    restarting = Reply(503, {"detail": "the database is unavailable"}, {"Retry-After": "0"})
    answer = Reply(200, {"decision": "continue", "reason": ""})
    with scripted_server(restarting, Reply(502), answer) as server:
        lines = _run({"TUNELAB_TRIAL_ID": "7", "TUNELAB_API_URL": server.url})
    assert lines == ["continue False ", "[]"]
    assert [r.path for r in server.received] == ["/api/v1/trials/7/metrics"] * 3
    assert server.received[-1].json()[1] == {"name": "loss", "step": 1.0, "value": "NaN"}
