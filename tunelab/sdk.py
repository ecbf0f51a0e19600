"""Report metrics from a training script and hear whether to go on.

    from tunelab import report

    for epoch in range(1, epochs + 1):
        ...
        if report(step=epoch, val_acc=acc).should_stop:
            break  # stopped or paused by the study's scheduler: save a checkpoint and exit

The trial's process gets TUNELAB_TRIAL_ID, TUNELAB_API_URL (and TUNELAB_TOKEN when the API
needs one) from the runner. Outside a trial `report` does nothing, so the script runs
on its own too. Requests go through `tunelab.transport`, which uses httpx when it is
installed and the standard library otherwise: a training image needs nothing else.
A report that cannot be delivered raises `tunelab.TunelabError`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.transport import Transport

_TIMEOUT_S = 10.0
# The API restarting must not kill a training run: a report is sent again for this long.
_RETRY_FOR_S = 30.0
_auto_step = 0
_transports: dict[tuple[int, str], Transport] = {}
_transports_lock = threading.Lock()


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


def _transport(api_url: str) -> Transport:
    """One transport per API for the whole run, so its connection is kept open; a forked
    child (a data loader's worker) opens its own rather than share the parent's socket."""
    key = (os.getpid(), api_url)
    with _transports_lock:
        transport = _transports.get(key)
        if transport is None:
            transport = _transports[key] = Transport(
                api_url, timeout_s=_TIMEOUT_S, retry_for_s=_RETRY_FOR_S
            )
        return transport


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
        {"name": name, "step": float(step), "value": float(value)}
        for name, value in metrics.items()
    ]
    # Points are keyed by (name, step): a report sent twice is stored once.
    answer = _transport(api_url).request(
        "POST", f"/trials/{trial_id}/metrics", json=body, idempotent=True
    )
    return Report(str(answer.get("decision", "continue")), str(answer.get("reason", "")))


def params() -> dict[str, Any]:
    """The trial's hyperparameters (also given as flags or placeholders)."""
    return dict(json.loads(os.environ.get("TUNELAB_PARAMS") or "{}"))


def checkpoint_dir() -> Path | None:
    """Where to save a checkpoint; a resumed trial gets the same folder back."""
    folder = os.environ.get("TUNELAB_CHECKPOINT_DIR")
    return Path(folder) if folder else None


def checkpoint_path(name: str = "checkpoint") -> Path | None:
    """`name` in the trial's checkpoint folder (None outside a trial). Load it when it
    exists: a resumed trial, or a pbt/pb2 member that copied a better member's weights.

        path = tunelab.checkpoint_path("model.pt")
        if path is not None and path.exists():
            state = torch.load(path)  # model, optimizer, epoch
    """
    folder = checkpoint_dir()
    return folder / name if folder is not None else None


def save_checkpoint(write: Callable[[Path], object], name: str = "checkpoint") -> Path | None:
    """Saves through `write(path)` into a temporary file, then renames it to `name`: a
    reader (the next run, or a copy made for another pbt/pb2 member) never sees half a
    file. Returns the path (None outside a trial, where nothing is saved).

        tunelab.save_checkpoint(lambda p: torch.save(state, p), "model.pt")
    """
    target = checkpoint_path(name)
    if target is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    write(partial)
    os.replace(partial, target)
    return target
