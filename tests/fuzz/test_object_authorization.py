"""Schemathesis's object-level authorization check (OWASP API1) over the API: two tokens of
two projects are peers (`[auth.wfc] peers`); a study or trial that one peer lists or creates
and then reads must not be served to the other. The check needs schemathesis's own runner
(it tracks which peer's responses supplied each id), so it runs `schemathesis run` against
a real server, bounded for CI by TUNELAB_FUZZ_EXAMPLES.

A control run against the same server with the projects check switched off must fail:
it shows the check can see the leak it is here for. The check replays reads only;
tests/projects/test_route_walk.py walks every route, writes included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fixtures.services import ROOT, free_port
from tests.fuzz.hooks import STREAM_OPERATIONS

pytestmark = pytest.mark.slow

FUZZ_EXAMPLES = int(os.environ.get("TUNELAB_FUZZ_EXAMPLES", "30"))


@contextmanager
def bola_server(data_dir: Path, leak: bool) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    args = [sys.executable, "-m", "tests.fuzz.bola_server", str(data_dir), str(port)]
    process = subprocess.Popen(
        [*args, *(["--leak"] if leak else [])], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        tokens = json.loads(process.stdout.readline())
        yield f"http://127.0.0.1:{port}", tokens
    finally:
        process.terminate()
        process.wait(10)


def schemathesis_run(
    data_dir: Path, url: str, tokens: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    auth = data_dir / "auth.json"
    auth.write_text(
        json.dumps(
            {
                "auth": [
                    {
                        "name": name,
                        "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {secret}"}],
                    }
                    for name, secret in tokens.items()
                ]
            }
        )
    )
    config = data_dir / "schemathesis.toml"
    config.write_text(f'[auth.wfc]\npath = "{auth}"\npeers = {json.dumps(list(tokens))}\n')
    excluded = [arg for op in STREAM_OPERATIONS for arg in ("--exclude-operation-id", op)]
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "object_level_authorization",
        "--phases",
        "fuzzing,stateful",
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--seed",
        "1",
        "-w",
        "1",
        *excluded,
    ]
    # Run in the test's folder: schemathesis keeps a cache where it runs.
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        command, cwd=data_dir, env=env, capture_output=True, text=True, timeout=900
    )


def test_no_token_reads_another_projects_objects(tmp_path: Path) -> None:
    with bola_server(tmp_path, leak=False) as (url, tokens):
        result = schemathesis_run(tmp_path, url, tokens)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "passed" in result.stdout.split("SUMMARY")[-1], result.stdout[-4000:]


def test_the_check_catches_a_leak(tmp_path: Path) -> None:
    """The control: the projects check switched off, the same run reports the leak."""
    with bola_server(tmp_path, leak=True) as (url, tokens):
        result = schemathesis_run(tmp_path, url, tokens)
    assert result.returncode != 0
    assert "Object-level authorization" in result.stdout or "owns" in result.stdout, result.stdout[
        -4000:
    ]
