"""Population-based training's exploit on the worker: a member resumes from a copy of the
donor's checkpoint folder.

The copy happens here, where the checkpoint volume is (a Celery worker's disk, or the
volume the workers of several hosts share), right before the member's process starts.
The donor's folder is only read. The member's folder is replaced as a whole: the copy is
made beside it first and swapped in by renames, so the member never starts from a mix of
its own files and the donor's, and a worker killed midway leaves the old folder intact.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from worker.launch import checkpoint_dir

# The strategies that copy checkpoints between trials (app/engine/registry.POPULATION; the
# worker does not import the engine).
POPULATION = frozenset({"pbt", "pb2"})


def copy_source(trial: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The donor named by a resumed trial's `extra.checkpoint_from`, if it exploits now.

    The strategy sets (or clears) the key at every resume, so a resume without an exploit
    never copies again."""
    if not trial.get("resume"):
        return None
    source = (trial.get("extra") or {}).get("checkpoint_from")
    return source if isinstance(source, Mapping) and "trial_number" in source else None


KEEP_SNAPSHOTS = 2  # per member: the boundary being copied from and the one before it
SNAPSHOT_WAIT_S = 30.0  # below the default heartbeat_timeout_s (60 s): no beats meanwhile


def _snapshots(root: Path, study_id: int, number: int) -> list[Path]:
    return sorted(
        (root / f"study-{study_id}").glob(f"trial-{number}.at-*"),
        key=lambda p: float(p.name.rsplit("-", 1)[1]),
    )


def snapshot_name(number: int, step: float) -> str:
    return f"trial-{number}.at-{step:g}"


def snapshot(root: Path, study_id: int, number: int, step: float) -> Path:
    """A copy of a member's folder as it was when it paused at the boundary `step`.

    A donor goes on training (and saving) after the boundary its score is from; an
    exploit copies this snapshot, so the weights match the score and the step the member
    goes on from, whatever the donor's script saves later. Only the newest snapshots are
    kept."""
    folder = root / f"study-{study_id}" / f"trial-{number}"
    target = folder.with_name(snapshot_name(number, step))
    staging = folder.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(folder, staging, symlinks=True)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    for old in _snapshots(root, study_id, number)[:-KEEP_SNAPSHOTS]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def copy_checkpoint(source: Path, dest: Path) -> int:
    """Replaces `dest` with a copy of `source`; returns the bytes copied."""
    if not source.is_dir():
        raise FileNotFoundError(f"no checkpoint folder {source}")
    staging = dest.with_name(f"{dest.name}.copy-{os.getpid()}")
    old = dest.with_name(f"{dest.name}.old-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(source, staging, symlinks=True)
    size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    if dest.exists():
        dest.rename(old)
    staging.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return size


def _donor_folder(
    root: Path, study_id: int, donor: int, step: float | None, wait_s: float
) -> tuple[Path, str]:
    """The donor's snapshot at `step`, waited for while the donor's process is still
    saving and exiting; its live folder when there is none (with a note)."""
    live = root / f"study-{study_id}" / f"trial-{donor}"
    if step is None:
        return live, ""
    wanted = live.with_name(snapshot_name(donor, step))
    deadline = time.monotonic() + wait_s
    while not wanted.is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)
    if wanted.is_dir():
        return wanted, ""
    return live, f" (no snapshot at step {step:g}: copied its current folder)"


def prepare(
    root: Path, study_id: int, trial: Mapping[str, Any], wait_s: float = SNAPSHOT_WAIT_S
) -> str | None:
    """Copies the donor's checkpoint into a resumed member's folder when it exploits.
    Returns a line for the trial's log (None when nothing was to be copied)."""
    source = copy_source(trial)
    if source is None:
        return None
    dest = checkpoint_dir(root, study_id, int(trial["number"]))
    donor = int(source["trial_number"])
    raw_step = source.get("step")
    step = float(raw_step) if isinstance(raw_step, int | float) else None
    folder, note = _donor_folder(root, study_id, donor, step, wait_s)
    try:
        size = copy_checkpoint(folder, dest)
    except OSError as exc:
        return f"[tunelab] warning: could not copy trial {donor}'s checkpoint: {exc}\n"
    at = f" (step {step:g})" if step is not None else ""
    return f"[tunelab] copied trial {donor}'s checkpoint{at} into {dest} ({size} bytes){note}\n"


def after_pause(root: Path, study: Mapping[str, Any], trial: Mapping[str, Any]) -> str | None:
    """Snapshots a population member's folder at the boundary it paused at (its budget).
    Returns a line for the trial's log."""
    if (study.get("strategy") or {}).get("name") not in POPULATION:
        return None
    budget = trial.get("budget")
    if not isinstance(budget, int | float):
        return None
    try:
        snapshot(root, int(study["id"]), int(trial["number"]), float(budget))
    except OSError as exc:
        return f"[tunelab] warning: no checkpoint snapshot at step {budget:g}: {exc}\n"
    return None


@contextlib.contextmanager
def held(root: Path, study: Mapping[str, Any], trial: Mapping[str, Any]) -> Iterator[str | None]:
    """Holds a population member's folder for one run: from before the donor's copy to
    after the process has exited and its snapshot is made.

    The API may hand a paused member out again the moment it pauses, while its process
    is still saving and exiting (on this slot or another): the next run waits here, so it
    never copies into, nor reads, a folder the previous run still writes. Yields a line
    for the trial's log when it had to go on without the lock."""
    if (study.get("strategy") or {}).get("name") not in POPULATION:
        yield None
        return
    folder = root / f"study-{int(study['id'])}"
    folder.mkdir(parents=True, exist_ok=True)
    wait_s = float((study.get("execution") or {}).get("stop_grace_s") or 10.0) + 30.0
    with open(folder / f"trial-{int(trial['number'])}.lock", "a+b") as handle:
        deadline = time.monotonic() + wait_s
        locked = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        try:
            yield (
                None
                if locked
                else (
                    f"[tunelab] warning: the previous run of this trial held its folder for "
                    f"{wait_s:g} s; starting anyway\n"
                )
            )
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)
