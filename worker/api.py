"""The one HTTP client workers and the in-process executor use to talk to the API.

Every request goes through `ApiClient._request`, so authentication (a Bearer token from
TUNELAB_TOKEN) and retries on a restarting API live in one place."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

# Connection errors are retried this long: an API restart must not fail running trials.
RETRY_FOR_S = 60.0


class StudyDone(Exception):
    """The study is finished (410): there is nothing more to run."""


class ApiError(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


def _json_number(value: float) -> float | str:
    # The API takes non-finite floats as strings; JSON itself has no NaN.
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _metric_body(points: Sequence[tuple[str, float, float]]) -> list[dict[str, Any]]:
    return [
        {"name": name, "step": step, "value": _json_number(value)} for name, step, value in points
    ]


class ApiClient:
    def __init__(
        self,
        api_url: str,
        token: str | None = None,
        timeout_s: float = 10.0,
        retry_for_s: float = RETRY_FOR_S,
        give_up: threading.Event | None = None,
    ) -> None:
        token = token if token is not None else os.environ.get("TUNELAB_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.api_url = api_url.rstrip("/")
        self.retry_for_s = retry_for_s
        # Set when retrying is pointless (the API is this very process, shutting down).
        self.give_up = give_up
        self.http = httpx.Client(
            base_url=f"{self.api_url}/api/v1", headers=headers, timeout=timeout_s
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + self.retry_for_s
        delay = 0.05
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                if time.monotonic() >= deadline or (self.give_up and self.give_up.is_set()):
                    raise
            else:
                # 502-504: a proxy, or the database restarting (the API answers 503 and
                # rolled back), so sending again is safe; dropping a batch would lose points.
                if response.status_code not in (502, 503, 504) or time.monotonic() >= deadline:
                    return response
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text
            if response.status_code == 410:
                raise StudyDone(detail)
            raise ApiError(response.status_code, detail)
        return response.json() if response.content else None

    def get_study(self, study_id: int) -> dict[str, Any]:
        return dict(self._check(self._request("GET", f"/studies/{study_id}")))

    def get_trial(self, trial_id: int) -> dict[str, Any]:
        return dict(self._check(self._request("GET", f"/trials/{trial_id}")))

    def ask(self, study_id: int, worker: str) -> dict[str, Any] | None:
        """The next trial for this slot; None when the study has none to hand out now (409)."""
        response = self._request("POST", f"/studies/{study_id}/trials", json={"worker": worker})
        if response.status_code == 409:
            return None
        return dict(self._check(response))

    def report(self, trial_id: int, points: Sequence[tuple[str, float, float]]) -> dict[str, Any]:
        body = _metric_body(points)
        return dict(self._check(self._request("POST", f"/trials/{trial_id}/metrics", json=body)))

    def heartbeat(self, trial_id: int) -> dict[str, Any]:
        return dict(self._check(self._request("POST", f"/trials/{trial_id}/heartbeat")))

    def append_log(self, trial_id: int, offset: int, text: str) -> None:
        self._check(
            self._request("POST", f"/trials/{trial_id}/logs", json={"offset": offset, "text": text})
        )

    def complete(
        self,
        trial_id: int,
        *,
        failed: bool = False,
        error: str | None = None,
        points: Sequence[tuple[str, float, float]] = (),
        log: tuple[int, str] | None = None,
    ) -> dict[str, Any]:
        """Tells the trial's end; `points` and `log` (offset, text) are stored first, in the
        same request, as `report` and `append_log` would store them."""
        body: dict[str, Any] = {"state": "failed" if failed else "completed"}
        if error is not None:
            body["error"] = error[-100_000:]
        if points:
            body["metrics"] = _metric_body(points)
        if log is not None:
            body["log"] = {"offset": log[0], "text": log[1]}
        return dict(self._check(self._request("POST", f"/trials/{trial_id}/complete", json=body)))
