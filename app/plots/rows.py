"""The study's trial rows behind the figures, kept per process and brought up to date
from the study's `history_version`.

Every change a figure shows (a state, a value, a rung; the times and the worker move with
the state) bumps the study's `history_version` and stamps the trial with it. So a page's
eight figures and its summary share one load, and after a change only the trials stamped
after the version held are read again (an indexed query), in any API process: the
database stays the one source of truth. Two tiers: `light` rows (no parameters, times or
worker) are a quarter of the cost of `full` ones at 100,000 trials and serve the first
chart of a page while the full rows load.

A study whose version is 0 has never changed through the lifecycle (rows written straight
into the database): its rows are read again after `UNVERSIONED_MAX_AGE_S`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.plots.repository import PlotRepository, TrialRow
from app.studies.models import Study

STUDIES = 32  # studies (per tier) whose rows are kept at once
# And at most this many rows in all (a full row of five parameters is about 1 KB): the
# least recently used studies go first.
ROWS_KEPT = 400_000
UNVERSIONED_MAX_AGE_S = 1.0
WAIT_S = 60.0


@dataclass
class _Entry:
    version: int
    loaded_at: float
    done: threading.Event = field(default_factory=threading.Event)
    rows: list[TrialRow] | None = None


StudyKey = tuple[str, int, str]
_entries: OrderedDict[tuple[StudyKey, bool], _Entry] = OrderedDict()
_lock = threading.Lock()


def clear() -> None:
    with _lock:
        _entries.clear()


def study_key(session: Session, study: Study) -> StudyKey:
    """Names a study across databases and across a database recreated with the same ids
    (a test's, a restored backup's): the URL, the id and the creation time."""
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    return (url, study.id, study.created_at.isoformat())


def _fresh(entry: _Entry, version: int, now: float) -> bool:
    if entry.version != version:
        return False
    return version > 0 or now - entry.loaded_at < UNVERSIONED_MAX_AGE_S


def trials(session: Session, study: Study, full: bool = True) -> list[TrialRow]:
    """The study's trials in number order (`full`: with parameters, times and worker).

    Concurrent requests for the same version wait for one load instead of each reading
    the rows; a full tier also serves light requests."""
    name = study_key(session, study)
    version = study.history_version or 0
    now = time.monotonic()
    tiers = (True,) if full else (False, True)
    with _lock:
        for tier in tiers:
            entry = _entries.get((name, tier))
            if entry is not None and _fresh(entry, version, now):
                _entries.move_to_end((name, tier))
                break
        else:
            entry = None
        if entry is None:
            key = (name, full)
            previous = _entries.get(key)
            entry = _entries[key] = _Entry(version, now)
            _entries.move_to_end(key)
            _evict()
            owner = True
        else:
            owner = False
    if not owner:
        entry.done.wait(WAIT_S)
        if entry.rows is not None:
            return entry.rows
        return PlotRepository(session).trials(study.id, full)
    try:
        entry.rows = _load(session, study.id, full, previous, version)
    finally:
        entry.done.set()
    with _lock:
        _evict()
    return entry.rows


def _evict() -> None:
    """Drops the least recently used entries past `STUDIES` or `ROWS_KEPT` (under _lock)."""
    total = sum(len(e.rows) for e in _entries.values() if e.rows is not None)
    while len(_entries) > 1 and (len(_entries) > 2 * STUDIES or total > ROWS_KEPT):
        _, dropped = _entries.popitem(last=False)
        total -= len(dropped.rows or ())


def _load(
    session: Session, study_id: int, full: bool, previous: _Entry | None, version: int
) -> list[TrialRow]:
    repo = PlotRepository(session)
    held = previous.rows if previous is not None and previous.done.is_set() else None
    if held is None or previous is None or previous.version <= 0 or version <= 0:
        return repo.trials(study_id, full)
    if previous.version > version:  # another process is behind us: not ours to merge
        return repo.trials(study_id, full)
    changed = repo.trials(study_id, full, since_version=previous.version)
    if not changed:
        return held
    by_id = {row.id: row for row in held}
    added = False
    for row in changed:
        added = added or row.id not in by_id
        by_id[row.id] = row
    rows = list(by_id.values())
    if added:
        rows.sort(key=lambda row: row.number)
    return rows
