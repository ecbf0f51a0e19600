"""Every command that talks to a server: the same `--url` flag, and one line when the
server cannot be reached or refuses the call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import build_parser, main, remote
from tests.fixtures.services import ROOT
from tests.transport.scripted import Reply, closed_port, scripted_server

# One command line of each command that talks to a server.
REMOTE_COMMANDS = [
    ["study", "list"],
    ["study", "best", "1"],
    ["study", "watch", "1"],
    ["study", "importance", "1"],
    ["study", "promote", "1", "--to", "4x8"],
    ["trial", "logs", "1"],
    ["scale", "--trial", "1", "--to", "4x8"],
    ["report", "1"],
    ["export", "1"],
    ["import", "study.json"],
    ["worker"],
    ["webhook", "add", "https://hooks.example/x"],
    ["webhook", "list"],
    ["webhook", "rm", "1"],
    ["webhook", "test", "1"],
    ["webhook", "deliveries", "1"],
]


@pytest.mark.parametrize("argv", REMOTE_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_every_remote_command_takes_url(argv: list[str]) -> None:
    args = build_parser().parse_args([*argv, "--url", "http://api.test:8000"])
    assert args.url == "http://api.test:8000"


@pytest.mark.parametrize("argv", [["export", "1"], ["import", "f.json"], ["worker"]])
def test_api_url_is_still_taken_where_it_was_the_flag(argv: list[str]) -> None:
    args = build_parser().parse_args([*argv, "--api-url", "http://api.test:8000"])
    assert args.url == "http://api.test:8000"
    # ... but no longer shown.
    help_text = subprocess.run(
        [sys.executable, "-m", "app.cli", argv[0], "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "--url" in help_text and "--api-url" not in help_text


@pytest.mark.parametrize(
    "argv",
    [
        ["study", "list"],
        ["trial", "logs", "3"],
        ["report", "1"],
        ["export", "1"],
        ["webhook", "list"],
    ],
    ids=lambda argv: argv[0],
)
def test_an_unreachable_server_is_one_line_naming_its_url(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "RETRY_FOR_S", 0.2)
    url = f"http://127.0.0.1:{closed_port()}"
    assert main([*argv, "--url", url]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith(f"tunelab {argv[0]}: error: cannot reach {url}: ")
    assert "Traceback" not in captured.err


def test_an_unreachable_server_in_a_real_process_prints_no_traceback() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "study", "list", "--url", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"tunelab study: error: cannot reach {url}: ")


def test_a_refused_call_is_one_line_with_its_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = tmp_path / "study.json"
    document.write_text(json.dumps({"format": "tunelab-study", "version": 1, "study": {}}))
    refused = Reply(422, {"detail": "a study needs a name", "field": "study.name"})
    with scripted_server(refused) as server:
        assert main(["import", str(document), "--api-url", server.url]) == 1
    assert capsys.readouterr().err == (
        "tunelab import: error: a study needs a name (field study.name)\n"
    )
    [sent] = server.received
    assert sent.path == "/api/v1/studies/import/stream"
