"""One row per trial, as the CSV export and `?format=json` stream it.

Rows are read in pages of `CHUNK` trials by number, each page in a transaction of its own
(on SQLite a transaction holds the write lock), and written out as they come: memory and
lock time stay the same at 100 trials and at 100,000. A trial that changes during an
export appears as it was when its page was read.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.engine.base import TrialState, is_better
from app.studies.models import Study
from app.trials import front, results
from app.trials.repository import TrialRepository
from app.trials.results import Objectives

CHUNK = 2000

Sessions = Callable[[], AbstractContextManager[Session]]


def param_names(sessions: Sessions, study: Study) -> list[str]:
    """The space's parameters, then any other key a user's config brought, in order."""
    names = list(study.space)
    seen = set(names)
    after = -1
    while True:
        with sessions() as session:
            chunk = TrialRepository(session).unsuggested_params(study.id, after, CHUNK)
        for number, params in chunk:
            after = number
            for name in params:
                if name not in seen:
                    seen.add(name)
                    names.append(name)
        if len(chunk) < CHUNK:
            return names


def columns(names: list[str], objectives: list[str] | None = None) -> list[str]:
    """`objectives`: a multi-objective study's metrics, one `values_<metric>` column each."""
    return [
        "number",
        "trial_id",
        *[f"params_{n}" for n in names],
        "value",
        *[f"values_{m}" for m in objectives or []],
        "state",
        "budget",
        "start",
        "end",
        "duration_s",
        "best_so_far",
        "feasible",
        "is_pareto",
        "tags",
        "notes",
    ]


def objective_columns(study: Study) -> list[str]:
    """The metrics with a `values_` column: a study's objectives when there are several."""
    goals = Objectives.of(study)
    return [o.metric for o in goals.objectives] if goals.multi else []


def trial_rows(sessions: Sessions, study: Study, names: list[str]) -> Iterator[dict[str, Any]]:
    """Every trial in number order, a page of `CHUNK` at a time."""
    best: float | None = None
    after = -1
    with sessions() as session:
        # The Pareto set as it is when the export starts (app/trials/front.py).
        pareto = front.front_of(session, study)
    goals = pareto.goals
    while True:
        with sessions() as session:
            chunk = TrialRepository(session).export_chunk(study.id, after, CHUNK)
        for row in chunk:
            number, trial_id, params, value, state, budget, started, finished = row[:8]
            raw_values, raw_constraints, tags, notes = row[8], row[9], row[10], row[11]
            after = number
            completed = state == TrialState.COMPLETED and value is not None
            counts = completed and results.counts_as_best(study, raw_constraints)
            if counts and is_better(value, best, study.direction):  # type: ignore[arg-type]
                best = value
            has_result = value is not None and state in (TrialState.COMPLETED, TrialState.STOPPED)
            vector = goals.vector(value, raw_values) if goals.multi else None
            yield {
                "number": number,
                "trial_id": trial_id,
                **{f"params_{n}": params.get(n) for n in names},
                "value": value,
                **(
                    {
                        f"values_{o.metric}": None if vector is None else vector[i]
                        for i, o in enumerate(goals.objectives)
                    }
                    if goals.multi
                    else {}
                ),
                "state": state,
                "budget": budget,
                "start": _iso(started),
                "end": _iso(finished),
                "duration_s": _duration(started, finished),
                "best_so_far": best,
                **front.export_flags(pareto, trial_id, raw_constraints, has_result),
                # A list in JSON; comma-separated in the CSV (a tag holds no comma).
                "tags": list(tags or []),
                "notes": notes or "",
            }
        if len(chunk) < CHUNK:
            return


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _duration(started: datetime | None, finished: datetime | None) -> float | None:
    if started is None or finished is None:
        return None
    return (finished - started).total_seconds()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def csv_lines(
    names: list[str], rows: Iterator[dict[str, Any]], objectives: list[str] | None = None
) -> Iterator[str]:
    """The CSV text, a page of rows at a time."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(names, objectives), lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(rows, 1):
        writer.writerow({k: _cell(v) for k, v in row.items()})
        if i % CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def json_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """A JSON array of row objects (non-finite numbers as "NaN"/"Infinity" strings)."""
    yield "["
    parts: list[str] = []
    first = True
    for i, row in enumerate(rows, 1):
        text = json.dumps({k: _json_safe(v) for k, v in row.items()}, allow_nan=False)
        parts.append(text if first else "," + text)
        first = False
        if i % CHUNK == 0:
            yield "".join(parts)
            parts = []
    yield "".join(parts) + "]"
