"""Webhooks end to end: a live app (its dispatcher running) POSTs to a real local
receiver; signatures verify with tunelab.webhooks.verify."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db.types import utcnow
from app.trials.models import Trial
from tests.fixtures.studies import study_body
from tests.webhooks.receiver import Receiver
from tunelab.webhooks import verify

API = "/api/v1"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def make_study(client: TestClient, **limits: Any) -> dict[str, Any]:
    body = study_body(limits={"max_trials": 20, "max_parallel_trials": 4, **limits})
    return _ok(client.post(f"{API}/studies", json=body), 201)


def make_hook(client: TestClient, url: str, **fields: Any) -> dict[str, Any]:
    return _ok(client.post(f"{API}/webhooks", json={"url": url, **fields}), 201)


def ask(client: TestClient, study_id: int, worker: str | None = None) -> dict[str, Any]:
    body = {"worker": worker} if worker else None
    return _ok(client.post(f"{API}/studies/{study_id}/trials", json=body), 201)


def tell(client: TestClient, trial_id: int, value: float) -> dict[str, Any]:
    return _ok(client.post(f"{API}/trials/{trial_id}/complete", json={"value": value}))


def deliveries(client: TestClient, hook_id: int) -> list[dict[str, Any]]:
    return _ok(client.get(f"{API}/webhooks/{hook_id}/deliveries"))["items"]


def wait_until(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_new_best_is_heard_at_once_signed(live: TestClient, receiver: Receiver) -> None:
    study = make_study(live)
    hook = make_hook(live, receiver.url)
    secret = hook["secret"]
    assert hook["secret_hint"] == secret[-4:] and hook["project"] == "default"
    assert "ping" not in hook["events"] and "study.new_best" in hook["events"]

    trial = ask(live, study["id"])
    started = time.monotonic()
    tell(live, trial["id"], 0.5)
    (heard,) = receiver.wait_for(1, "study.new_best")
    assert heard.at - started < 5.0  # bench/webhooks.py measures the real latency

    body = heard.json
    assert body["event"] == "study.new_best"
    assert body["study"] == {
        "id": study["id"],
        "name": study["name"],
        "direction": "minimize",
        "state": "running",
    }
    assert body["trial"]["id"] == trial["id"] and body["trial"]["value"] == 0.5
    assert body["trial"]["params"] == trial["params"]
    assert body["data"]["value"] == 0.5 and body["data"]["previous"] is None
    assert body["data"]["trial_number"] == trial["number"]
    assert "new best loss 0.5" in body["text"]
    assert heard.headers["Content-Type"] == "application/json"
    assert heard.headers["Tunelab-Delivery"] == str(body["id"])
    signature = heard.headers["Tunelab-Signature"]
    assert signature.startswith(f"t={heard.headers['Tunelab-Timestamp']},v1=")

    # The receiver's check: the signature holds for this body and secret, and no other.
    assert verify(heard.body, signature, secret)
    assert not verify(heard.body.replace(b"0.5", b"0.4"), signature, secret)
    assert not verify(heard.body, signature, secret + "x")
    assert not verify(heard.body, signature, secret, now=time.time() + 301)  # a replay
    assert not verify(heard.body, "t=1,v1=00", secret)
    assert not verify(heard.body, "garbage", secret)

    # A worse value is no news; a better one is, with the previous best.
    tell(live, ask(live, study["id"])["id"], 0.9)
    better = ask(live, study["id"])
    tell(live, better["id"], 0.25)
    news = receiver.wait_for(2, "study.new_best")
    assert news[1].json["data"]["value"] == 0.25 and news[1].json["data"]["previous"] == 0.5
    log = wait_until(
        lambda: [d for d in deliveries(live, hook["id"]) if d["state"] == "delivered"][:2]
    )
    assert log[0]["id"] > log[1]["id"]  # newest first
    assert log[0]["status"] == 204 and log[0]["attempts"] == 1 and log[0]["error"] == ""
    assert log[0]["duration_ms"] is not None and log[0]["delivered_at"] is not None
    assert log[0]["payload"]["id"] == log[0]["id"]
    listed = _ok(live.get(f"{API}/webhooks"))["items"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    assert listed[0]["last_delivery"]["state"] in ("delivered", "pending")


def test_failed_trial_target_reached_and_finished(live: TestClient, receiver: Receiver) -> None:
    study = make_study(live, target_value=0.1)
    make_hook(live, receiver.url)
    failing = ask(live, study["id"])
    _ok(
        live.post(
            f"{API}/trials/{failing['id']}/complete", json={"state": "failed", "error": "CUDA OOM"}
        )
    )
    (failed,) = receiver.wait_for(1, "trial.failed")
    assert failed.json["data"]["reason"] == "CUDA OOM"
    assert failed.json["trial"]["id"] == failing["id"] and failed.json["trial"]["state"] == "failed"
    assert "failed: CUDA OOM" in failed.json["text"]

    tell(live, ask(live, study["id"])["id"], 0.05)
    (target,) = receiver.wait_for(1, "study.target_reached")
    assert target.json["data"]["target"] == 0.1 and target.json["data"]["value"] == 0.05
    (finished,) = receiver.wait_for(1, "study.finished")
    data = finished.json["data"]
    assert data["state"] == "completed" and data["reason"].startswith("target_value 0.1 reached")
    assert finished.json["study"]["state"] == "completed"
    assert receiver.wait_for(1, "study.new_best")

    # A study stopped by a person: finished, with that reason, and no target.
    other = make_study(live)
    _ok(live.patch(f"{API}/studies/{other['id']}", json={"state": "stopped"}))
    stops = receiver.wait_for(2, "study.finished")
    assert stops[1].json["data"]["state"] == "stopped"
    assert stops[1].json["data"]["reason"].startswith("stopped by")
    assert len(receiver.wait_for(1, "study.target_reached")) == 1


def test_a_study_webhook_hears_its_study_a_project_webhook_all(
    live: TestClient, receiver: Receiver
) -> None:
    mine, other = make_study(live), make_study(live)
    own = Receiver().start()
    try:
        scoped = make_hook(live, own.url, study_id=mine["id"], events=["study.new_best"])
        assert scoped["study_id"] == mine["id"]
        make_hook(live, receiver.url)
        _ok(live.post(f"{API}/projects", json={"name": "elsewhere"}), 201)
        far = make_study(live, **{})
        _ok(live.patch(f"{API}/studies/{far['id']}", json={"name": "far"}))
        tell(live, ask(live, other["id"])["id"], 0.3)
        tell(live, ask(live, mine["id"])["id"], 0.7)
        project_wide = receiver.wait_for(2, "study.new_best")
        assert {h.json["study"]["id"] for h in project_wide} == {mine["id"], other["id"]}
        heard = own.wait_for(1, "study.new_best")
        time.sleep(0.3)  # anything else would have come by now
        assert [h.json["study"]["id"] for h in own.heard] == [mine["id"]]
        assert len(heard) == 1
        listed = _ok(live.get(f"{API}/webhooks", params={"study_id": mine["id"]}))["items"]
        assert [h["id"] for h in listed] == [scoped["id"]]
    finally:
        own.stop()


def test_another_projects_webhook_hears_nothing(live: TestClient, receiver: Receiver) -> None:
    _ok(live.post(f"{API}/projects", json={"name": "team"}), 201)
    make_hook(live, receiver.url, project="team")
    study = make_study(live)  # in the default project
    tell(live, ask(live, study["id"])["id"], 0.1)
    theirs = _ok(
        live.post(f"{API}/studies", json={**study_body(name="theirs"), "project": "team"}), 201
    )
    tell(live, ask(live, theirs["id"])["id"], 0.2)
    (heard,) = receiver.wait_for(1, "study.new_best")
    time.sleep(0.3)
    assert [h.json["study"]["id"] for h in receiver.heard] == [theirs["id"]]
    assert heard.json["study"]["name"] == "theirs"


def test_a_lost_worker_is_one_event_listing_its_trials(
    live: TestClient, receiver: Receiver
) -> None:
    study = make_study(live, heartbeat_timeout_s=0.3)
    hook = make_hook(live, receiver.url, events=["worker.lost"])
    first, second = ask(live, study["id"], "node-7:0"), ask(live, study["id"], "node-7:0")
    # Both fall silent at the same moment, so that one sweep finds both.
    with live.app.state.database.session() as session:  # type: ignore[attr-defined]
        session.execute(
            update(Trial)
            .where(Trial.id.in_([first["id"], second["id"]]))
            .values(heartbeat_at=utcnow())
        )
    (heard,) = receiver.wait_for(1, "worker.lost", timeout=5)
    data = heard.json["data"]
    assert data["worker"] == "node-7:0" and data["reason"] == "no heartbeat for 0.3 s"
    assert sorted(t["id"] for t in data["trials"]) == sorted([first["id"], second["id"]])
    assert all(t["state"] == "failed" and not t["retried"] for t in data["trials"])
    assert heard.json["study"]["id"] == study["id"] and heard.json["trial"] is None
    assert "Worker node-7:0 was lost" in heard.json["text"]
    time.sleep(0.3)
    assert len([h for h in receiver.heard if h.event == "worker.lost"]) == 1
    (row,) = deliveries(live, hook["id"])
    assert row["event"] == "worker.lost" and row["study_id"] == study["id"]


def test_a_receiver_that_is_down_then_up_gets_it_with_retries(live: TestClient) -> None:
    receiver = Receiver().start()
    url = receiver.url
    receiver.stop()  # connection refused from now on
    study = make_study(live)
    hook = make_hook(live, url, events=["study.new_best"])
    tell(live, ask(live, study["id"])["id"], 0.5)

    def refused_twice() -> Any:
        rows = deliveries(live, hook["id"])
        return rows if rows and rows[0]["attempts"] >= 2 else None

    (row,) = wait_until(refused_twice)
    assert row["state"] == "pending" and row["status"] is None
    assert "Connect" in row["error"] and row["next_attempt_at"] is not None

    back = Receiver(port=receiver.port, statuses=[500]).start()  # up, but failing once
    try:
        (heard,) = back.wait_for(1, "study.new_best", timeout=10)
        assert heard.json["data"]["value"] == 0.5
        (done,) = wait_until(
            lambda: [d for d in deliveries(live, hook["id"]) if d["state"] == "delivered"]
        )
        assert done["attempts"] >= 3 and done["status"] == 204 and done["error"] == ""
        assert len(back.heard) == 2  # the 500, then the 204
        assert (
            back.heard[0].headers["Tunelab-Delivery"] == back.heard[1].headers["Tunelab-Delivery"]
        )
    finally:
        back.stop()


def test_after_max_attempts_a_delivery_fails_and_410_turns_the_webhook_off(
    live: TestClient,
) -> None:
    broken = Receiver(status=500).start()
    gone = Receiver(status=410).start()
    try:
        study = make_study(live)
        failing = make_hook(live, broken.url, events=["study.new_best"])
        leaving = make_hook(live, gone.url, events=["study.new_best"])
        tell(live, ask(live, study["id"])["id"], 0.5)
        (row,) = wait_until(
            lambda: [d for d in deliveries(live, failing["id"]) if d["state"] == "failed"]
        )
        assert row["attempts"] == 4 and row["status"] == 500 and "HTTP 500" in row["error"]
        assert len(broken.heard) == 4
        (left,) = wait_until(
            lambda: [d for d in deliveries(live, leaving["id"]) if d["state"] == "failed"]
        )
        assert left["attempts"] == 1 and left["status"] == 410
        assert _ok(live.get(f"{API}/webhooks/{leaving['id']}"))["active"] is False
        tell(live, ask(live, study["id"])["id"], 0.1)
        time.sleep(0.3)
        assert len(deliveries(live, leaving["id"])) == 1  # an inactive webhook hears nothing
    finally:
        broken.stop()
        gone.stop()


def test_a_slow_receiver_does_not_hold_up_another(live: TestClient, receiver: Receiver) -> None:
    slow = Receiver(delay_s=1.5).start()
    try:
        study = make_study(live)
        make_hook(live, slow.url, events=["study.new_best"])
        make_hook(live, receiver.url, events=["study.new_best"])
        for value in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4):
            tell(live, ask(live, study["id"])["id"], value)
        started = time.monotonic()
        receiver.wait_for(6, "study.new_best", timeout=1.2)
        assert time.monotonic() - started < 1.2
    finally:
        slow.stop()


def test_slack_format(live: TestClient, receiver: Receiver) -> None:
    study = make_study(live)
    hook = make_hook(live, receiver.url, format="slack", events=["study.new_best"])
    tell(live, ask(live, study["id"])["id"], 0.5)
    (heard,) = receiver.wait_for(1)
    body = heard.json
    assert set(body) == {"text", "blocks"}
    assert "new best loss 0.5" in body["text"]
    assert body["blocks"][0]["type"] == "section"
    assert body["blocks"][0]["text"]["type"] == "mrkdwn"
    assert "*New best value*" in body["blocks"][0]["text"]["text"]
    assert body["blocks"][-1]["type"] == "context"
    assert verify(heard.body, heard.headers["Tunelab-Signature"], hook["secret"])


def test_test_ping_redeliver_and_paging(live: TestClient, receiver: Receiver) -> None:
    hook = make_hook(live, receiver.url, events=["study.finished"], active=False)
    ping = _ok(live.post(f"{API}/webhooks/{hook['id']}/test"), 202)
    assert (
        ping["event"] == "ping" and ping["state"] == "pending" and ping["webhook_id"] == hook["id"]
    )
    (heard,) = receiver.wait_for(1, "ping")
    assert heard.json["id"] == ping["id"] and heard.json["study"] is None
    assert heard.json["data"] == {"webhook_id": hook["id"]}
    again = _ok(live.post(f"{API}/webhooks/{hook['id']}/deliveries/{ping['id']}/redeliver"), 202)
    assert again["id"] != ping["id"] and again["payload"]["event"] == "ping"
    second = receiver.wait_for(2, "ping")[1]
    assert second.json["id"] == again["id"] and second.json["at"] == heard.json["at"]
    page = _ok(live.get(f"{API}/webhooks/{hook['id']}/deliveries", params={"limit": 1}))
    assert [d["id"] for d in page["items"]] == [again["id"]]
    older = _ok(live.get(f"{API}/webhooks/{hook['id']}/deliveries", params={"before": again["id"]}))
    assert [d["id"] for d in older["items"]] == [ping["id"]]
    missing = live.post(f"{API}/webhooks/{hook['id']}/deliveries/999999/redeliver")
    assert missing.status_code == 404 and missing.json()["field"] == "delivery_id"


def test_bad_input_names_the_field(live: TestClient, receiver: Receiver) -> None:
    cases = [
        ({"url": "ftp://example.org/x"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": receiver.url, "events": ["study.exploded"]}, "events"),
        ({"url": receiver.url, "events": []}, "events"),
        ({"url": receiver.url, "format": "xml"}, "format"),
        ({"url": receiver.url, "study_id": 424242}, "study_id"),
        ({"url": receiver.url, "project": "nowhere"}, "project"),
        ({"url": receiver.url, "secret": "short"}, "secret"),
    ]
    for body, field in cases:
        answer = live.post(f"{API}/webhooks", json=body)
        assert answer.status_code in (404, 422), (body, answer.text)
        assert answer.json()["field"] == field, (body, answer.json())
    hook = make_hook(live, receiver.url, secret="s3cret-value")
    assert hook["secret"] == "s3cret-value"
    path = f"{API}/webhooks/{hook['id']}"
    bad = live.patch(path, json={"url": "mailto:x@y"})
    assert bad.status_code == 422 and bad.json()["field"] == "url"
    bad = live.patch(path, json={"events": ["nope"]})
    assert bad.status_code == 422 and bad.json()["field"] == "events"
    changed = _ok(live.patch(path, json={"description": "team channel", "format": "slack"}))
    assert changed["description"] == "team channel" and "secret" not in changed
    rotated = _ok(live.patch(path, json={"secret": None}))
    assert (
        rotated["secret"].startswith("whsec_") and rotated["secret_hint"] == rotated["secret"][-4:]
    )
    assert live.get(f"{API}/webhooks/999999").json()["field"] == "webhook_id"
    assert live.delete(path).status_code == 204
    assert live.get(path).status_code == 404


@pytest.mark.postgres
def test_postgres_new_best_is_heard(live_pg: TestClient, receiver: Receiver) -> None:
    study = make_study(live_pg)
    hook = make_hook(live_pg, receiver.url, events=["study.new_best"])
    tell(live_pg, ask(live_pg, study["id"])["id"], 0.5)
    (heard,) = receiver.wait_for(1, "study.new_best")
    assert verify(heard.body, heard.headers["Tunelab-Signature"], hook["secret"])


@pytest.mark.postgres
def test_postgres_claims_at_once_never_share_a_delivery(tmp_path: Any, pg_url: str) -> None:
    """Two dispatchers claiming at once (FOR UPDATE SKIP LOCKED) split the due rows."""
    from app.db.session import Database
    from app.main import create_app
    from app.webhooks import outbox, service
    from tests.fixtures.services import truncate_all
    from tests.webhooks.conftest import fast_settings

    truncate_all(pg_url)
    database = Database(pg_url)
    client = TestClient(create_app(fast_settings(tmp_path, pg_url), database))  # no dispatcher
    try:
        hook = make_hook(client, "http://127.0.0.1:9/", events=["ping"])
        with database.session() as session:
            for _ in range(6):
                session.add(outbox.delivery(hook["id"], "ping", {"event": "ping"}, None, None))
        policy = service.Policy(max_attempts=3, retry_base_s=1, retry_max_s=1, lease_s=60)
        with database.session() as first, database.session() as second:
            a, _ = service.claim(first, policy, 4, frozenset())
            b, next_due = service.claim(second, policy, 4, frozenset())
        ids_a, ids_b = {o.delivery_id for o in a}, {o.delivery_id for o in b}
        assert len(ids_a) == 4 and len(ids_b) == 2 and not ids_a & ids_b
        rows = deliveries(client, hook["id"])
        assert all(r["attempts"] == 1 and r["state"] == "pending" for r in rows)
        with database.session() as third:
            assert service.claim(third, policy, 4, frozenset())[0] == []  # all leased
    finally:
        database.dispose()


def test_an_event_committed_while_nothing_sends_is_sent_later(
    tmp_path: Any, sqlite_url: str, receiver: Receiver
) -> None:
    """The outbox: the delivery is written with the tell, so a server that stops (or has
    not started) its dispatcher loses nothing."""
    from app.db.session import Database
    from app.main import create_app
    from tests.webhooks.conftest import fast_settings

    settings = fast_settings(tmp_path, sqlite_url)
    database = Database(settings.resolved_database_url)
    try:
        idle = TestClient(create_app(settings, database))  # no lifespan: no dispatcher
        study = make_study(idle)
        hook = make_hook(idle, receiver.url, events=["study.new_best"])
        tell(idle, ask(idle, study["id"])["id"], 0.5)
        time.sleep(0.3)
        assert receiver.heard == []
        assert [d["state"] for d in deliveries(idle, hook["id"])] == ["pending"]
        with TestClient(create_app(settings, database)):
            assert receiver.wait_for(1, "study.new_best")[0].json["data"]["value"] == 0.5
    finally:
        database.dispose()


def test_the_log_keeps_the_newest_deliveries(live: TestClient, receiver: Receiver) -> None:
    from app.webhooks import outbox, service

    hook = make_hook(live, receiver.url, events=["ping"], active=False)
    database = live.app.state.database  # type: ignore[attr-defined]
    with database.session() as session:
        for _ in range(12):
            row = outbox.delivery(hook["id"], "ping", {"event": "ping"}, None, None)
            row.state, row.next_attempt_at = "delivered", None
            session.add(row)
        pending = outbox.delivery(hook["id"], "ping", {"event": "ping"}, None, None)
        pending.next_attempt_at = None  # never due: stays pending
        session.add(pending)
    with database.session() as session:
        assert service.prune(session, keep=5) == 8
    rows = deliveries(live, hook["id"])
    assert len(rows) == 5 and rows[0]["state"] == "pending"
