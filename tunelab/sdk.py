"""Report metrics from a training script and hear whether to go on.

    from tunelab import report

    for epoch in range(1, epochs + 1):
        ...
        if report(step=epoch, val_acc=acc).should_stop:
            break  # stopped or paused by the study's scheduler: save a checkpoint and exit

The trial's process gets TUNELAB_TRIAL_ID, TUNELAB_API_URL (and TUNELAB_TOKEN when the API
needs one) from the runner. Outside a trial `report` does nothing, so the script runs
on its own too. Only the standard library is used: a training image needs nothing else.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TIMEOUT_S = 10.0
_RETRY_FOR_S = 30.0
_auto_step = 0


@dataclass(frozen=True)
class Report:
    """The API's answer: `decision` is continue, stop or pause."""

    decision: str = "continue"
    reason: str = ""

    @property
    def should_stop(self) -> bool:
        """True for stop and pause: the script should checkpoint and exit."""
        return self.decision in ("stop", "pause")

    @property
    def should_pause(self) -> bool:
        return self.decision == "pause"


def _number(value: float) -> float | str:
    value = float(value)
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _post(url: str, body: Any) -> Any:
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("TUNELAB_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode()
    deadline = time.monotonic() + _RETRY_FOR_S
    delay = 0.1
    while True:
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or time.monotonic() >= deadline:
                raise RuntimeError(
                    f"tunelab: {exc.code} {exc.read().decode(errors='replace')}"
                ) from None
        except (urllib.error.URLError, OSError):
            # The API restarting must not kill a training run: retry for a while.
            if time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def report(step: float | None = None, **metrics: float) -> Report:
    """Sends metric values at `step` (by default 1, 2, 3, ... per call) and returns the
    study's decision for this trial."""
    global _auto_step
    if step is None:
        _auto_step += 1
        step = _auto_step
    trial_id = os.environ.get("TUNELAB_TRIAL_ID")
    api_url = os.environ.get("TUNELAB_API_URL")
    if not trial_id or not api_url or not metrics:
        return Report()
    body = [
        {"name": name, "step": float(step), "value": _number(value)}
        for name, value in metrics.items()
    ]
    answer = _post(f"{api_url.rstrip('/')}/api/v1/trials/{trial_id}/metrics", body)
    return Report(str(answer.get("decision", "continue")), str(answer.get("reason", "")))


def params() -> dict[str, Any]:
    """The trial's hyperparameters (also given as flags or placeholders)."""
    return dict(json.loads(os.environ.get("TUNELAB_PARAMS") or "{}"))


def checkpoint_dir() -> Path | None:
    """Where to save a checkpoint; a resumed trial gets the same folder back."""
    folder = os.environ.get("TUNELAB_CHECKPOINT_DIR")
    return Path(folder) if folder else None
