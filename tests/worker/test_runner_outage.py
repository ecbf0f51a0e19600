"""The runner through an API outage (a scripted stand-in for the API): the trial goes on,
its reports wait in the spool and arrive in order; the spool's bound and a superseded run."""

from __future__ import annotations

import threading
import time

import pytest

from tests.worker.conftest import pid_alive
from tests.worker.test_runner_unit import FakeApi, _runner
from tunelab.transport import TunelabError, Unreachable
from worker.spool import Spool, leftovers


def test_spool_is_first_in_first_out_and_empties_its_file(tmp_path):
    spool = Spool(tmp_path, 1, max_bytes=1000)
    assert spool.put("metrics", {"points": [["loss", 1.0, float("nan")]]})
    assert spool.put("log", {"offset": 0, "text": "a\n"})
    kind, payload = spool.peek() or ("", {})
    assert kind == "metrics" and payload["points"][0][2] != payload["points"][0][2]  # NaN
    spool.pop()
    assert spool.peek() == ("log", {"offset": 0, "text": "a\n"})
    spool.pop()
    # Emptied back to its header line (trial, attempt, API: for a later worker process).
    assert len(spool) == 0 and spool.size == 0 and spool.path.read_bytes().count(b"\n") == 1
    assert not spool.put("log", {"offset": 0, "text": "x" * 2000})  # over the bound
    spool.close()
    assert not spool.path.exists()


def test_a_spool_left_with_items_is_found_by_a_later_process_not_while_in_use(tmp_path):
    spool = Spool(tmp_path, 7, max_bytes=10_000, attempt=2, api_url="http://api:8000")
    spool.put("metrics", {"points": [["loss", 1.0, 0.5]]})
    spool.put("log", {"offset": 0, "text": "epoch 1\n"})
    assert list(leftovers(tmp_path)) == []  # its runner holds it
    spool.pop()  # the first item was delivered before the worker stopped
    spool.close()
    assert spool.path.exists()
    (found,) = list(leftovers(tmp_path))
    assert (found.trial_id, found.attempt, found.api_url) == (7, 2, "http://api:8000")
    assert found.items == [("log", {"offset": 0, "text": "epoch 1\n"})]
    assert list(leftovers(tmp_path)) == []  # held by the caller until released
    found.remove()
    assert not spool.path.exists()


def _outage(api: FakeApi, after_s: float, for_s: float) -> threading.Thread:
    def run() -> None:
        time.sleep(after_s)
        api.dead = True
        time.sleep(for_s)
        api.dead = False

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_an_outage_loses_no_point_and_keeps_the_order(tmp_path):
    api = FakeApi()
    runner = _runner(
        api, tmp_path, "--sleep", "0.02", heartbeat_s=0.1, probe_s=0.1, spool_dir=tmp_path / "s"
    )
    runner.trial["budget"] = 60.0  # 60 epochs, about 1.2 s
    outage = _outage(api, after_s=0.3, for_s=1.5)  # the process ends while the API is away
    outcome = runner.run()
    outage.join()
    assert outcome.state == "completed" and outcome.points == 60
    steps = [step for batch in api.batches for _, step, _ in batch]
    assert steps == [float(i) for i in range(1, 61)]  # each point once, in order
    assert api.log.count("epoch ") == 60
    assert not list((tmp_path / "s").iterdir())  # the spool file is gone


def test_a_full_spool_gives_the_run_up_with_no_orphan(tmp_path, caplog):
    api = FakeApi()
    runner = _runner(
        api,
        tmp_path,
        "--sleep",
        "0.01",
        heartbeat_s=0.1,
        probe_s=0.1,
        spool_max_bytes=300,
        spool_dir=tmp_path / "s",
    )
    runner.trial["budget"] = 500.0
    started: list[int] = []
    popen = runner._popen

    def spy():
        process = popen()
        started.append(process.pid)
        api.dead = True
        return process

    runner._popen = spy  # type: ignore[method-assign]
    with pytest.raises(Unreachable, match="spool's bound of 300 bytes"):
        runner.run()
    assert started and not pid_alive(started[0])
    assert "TUNELAB_SPOOL_MAX_BYTES" in caplog.text


class RequeuedApi(FakeApi):
    """The API re-queued the trial (its worker was taken for lost): reports are refused."""

    def heartbeat(self, trial_id, attempt=None):
        if len(self.batches) >= 2:
            raise TunelabError(409, "attempt 0 of trial 5 is over", "attempt")
        return super().heartbeat(trial_id, attempt)


def test_a_superseded_run_stops_its_process_and_says_nothing_more(tmp_path):
    api = RequeuedApi()
    runner = _runner(api, tmp_path, "--sleep", "0.05", heartbeat_s=0.1, metrics_flush_s=0.05)
    runner.trial["budget"] = 200.0  # 10 s if left alone
    started = time.monotonic()
    outcome = runner.run()
    assert outcome.state == "superseded" and "attempt 0" in outcome.reason
    assert time.monotonic() - started < 5
    assert api.completed == []


class TimedApi(FakeApi):
    def __init__(self) -> None:
        super().__init__()
        self.reported_at: list[float] = []
        self.completed_at = 0.0

    def report(self, trial_id, points, attempt=None):
        answer = super().report(trial_id, points, attempt)
        self.reported_at.append(time.monotonic())
        return answer

    def complete(self, trial_id, **kwargs):
        answer = super().complete(trial_id, **kwargs)
        self.completed_at = time.monotonic()
        return answer


def test_the_spool_is_delivered_as_soon_as_the_api_is_back_mid_run(tmp_path):
    api = TimedApi()
    runner = _runner(
        api, tmp_path, "--sleep", "0.02", heartbeat_s=0.1, probe_s=0.1, spool_dir=tmp_path / "s"
    )
    runner.trial["budget"] = 200.0  # about 4 s of output, a point every 20 ms
    outage = _outage(api, after_s=0.5, for_s=1.0)
    outcome = runner.run()
    outage.join()
    assert outcome.state == "completed" and outcome.points == 200
    steps = [step for batch in api.batches for _, step, _ in batch]
    assert steps == [float(i) for i in range(1, 201)]
    # Reports went through well before the end: the spool did not wait for the completion.
    assert api.completed_at - api.reported_at[len(api.reported_at) // 2] > 0.5
