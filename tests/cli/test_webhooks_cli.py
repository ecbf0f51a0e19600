"""`tunelab webhook ...` against a real server, delivering to a real HTTP receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from tests.client.live import patient_live_server
from tests.fixtures.studies import study_body
from tests.webhooks.receiver import Receiver
from tunelab.webhooks import verify


@pytest.fixture
def server_url(sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    with patient_live_server(sqlite_url, tmp_path) as url:
        yield url


@pytest.mark.slow
def test_webhook_commands_against_a_real_server(server_url, capsys):
    from tunelab.client import Client

    with Client(server_url) as client:
        study = client.create_study(study_body(name="hooked"))

    with Receiver(status=200) as hook:
        hook_url = hook.url
        assert (
            main(
                [
                    "webhook",
                    "add",
                    hook_url,
                    "--study",
                    str(study.id),
                    "--events",
                    "study.finished,trial.failed",
                    "--description",
                    "ci <b>job</b>",
                    "--url",
                    server_url,
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        assert f"created: {hook_url} (study {study.id}, json)" in out
        assert "events: study.finished, trial.failed" in out
        secret = next(line for line in out.splitlines() if line.startswith("secret: "))[8:]
        webhook_id = int(out.split()[1])

        assert main(["webhook", "list", "--url", server_url]) == 0
        out = capsys.readouterr().out
        assert hook_url in out and f"study {study.id}" in out and "ci <b>job</b>" in out
        assert main(["webhook", "list", "--json", "--url", server_url]) == 0
        (listed,) = json.loads(capsys.readouterr().out)
        assert listed["secret_hint"] == secret[-4:] and "secret" not in listed

        # A ping, sent at once and signed with the secret printed once.
        assert main(["webhook", "test", str(webhook_id), "--url", server_url]) == 0
        out = capsys.readouterr().out
        assert "delivered, HTTP 200" in out, out
        (request,) = hook.heard
        assert request.path == "/hook" and request.event == "ping"
        assert verify(request.body, request.headers["Tunelab-Signature"], secret)
        assert not verify(request.body, request.headers["Tunelab-Signature"], secret + "x")
        assert json.loads(request.body)["event"] == "ping"

        assert main(["webhook", "deliveries", str(webhook_id), "--url", server_url]) == 0
        out = capsys.readouterr().out
        assert "ping" in out and "delivered, HTTP 200, 1 attempt" in out

    # The receiver is gone: the ping is not delivered (exit 1) and says why.
    assert main(["webhook", "test", str(webhook_id), "--url", server_url]) == 1
    out = capsys.readouterr().out
    assert "delivered" not in out and "1 attempt" in out and "next attempt" in out, out

    # Refusals are one line (an unreachable server's too: tests/cli/test_remote.py).
    assert main(["webhook", "rm", str(webhook_id), "--url", server_url]) == 0
    assert f"webhook {webhook_id} deleted" in capsys.readouterr().out
    assert main(["webhook", "list", "--url", server_url]) == 0
    assert capsys.readouterr().out == "no webhooks\n"
    assert main(["webhook", "rm", str(webhook_id), "--url", server_url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tunelab webhook: error: ") and len(err.splitlines()) == 1
    assert main(["webhook", "add", "ftp://nowhere", "--url", server_url]) == 1
    err = capsys.readouterr().err
    assert "url" in err and len(err.splitlines()) == 1
