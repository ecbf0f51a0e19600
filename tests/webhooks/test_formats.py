"""The bodies and signatures, without a server."""

from __future__ import annotations

import json
import time

from app.webhooks.formats import render
from tunelab.webhooks import parse, sign, verify


def test_render_json_keeps_the_payload_and_makes_non_finite_numbers_strings() -> None:
    payload = {"event": "study.new_best", "data": {"value": float("nan"), "x": [float("inf")]}}
    body = json.loads(render(payload, 7, "json"))
    assert body == {"id": 7, "event": "study.new_best", "data": {"value": "nan", "x": ["inf"]}}


def test_slack_escapes_its_control_characters() -> None:
    payload = {
        "event": "trial.failed",
        "study": {"id": 1, "name": "a<b>&c", "direction": "minimize", "state": "running"},
        "trial": {"id": 2, "number": 3, "state": "failed", "value": None, "params": {}},
        "data": {"reason": "x"},
        "text": 'Study "a<b>&c": trial #3 failed: <boom>',
    }
    body = json.loads(render(payload, 9, "slack"))
    assert body["text"] == payload["text"]  # the notification's plain text
    section = body["blocks"][0]["text"]["text"]
    assert "&lt;boom&gt;" in section and "<boom>" not in section
    assert "a&lt;b&gt;&amp;c (#1)" in body["blocks"][1]["fields"][0]["text"]
    assert "#3 (failed, value none)" in body["blocks"][1]["fields"][1]["text"]


def test_with_a_public_url_messages_link_to_the_dashboard() -> None:
    payload = {
        "event": "study.new_best",
        "study": {"id": 4, "name": "lr sweep", "direction": "minimize", "state": "running"},
        "trial": {"id": 17, "number": 5, "state": "completed", "value": 0.25, "params": {}},
        "data": {},
        "text": "new best",
    }
    base = "https://tunelab.example.com/"
    body = json.loads(render(payload, 1, "json", base))
    assert body["links"] == {
        "study": "https://tunelab.example.com/studies/4",
        "trial": "https://tunelab.example.com/trials/17",
    }
    fields = json.loads(render(payload, 1, "slack", base))["blocks"][1]["fields"]
    assert fields[0]["text"] == "*Study*\n<https://tunelab.example.com/studies/4|lr sweep (#4)>"
    assert fields[1]["text"].startswith("*Trial*\n<https://tunelab.example.com/trials/17|#5>")
    # Without a public address there is nothing to link to.
    assert "links" not in json.loads(render(payload, 1, "json"))


def test_sign_and_verify() -> None:
    body = b'{"id":1}'
    header = sign(body, "s3cret-value", 1_700_000_000)
    assert parse(header) is not None and parse(header)[0] == 1_700_000_000  # type: ignore[index]
    assert verify(body, header, "s3cret-value", now=1_700_000_100)
    assert not verify(body, header, "s3cret-value", now=1_700_000_301)  # too old: a replay
    assert not verify(body, header, "s3cret-value", now=1_699_999_000)  # from the future
    assert not verify(body + b" ", header, "s3cret-value", now=1_700_000_000)
    assert not verify(body, header, "", now=1_700_000_000)
    rotated = f"{header},v1={'0' * 64}"  # several signatures: any one may match
    assert verify(body, rotated, "s3cret-value", now=1_700_000_000)
    assert verify(body, sign(body, "k" * 10), "k" * 10)
    assert not verify(body, "t=abc,v1=00", "k" * 10)
    assert abs(int(sign(body, "k" * 10).split(",")[0][2:]) - time.time()) < 5


def test_an_attempt_is_bounded_in_time_and_keeps_the_start_of_an_error() -> None:
    import asyncio

    import httpx

    from app.webhooks.dispatcher import post
    from app.webhooks.service import Outgoing
    from tests.webhooks.receiver import Receiver

    slow, failing = Receiver(delay_s=1.0).start(), Receiver(status=503).start()
    try:

        async def attempt(url: str) -> object:
            item = Outgoing(1, 1, url, "s3cret-value", "ping", b"{}", 1)
            async with httpx.AsyncClient() as client:
                return await post(client, item, timeout_s=0.3)

        started = time.monotonic()
        timed_out = asyncio.run(attempt(slow.url))
        assert time.monotonic() - started < 0.9
        assert timed_out.status is None and "timed out after 0.3 s" in timed_out.error  # type: ignore[attr-defined]
        refused = asyncio.run(attempt(failing.url))
        assert refused.status == 503 and refused.error == "HTTP 503: ok"  # type: ignore[attr-defined]
        assert not refused.ok  # type: ignore[attr-defined]
    finally:
        slow.stop()
        failing.stop()
