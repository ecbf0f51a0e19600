"""The API calls a runner makes (workers and the in-process executor), over the one
client transport of `tunelab.transport`: its token, retry policy and NaN encoding.

A call the API refuses raises `TunelabError` with the status; `Unreachable` (a subclass)
when the API gave no answer for `retry_for_s`, which ends the trial's run."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

from tunelab.transport import Transport, TunelabError

# Calls are retried this long: an API restart must not fail running trials.
RETRY_FOR_S = 60.0
# The study has finished: there is nothing more to run.
GONE = 410
# Every slot of the study is taken, or every trial is handed out: nothing to run now.
BUSY = 409
# Sent with a run's reports: the trial's `retries` when the run started. The API refuses
# (409, field "attempt") the reports of a run whose trial was since re-queued or failed.
ATTEMPT_HEADER = "X-Tunelab-Attempt"


def superseded(error: TunelabError) -> bool:
    """Whether the API refused a report because the run is no longer the trial's."""
    return error.status_code == BUSY and error.field == "attempt"


def _fenced(attempt: int | None) -> dict[str, str] | None:
    return None if attempt is None else {ATTEMPT_HEADER: str(attempt)}


def _metric_body(points: Sequence[tuple[str, float, float]]) -> list[dict[str, Any]]:
    return [{"name": name, "step": step, "value": value} for name, step, value in points]


class ApiClient:
    def __init__(
        self,
        api_url: str,
        token: str | None = None,
        timeout_s: float = 10.0,
        retry_for_s: float = RETRY_FOR_S,
        give_up: threading.Event | None = None,
    ) -> None:
        """`token` defaults to TUNELAB_TOKEN; `give_up`, once set, ends retrying (the API
        is this very process, shutting down)."""
        self.transport = Transport(
            api_url, token, timeout_s=timeout_s, retry_for_s=retry_for_s, give_up=give_up
        )

    @property
    def api_url(self) -> str:
        return self.transport.url

    def retrying_for(self, retry_for_s: float) -> ApiClient:
        """The same client (connection pool, token) with another retry bound."""
        twin = copy.copy(self)
        twin.transport = copy.copy(self.transport)
        twin.transport.policy = dataclasses.replace(self.transport.policy, retry_for_s=retry_for_s)
        return twin

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def get_study(self, study_id: int) -> dict[str, Any]:
        return dict(self.transport.request("GET", f"/studies/{study_id}"))

    def get_trial(self, trial_id: int) -> dict[str, Any]:
        return dict(self.transport.request("GET", f"/trials/{trial_id}"))

    def ask(self, study_id: int, worker: str) -> dict[str, Any] | None:
        """The next trial for this slot; None when the study has none to hand out now.
        Not idempotent: an ask whose answer was lost is not sent again."""
        try:
            answer = self.transport.request(
                "POST", f"/studies/{study_id}/trials", json={"worker": worker}
            )
        except TunelabError as exc:
            if exc.status_code == BUSY:
                return None
            raise
        return dict(answer)

    def report(
        self,
        trial_id: int,
        points: Sequence[tuple[str, float, float]],
        attempt: int | None = None,
    ) -> dict[str, Any]:
        # Points are keyed by (name, step): a batch sent twice is stored once.
        answer = self.transport.request(
            "POST",
            f"/trials/{trial_id}/metrics",
            json=_metric_body(points),
            headers=_fenced(attempt),
            idempotent=True,
        )
        return dict(answer)

    def heartbeat(self, trial_id: int, attempt: int | None = None) -> dict[str, Any]:
        answer = self.transport.request(
            "POST", f"/trials/{trial_id}/heartbeat", headers=_fenced(attempt), idempotent=True
        )
        return dict(answer)

    def append_log(self, trial_id: int, offset: int, text: str, attempt: int | None = None) -> None:
        # A chunk is keyed by its offset: sent twice, it is stored once.
        self.transport.request(
            "POST",
            f"/trials/{trial_id}/logs",
            json={"offset": offset, "text": text},
            headers=_fenced(attempt),
            idempotent=True,
        )

    def log_end(self, trial_id: int) -> int:
        """The byte offset at which the trial's console output continues."""
        answer = self.transport.request("GET", f"/trials/{trial_id}/log/end")
        return int(answer["offset"])

    def complete(
        self,
        trial_id: int,
        *,
        failed: bool = False,
        error: str | None = None,
        points: Sequence[tuple[str, float, float]] = (),
        log: tuple[int, str] | None = None,
        attempt: int | None = None,
    ) -> dict[str, Any]:
        """Tells the trial's end; `points` and `log` (offset, text) are stored first, in the
        same request, as `report` and `append_log` would store them.

        A success is idempotent (the server keeps its first verdict), so it is sent again
        when its answer was lost. A failure is not: the first may have re-queued the trial,
        and a second could fail its next run; when its answer is lost the heartbeat
        timeout settles the trial instead. (A runner that sends `attempt` may send a failure
        again: a second one for a re-queued trial is refused as a stale attempt.)"""
        body: dict[str, Any] = {"state": "failed" if failed else "completed"}
        if error is not None:
            body["error"] = error[-100_000:]
        if points:
            body["metrics"] = _metric_body(points)
        if log is not None:
            body["log"] = {"offset": log[0], "text": log[1]}
        answer = self.transport.request(
            "POST",
            f"/trials/{trial_id}/complete",
            json=body,
            headers=_fenced(attempt),
            idempotent=not failed,
        )
        return dict(answer)
