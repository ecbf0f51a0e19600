"""One row per trial, as the CSV export and `?format=json` serve it."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from sqlalchemy.orm import Session

from app.engine.base import TrialState, is_better
from app.studies.models import Study
from app.trials.repository import TrialRepository


def trial_rows(session: Session, study: Study) -> tuple[list[str], list[dict[str, Any]]]:
    trials = TrialRepository(session).all_for_study(study.id)
    param_names = list(study.space)
    seen = set(param_names)
    for trial in trials:  # user configs may hold keys outside a narrowed space
        for name in trial.params:
            if name not in seen:
                seen.add(name)
                param_names.append(name)
    columns = [
        "number",
        "trial_id",
        *[f"params_{n}" for n in param_names],
        "value",
        "state",
        "budget",
        "start",
        "end",
        "duration_s",
        "best_so_far",
    ]
    best: float | None = None
    rows: list[dict[str, Any]] = []
    for trial in trials:
        if (
            trial.state == TrialState.COMPLETED
            and trial.value is not None
            and is_better(
                trial.value,
                best,
                study.direction,  # type: ignore[arg-type]
            )
        ):
            best = trial.value
        rows.append(
            {
                "number": trial.number,
                "trial_id": trial.id,
                **{f"params_{n}": trial.params.get(n) for n in param_names},
                "value": trial.value,
                "state": trial.state,
                "budget": trial.budget,
                "start": trial.started_at.isoformat() if trial.started_at else None,
                "end": trial.finished_at.isoformat() if trial.finished_at else None,
                "duration_s": trial.duration_s if trial.finished_at else None,
                "best_so_far": best,
            }
        )
    return columns, rows


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()
