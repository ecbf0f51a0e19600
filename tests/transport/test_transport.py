"""The client transport against a real HTTP server in a thread, on both of its backends."""

from __future__ import annotations

import math
import threading
import time

import pytest

from tests.transport.scripted import Reply, ScriptedServer, closed_port, scripted_server
from tunelab.transport import (
    RetryPolicy,
    Transport,
    TunelabError,
    Unreachable,
    decode_float,
    encode_float,
)

BACKENDS = ["httpx", "urllib"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_nan_and_infinities_round_trip(backend: str) -> None:
    values = [0.5, math.nan, math.inf, -math.inf]
    with scripted_server() as server, Transport(server.url, backend=backend) as transport:
        answer = transport.request(
            "POST", "/echo", json={"points": [{"value": v} for v in values], "step": 1.0}
        )
    # On the wire: strings JSON can hold, at any depth.
    [sent] = server.received
    assert sent.json() == {
        "points": [{"value": 0.5}, {"value": "NaN"}, {"value": "Infinity"}, {"value": "-Infinity"}],
        "step": 1.0,
    }
    assert sent.headers["content-type"] == "application/json"
    back = [decode_float(point["value"]) for point in answer["points"]]
    assert back[0] == 0.5 and math.isnan(back[1]) and back[2:] == [math.inf, -math.inf]


def test_the_codec_one_value_at_a_time() -> None:
    for value in (0.0, -2.5, 1e308):
        assert encode_float(value) == value and decode_float(encode_float(value)) == value
    assert math.isnan(decode_float(encode_float(math.nan)))
    assert decode_float(encode_float(-math.inf)) == -math.inf
    # Only the three spellings are numbers; other text stays text.
    assert decode_float("nan") == "nan" and decode_float("adam") == "adam"
    assert decode_float(None) is None


def test_url_token_and_query(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNELAB_TOKEN", "from-env")
    with scripted_server(Reply(200, {"ok": True}), Reply(204)) as server:
        with Transport(server.url + "/", backend=backend) as transport:
            assert transport.request(
                "GET", "/trials", params={"state": ["running", "paused"], "x": None, "on": True}
            ) == {"ok": True}
        with Transport(server.url, token="given", backend=backend) as transport:
            assert transport.request("POST", "/trials/1/heartbeat") is None
    first, second = server.received
    assert first.path == "/api/v1/trials?state=running&state=paused&on=true"
    assert first.headers["authorization"] == "Bearer from-env"
    assert second.headers["authorization"] == "Bearer given"


def test_503_with_retry_after_is_waited_out_and_sent_again(backend: str) -> None:
    busy = Reply(503, {"detail": "the database is unavailable", "field": "database"})
    busy.headers["Retry-After"] = "1"
    with scripted_server(busy) as server, Transport(server.url, backend=backend) as transport:
        # Even a call that is not idempotent: a 503 says the API did nothing with it.
        assert transport.request("POST", "/studies/1/trials", json={"worker": "w"}) == {
            "worker": "w"
        }
    first, second = server.received
    assert second.at - first.at >= 1.0


def test_429_is_sent_again_after_its_retry_after(backend: str) -> None:
    with (
        scripted_server(Reply(429, {"detail": "slow down"}, {"Retry-After": "0"})) as server,
        Transport(server.url, backend=backend) as transport,
    ):
        assert transport.request("POST", "/studies", json={"name": "s"}) == {"name": "s"}
    assert len(server.received) == 2


def test_a_refused_connection_is_retried_until_the_server_is_up(backend: str) -> None:
    port = closed_port()
    server = ScriptedServer.__new__(ScriptedServer)
    started = threading.Event()

    def start_later() -> None:
        time.sleep(0.4)
        nonlocal server
        server = ScriptedServer(port).start()
        started.set()

    threading.Thread(target=start_later, daemon=True).start()
    transport = Transport(f"http://127.0.0.1:{port}", backend=backend, retry_for_s=10)
    try:
        began = time.monotonic()
        # A POST that is not idempotent: nothing reached the server, so it is safe.
        assert transport.request("POST", "/studies/1/trials", json={"n": 1}) == {"n": 1}
        assert time.monotonic() - began >= 0.3
    finally:
        transport.close()
        started.wait(5)
        server.stop()
    assert len(server.received) == 1


def test_retrying_is_bounded_by_time(backend: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with Transport(url, backend=backend, retry_for_s=0.6) as transport:
        began = time.monotonic()
        with pytest.raises(Unreachable) as error:
            transport.request("GET", "/studies")
        took = time.monotonic() - began
    assert 0.2 < took < 2.0
    assert error.value.status_code is None and url in error.value.detail
    assert isinstance(error.value, TunelabError)


def test_a_retry_after_beyond_the_bound_is_not_waited_for(backend: str) -> None:
    with (
        scripted_server(Reply(503, {"detail": "busy"}, {"Retry-After": "30"})) as server,
        Transport(server.url, backend=backend, retry_for_s=5) as transport,
    ):
        began = time.monotonic()
        with pytest.raises(TunelabError) as error:
            transport.request("GET", "/studies/1")
        assert time.monotonic() - began < 2.0
    assert error.value.status_code == 503 and error.value.retry_after == 30.0
    assert len(server.received) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 409, 410, 422, 500])
def test_other_errors_are_raised_at_once_with_status_detail_and_field(
    backend: str, status: int
) -> None:
    refused = Reply(status, {"detail": "no such trial", "field": "path"}, {"Retry-After": "2"})
    with (
        scripted_server(refused) as server,
        Transport(server.url, backend=backend) as transport,
    ):
        with pytest.raises(TunelabError) as error:
            transport.request("GET", "/trials/9")
    assert len(server.received) == 1
    assert (error.value.status_code, error.value.detail, error.value.field) == (
        status,
        "no such trial",
        "path",
    )
    assert error.value.retry_after == 2.0
    assert str(error.value) == f"{status}: no such trial (field: path)"


def test_a_proxys_502_is_sent_again_only_for_idempotent_calls(backend: str) -> None:
    with (
        scripted_server(Reply(502), Reply(504)) as server,
        Transport(server.url, backend=backend) as transport,
    ):
        answer = transport.request(
            "POST", "/trials/1/metrics", json=[{"name": "loss"}], idempotent=True
        )
        assert answer == [{"name": "loss"}] and len(server.received) == 3
        server.replies.append(Reply(502))
        with pytest.raises(TunelabError) as error:
            transport.request("POST", "/studies/1/trials", json={})  # an ask: once only
    assert error.value.status_code == 502 and len(server.received) == 4


def test_a_lost_answer_is_sent_again_only_for_idempotent_calls(backend: str) -> None:
    slow = Reply(200, {"late": True}, delay_s=1.0)
    with (
        scripted_server(slow) as server,
        Transport(server.url, backend=backend, timeout_s=0.3, retry_for_s=10) as transport,
    ):
        with pytest.raises(Unreachable) as error:
            transport.request("POST", "/studies/1/trials", json={})
        assert "no answer to POST /studies/1/trials" in error.value.detail
        assert len(server.received) == 1
        server.replies.append(Reply(200, {"late": True}, delay_s=1.0))
        assert transport.request("GET", "/trials/1") == {"ok": True}  # on the second try
    assert len(server.received) == 3


def test_a_stream_is_sent_once(backend: str) -> None:
    lines = (f"{n}\n".encode() for n in range(3))
    with (
        scripted_server(Reply(503, {"detail": "busy"}, {"Retry-After": "0"})) as server,
        Transport(server.url, backend=backend) as transport,
    ):
        with pytest.raises(TunelabError) as error:
            transport.request(
                "POST", "/import", content=lines, headers={"Content-Type": "application/x-ndjson"}
            )
    assert error.value.status_code == 503
    [sent] = server.received
    assert sent.body == b"0\n1\n2\n" and sent.headers["content-type"] == "application/x-ndjson"


def test_giving_up_ends_the_retries_at_once(backend: str) -> None:
    give_up = threading.Event()
    url = f"http://127.0.0.1:{closed_port()}"
    threading.Timer(0.3, give_up.set).start()
    with Transport(url, backend=backend, retry_for_s=30, give_up=give_up) as transport:
        began = time.monotonic()
        with pytest.raises(Unreachable):
            transport.request("GET", "/studies")
    assert time.monotonic() - began < 3.0


def test_a_url_without_a_scheme_is_refused_naming_it() -> None:
    with pytest.raises(TunelabError) as error:
        Transport("127.0.0.1:8000")
    assert error.value.field == "url" and "127.0.0.1:8000" in error.value.detail


def test_waits_grow_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(first_wait_s=0.1, max_wait_s=1.0)
    for attempt, window in [(0, 0.1), (1, 0.2), (3, 0.8), (10, 1.0)]:
        waits = [policy.wait_s(attempt, None) for _ in range(200)]
        assert all(window / 2 <= w <= window for w in waits)
        assert len(set(waits)) > 100  # spread, so that cut-off clients do not return together
    assert 3.0 <= policy.wait_s(0, 3.0) <= 3.1  # the server's Retry-After comes first
