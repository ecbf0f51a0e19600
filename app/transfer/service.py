"""Export a study to a JSON-safe document and import one, with new ids, without loss.

The document holds the study row, its trials, their metric points and console logs, and
the study's events. Columns are read from the models, so a column added later travels
too. Floats that JSON cannot hold (NaN, +/-inf) travel as "NaN", "Infinity", "-Infinity",
as in the API; datetimes as ISO 8601."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import Column, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import Invalid
from app.db.base import Base
from app.db.types import FaithfulFloat, UTCDateTime
from app.events.models import Event
from app.metrics.models import MetricPoint
from app.studies.models import Study
from app.studies.repository import StudyRepository
from app.trials.models import Trial, TrialLog
from app.trials.repository import TrialRepository

FORMAT = "tunelab-study"
VERSION = 1
_CHUNK = 2000

# Columns that are ids on the source server; the import assigns or maps them.
_SKIP = {
    Study: {"id", "parent_study_id", "best_trial_id"},
    Trial: {"id", "study_id"},
    MetricPoint: {"id", "trial_id"},
    TrialLog: {"id", "trial_id"},
    Event: {"id", "study_id", "trial_id"},
}


def _columns(model: type[Base]) -> list[Any]:
    return [c for c in model.__table__.columns if c.key not in _SKIP[model]]


def _encode(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return value.isoformat()
    if isinstance(column.type, FaithfulFloat) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _decode(column: Column[Any], value: Any, where: str) -> Any:
    if value is None:
        return None
    try:
        if isinstance(column.type, UTCDateTime):
            return datetime.fromisoformat(value)
        if isinstance(column.type, FaithfulFloat):
            return float(value)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"{value!r} is not a valid {column.key}", field=where) from exc
    return value


def _dump(model: type[Base], row: Any) -> dict[str, Any]:
    return {c.key: _encode(c, getattr(row, c.key)) for c in _columns(model)}


def _load(model: type[Base], data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Invalid("must be an object", field=where)
    out: dict[str, Any] = {}
    for column in _columns(model):
        if column.key in data:
            out[column.key] = _decode(column, data[column.key], f"{where}.{column.key}")
        elif not column.nullable and column.default is None:
            raise Invalid("is required", field=f"{where}.{column.key}")
    return out


def export_study(session: Session, study_id: int) -> dict[str, Any]:
    from app.studies.service import get_study

    study = get_study(session, study_id)
    trials = TrialRepository(session).all_for_study(study.id)
    trial_ids = [t.id for t in trials]
    points: dict[int, list[dict[str, Any]]] = {t: [] for t in trial_ids}
    logs: dict[int, list[dict[str, Any]]] = {t: [] for t in trial_ids}
    for start in range(0, len(trial_ids), 500):
        chunk = trial_ids[start : start + 500]
        for point in session.scalars(
            select(MetricPoint).where(MetricPoint.trial_id.in_(chunk)).order_by(MetricPoint.id)
        ):
            points[point.trial_id].append(_dump(MetricPoint, point))
        for log in session.scalars(
            select(TrialLog).where(TrialLog.trial_id.in_(chunk)).order_by(TrialLog.offset)
        ):
            logs[log.trial_id].append(_dump(TrialLog, log))
    numbers = {t.id: t.number for t in trials}
    events = session.scalars(select(Event).where(Event.study_id == study.id).order_by(Event.id))
    best = numbers.get(study.best_trial_id) if study.best_trial_id is not None else None
    return {
        "format": FORMAT,
        "version": VERSION,
        "source_id": study.id,
        "study": {**_dump(Study, study), "best_trial_number": best},
        "trials": [
            {**_dump(Trial, t), "metrics": points[t.id], "logs": logs[t.id]} for t in trials
        ],
        # Events name their trial by number: ids are the source server's.
        "events": [
            {
                **_dump(Event, e),
                "trial_number": numbers.get(e.trial_id) if e.trial_id is not None else None,
            }
            for e in events
        ],
    }


def import_study(session: Session, document: Any) -> Study:
    """Creates the study of an exported document, with new ids; returns it (flushed)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise Invalid(f"not a {FORMAT} document", field="format")
    if document.get("version") != VERSION:
        raise Invalid(
            f"version {document.get('version')!r}; this server reads {VERSION}", "version"
        )
    raw_trials = document.get("trials") or []
    raw_events = document.get("events") or []
    if not isinstance(raw_trials, list) or not isinstance(raw_events, list):
        raise Invalid("trials and events must be lists", field="trials")

    fields = _load(Study, document.get("study"), "study")
    _check_study(fields)
    study = Study(**fields)
    StudyRepository(session).add(study)

    ids: dict[int, int] = {}
    for index, raw in enumerate(raw_trials):
        where = f"trials.{index}"
        trial = Trial(study_id=study.id, **_load(Trial, raw, where))
        if trial.number in ids:
            raise Invalid(f"trial number {trial.number} appears twice", field=f"{where}.number")
        session.add(trial)
        session.flush()
        ids[trial.number] = trial.id
        _insert(
            session,
            MetricPoint,
            [
                {"trial_id": trial.id, **_load(MetricPoint, p, f"{where}.metrics.{n}")}
                for n, p in enumerate(raw.get("metrics") or [])
            ],
        )
        _insert(
            session,
            TrialLog,
            [
                {"trial_id": trial.id, **_load(TrialLog, chunk, f"{where}.logs.{n}")}
                for n, chunk in enumerate(raw.get("logs") or [])
            ],
        )

    best = (document.get("study") or {}).get("best_trial_number")
    if best is not None:
        # A Core update naming updated_at, so that the model's onupdate keeps the source's.
        session.execute(
            update(Study)
            .where(Study.id == study.id)
            .values(best_trial_id=ids.get(best), updated_at=study.updated_at)
        )
        set_committed_value(study, "best_trial_id", ids.get(best))
    rows = []
    for index, raw in enumerate(raw_events):
        number = raw.get("trial_number") if isinstance(raw, dict) else None
        if number is not None and number not in ids:
            raise Invalid(f"no trial number {number}", field=f"events.{index}.trial_number")
        rows.append(
            {
                "study_id": study.id,
                "trial_id": ids[number] if number is not None else None,
                **_load(Event, raw, f"events.{index}"),
            }
        )
    _insert(session, Event, rows)
    session.flush()
    return study


def _check_study(fields: dict[str, Any]) -> None:
    """An import passes the checks a created study passes: its space parses, and its
    execution spec keeps to argv lists, allowed environment names and working roots."""
    from pydantic import ValidationError

    from app.engine.space import SearchSpace
    from app.studies.schemas import ExecutionSpec

    SearchSpace.from_dict(fields.get("space") or {}, "study.space")
    if fields.get("execution") is not None:
        try:
            ExecutionSpec.model_validate(fields["execution"])
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise Invalid(str(first["msg"]), field=f"study.execution.{where}") from exc


def _insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(model), rows[start : start + _CHUNK])
