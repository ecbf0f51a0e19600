"""The runner against a scripted stand-in for the API: batching, decisions, a lost API."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.worker.conftest import LOSS_REGEX, TINY, pid_alive
from tunelab.transport import TunelabError, Unreachable
from worker.runner import RunnerConfig, Slot, TrialRunner


class FakeApi:
    def __init__(
        self, decision: str = "continue", dead: bool = False, old_complete: bool = False
    ) -> None:
        self.decision = decision
        self.dead = dead
        # An API whose complete takes no metrics or log (it answers 422 to them).
        self.old_complete = old_complete
        self.batches: list[list[tuple[str, float, float]]] = []
        self.completed: list[dict] = []
        self.log = ""
        self.requests: list[str] = []

    def _alive(self) -> None:
        if self.dead:
            raise Unreachable("http://unused", "the API is gone")

    def retrying_for(self, _retry_for_s):
        return self

    def report(self, trial_id, points, attempt=None):
        self._alive()
        self.requests.append("report")
        self.batches.append(list(points))
        return {"decision": self.decision, "reason": "told so"}

    def heartbeat(self, trial_id, attempt=None):
        self._alive()
        return {"decision": "continue"}

    def append_log(self, trial_id, offset, text, attempt=None):
        self._alive()
        self.requests.append("log")
        assert offset == len(self.log.encode())
        self.log += text

    def complete(self, trial_id, *, failed=False, error=None, points=(), log=None, attempt=None):
        self._alive()
        self.requests.append("complete")
        if self.old_complete and (points or log):
            raise TunelabError(422, "metrics: extra inputs are not permitted", "metrics")
        if points:
            self.batches.append(list(points))
        if log is not None:
            self.append_log(trial_id, *log)
            self.requests.pop()
        self.completed.append({"failed": failed, "error": error})
        return {"state": "failed" if failed else "completed"}

    def log_end(self, trial_id):
        self._alive()
        self.requests.append("log_end")
        return len(self.log.encode())

    def get_trial(self, trial_id):
        return {"state": {"pause": "paused", "stop": "stopped"}.get(self.decision, "running")}


def _runner(api: FakeApi, tmp_path: Path, *args: str, **config) -> TrialRunner:
    study = {
        "id": 1,
        "objective": {"metric": "loss"},
        "fidelity": {"param": "epochs"},
        "execution": {
            "command": [sys.executable, TINY, "--sleep", "0", *args],
            "metric_definitions": [{"name": "loss", "regex": LOSS_REGEX}],
            "stop_grace_s": 1,
        },
    }
    trial = {"id": 5, "number": 0, "params": {"x": 2.0}, "budget": 250.0}
    cfg = RunnerConfig(api_url="http://unused", checkpoint_root=tmp_path, **config)
    return TrialRunner(api, study, trial, Slot("t:0"), cfg)  # type: ignore[arg-type]


def test_points_go_in_batches_of_at_most_100(tmp_path):
    api = FakeApi()
    outcome = _runner(api, tmp_path).run()
    assert outcome.state == "completed" and outcome.points == 250
    assert max(len(b) for b in api.batches) <= 100
    steps = [step for batch in api.batches for _, step, _ in batch]
    assert steps == [float(i) for i in range(1, 251)]  # the budget became --epochs 250
    assert api.log.count("\n") == 252  # pid line, stderr line, 250 epochs


def test_a_short_trials_last_points_and_output_ride_with_its_completion(tmp_path):
    api = FakeApi()
    # Long flush intervals: on a loaded machine the script may take a while to start.
    runner = _runner(api, tmp_path, metrics_flush_s=60, log_flush_s=60, heartbeat_s=60)
    runner.trial["budget"] = 3.0  # --epochs 3
    outcome = runner.run()
    assert outcome.state == "completed" and outcome.points == 3
    # The script exits at once: its end costs one request, not a batch, a chunk and a tell.
    assert api.requests == ["complete"]
    assert api.batches == [[("loss", float(e), 2.0 * 0.9**e) for e in (1, 2, 3)]]
    assert api.log.count("\n") == 5  # pid line, stderr line, 3 epochs


def test_an_api_refusing_output_with_the_completion_gets_it_apart(tmp_path):
    api = FakeApi(old_complete=True)
    runner = _runner(api, tmp_path, metrics_flush_s=60, log_flush_s=60, heartbeat_s=60)
    runner.trial["budget"] = 3.0
    outcome = runner.run()
    assert outcome.state == "completed" and outcome.points == 3
    assert api.requests == ["complete", "report", "log", "complete"]
    assert [p for batch in api.batches for p in batch] == [
        ("loss", float(e), 2.0 * 0.9**e) for e in (1, 2, 3)
    ]
    assert api.log.count("\n") == 5


def test_a_pause_decision_sends_sigterm_and_reports_nothing_more(tmp_path):
    api = FakeApi(decision="pause")
    outcome = _runner(api, tmp_path, "--sleep", "0.05").run()
    assert outcome.state == "paused" and outcome.returncode == -15
    assert api.completed == []
    assert "[tunelab] sent SIGTERM: told so" in api.log


def test_a_lost_api_leaves_no_orphan_process(tmp_path):
    api = FakeApi()
    # The run outlives an outage up to its limit (worker/spool.py), then is given up.
    runner = _runner(
        api, tmp_path, "--sleep", "0.05", heartbeat_s=0.2, log_flush_s=60, outage_limit_s=0.5
    )
    started: list[int] = []
    popen = runner._popen

    def spy():
        process = popen()
        started.append(process.pid)
        api.dead = True
        return process

    runner._popen = spy  # type: ignore[method-assign]
    with pytest.raises(Unreachable):
        runner.run()
    assert started and not pid_alive(started[0])


def test_console_bytes_that_are_not_utf8_keep_the_log_whole(tmp_path):
    api = FakeApi()
    code = (
        "import sys; out = sys.stdout.buffer; "
        "out.write('h\\u00e9llo \\u20ac\\n'.encode()); out.write(b'\\xff\\xfe bad\\n'); "
        "out.write(b'epoch 1 loss=0.5\\n'); out.flush()"
    )
    runner = _runner(api, tmp_path)
    runner.spec["command"] = [sys.executable, "-c", code]
    outcome = runner.run()
    assert outcome.state == "completed"
    assert api.log == "h\u00e9llo \u20ac\n\ufffd\ufffd bad\nepoch 1 loss=0.5\n"


def test_a_resumed_trials_output_continues_where_the_api_says_it_ends(tmp_path):
    api = FakeApi()
    api.log = "first run \u20ac\n"  # 14 bytes, 12 characters
    runner = _runner(api, tmp_path, metrics_flush_s=60, log_flush_s=60, heartbeat_s=60)
    runner.trial.update(budget=2.0, resume=True)
    outcome = runner.run()
    assert outcome.state == "completed"
    assert api.requests[0] == "log_end"
    # The new run's lines follow the first run's (append_log checks every offset).
    assert api.log.startswith("first run \u20ac\n") and "pid " in api.log[12:]


def test_a_log_end_the_api_refuses_starts_the_output_at_zero(tmp_path):
    api = FakeApi()

    def refused(trial_id):
        raise TunelabError(404, "trial 5 not found", "path")

    api.log_end = refused  # type: ignore[method-assign]
    runner = _runner(api, tmp_path, metrics_flush_s=60, log_flush_s=60, heartbeat_s=60)
    runner.trial.update(budget=1.0, retries=1)
    assert runner.run().state == "completed"
    assert "pid " in api.log  # sent from offset 0 (append_log checks every offset)
