"""A worker's slots: one per trial it runs at once, each with its own GPUs."""

from __future__ import annotations

import shutil
import socket
import subprocess

from worker.runner import Slot


def detect_gpus() -> list[str]:
    """GPU indices from nvidia-smi; none on a machine without NVIDIA GPUs."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def make_slots(
    name: str | None, gpus: list[str], slots: int | None, gpus_per_trial: int = 1
) -> list[Slot]:
    """With GPUs: len(gpus) // gpus_per_trial slots, each owning its GPUs (its
    CUDA_VISIBLE_DEVICES). Without: `slots` CPU slots (default 1)."""
    host = name or socket.gethostname()
    if gpus:
        per = max(1, gpus_per_trial)
        count = len(gpus) // per
        if count == 0:
            raise ValueError(f"{len(gpus)} GPUs cannot hold a trial of {per} GPUs")
        if slots is not None:
            count = min(count, slots)
        return [Slot(f"{host}:{i}", tuple(gpus[i * per : (i + 1) * per])) for i in range(count)]
    return [Slot(f"{host}:{i}") for i in range(max(1, slots or 1))]
