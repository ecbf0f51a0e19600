"""Export a study to a JSON-safe document and import one, with new ids, without loss.

The document holds the study row, its trials, their metric points and console logs, and
the study's events. Columns are read from the models, so a column added later travels
too. Floats that JSON cannot hold (NaN, +/-inf) travel as "NaN", "Infinity", "-Infinity",
as in the API; datetimes as ISO 8601."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import Invalid
from app.db.base import Base
from app.db.types import FaithfulFloat, UTCDateTime
from app.events.models import Event
from app.metrics.models import MetricPoint
from app.studies.models import Study
from app.studies.repository import StudyRepository
from app.transfer.repository import TransferRepository
from app.trials.models import Trial, TrialLog

FORMAT = "tunelab-study"
VERSION = 1

# Columns that are ids on the source server; the import assigns or maps them.
_SKIP = {
    # project_id: the importing server decides the project (the caller's choice, checked).
    Study: {"id", "parent_study_id", "best_trial_id", "project_id"},
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
    rows = TransferRepository(session)
    trials = rows.trials_of_study(study.id)
    trial_ids = [t.id for t in trials]
    points: dict[int, list[dict[str, Any]]] = {t: [] for t in trial_ids}
    logs: dict[int, list[dict[str, Any]]] = {t: [] for t in trial_ids}
    for start in range(0, len(trial_ids), 500):
        chunk = trial_ids[start : start + 500]
        for point in rows.points_of(chunk):
            points[point.trial_id].append(_dump(MetricPoint, point))
        for log in rows.logs_of(chunk):
            logs[log.trial_id].append(_dump(TrialLog, log))
    numbers = {t.id: t.number for t in trials}
    events = rows.events_of_study(study.id)
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


def import_study(session: Session, document: Any, project_id: int = 0) -> Study:
    """Creates the study of an exported document, with new ids; returns it (flushed)."""
    if not isinstance(document, dict):
        raise Invalid(f"not a {FORMAT} document", field="format")
    raw_trials = document.get("trials") or []
    raw_events = document.get("events") or []
    if not isinstance(raw_trials, list) or not isinstance(raw_events, list):
        raise Invalid("trials and events must be lists", field="trials")
    importer = StudyImporter(session, document, project_id=project_id)
    for index, raw in enumerate(raw_trials):
        importer.add_trial(raw, f"trials.{index}")
    importer.add_events(raw_events, "events")
    return importer.finish()


class StudyImporter:
    """Builds an imported study piece by piece inside the caller's transaction: the study,
    then each trial followed by its metric points and log chunks, then the events; `finish`
    links the best trial. `where` arguments name the part of the input for errors."""

    def __init__(self, session: Session, header: Any, where: str = "", project_id: int = 0) -> None:
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise Invalid(f"not a {FORMAT} document", field=f"{where}format")
        if header.get("version") != VERSION:
            raise Invalid(
                f"version {header.get('version')!r}; this server reads {VERSION}",
                f"{where}version",
            )
        fields = _load(Study, header.get("study"), f"{where}study")
        _check_study(fields, f"{where}study")
        self.session = session
        self.rows = TransferRepository(session)
        self.study = Study(**fields, project_id=project_id)
        StudyRepository(session).add(self.study)
        self.best_number = header["study"].get("best_trial_number")
        self.ids: dict[int, int] = {}  # trial number -> new id
        self.counts = {"trials": 0, "metrics": 0, "logs": 0, "events": 0}

    def trial_id(self, number: Any, where: str) -> int:
        if number not in self.ids:
            raise Invalid(f"no trial number {number!r} before this", field=where)
        return self.ids[number]

    def add_trial(self, raw: Any, where: str) -> None:
        """A trial; metric points and logs it carries (`metrics`, `logs`) come with it."""
        fields = _load(Trial, raw, where)
        _check_annotations(fields, where, with_tags=True)
        trial = Trial(study_id=self.study.id, **fields)
        if trial.number in self.ids:
            raise Invalid(f"trial number {trial.number} appears twice", field=f"{where}.number")
        self.session.add(trial)
        self.session.flush()
        self.ids[trial.number] = trial.id
        self.counts["trials"] += 1
        self.add_metrics(trial.number, raw.get("metrics") or [], f"{where}.metrics")
        self.add_logs(trial.number, raw.get("logs") or [], f"{where}.logs")

    def add_metrics(self, number: Any, raw: Any, where: str) -> None:
        self._add_rows(MetricPoint, number, raw, where, "metrics")

    def add_logs(self, number: Any, raw: Any, where: str) -> None:
        self._add_rows(TrialLog, number, raw, where, "logs")

    def _add_rows(self, model: type[Base], number: Any, raw: Any, where: str, counter: str) -> None:
        if not isinstance(raw, list):
            raise Invalid("must be a list", field=where)
        trial_id = self.ids[number]
        rows = [
            {"trial_id": trial_id, **_load(model, r, f"{where}.{n}")} for n, r in enumerate(raw)
        ]
        self.rows.insert_rows(model, rows)
        self.counts[counter] += len(rows)

    def add_events(self, raw: Any, where: str) -> None:
        """Events name their trial by `trial_number`; that trial must come before them."""
        if not isinstance(raw, list):
            raise Invalid("must be a list", field=where)
        rows = []
        for index, event in enumerate(raw):
            number = event.get("trial_number") if isinstance(event, dict) else None
            trial_id = (
                self.trial_id(number, f"{where}.{index}.trial_number")
                if number is not None
                else None
            )
            rows.append(
                {
                    "study_id": self.study.id,
                    "trial_id": trial_id,
                    **_load(Event, event, f"{where}.{index}"),
                }
            )
        self.rows.insert_rows(Event, rows)
        self.counts["events"] += len(rows)

    def finish(self) -> Study:
        if self.best_number is not None:
            best_id = self.ids.get(self.best_number)
            self.rows.set_best_trial(self.study.id, best_id, self.study.updated_at)
            set_committed_value(self.study, "best_trial_id", best_id)
        self.session.flush()
        return self.study


def _check_study(fields: dict[str, Any], where: str) -> None:
    """An import passes the checks a created study passes: its space parses, and its
    execution spec keeps to argv lists, allowed environment names and working roots."""
    from pydantic import ValidationError

    from app.engine.space import SearchSpace
    from app.studies.schemas import ExecutionSpec

    SearchSpace.from_dict(fields.get("space") or {}, f"{where}.space")
    _check_annotations(fields, where, with_tags=False)
    execution = fields.get("execution")
    if execution is not None:
        if isinstance(execution, dict):
            # Keys an older version wrote and this one no longer knows are no reason to
            # refuse the import; the checks that keep the spec safe still apply.
            execution = {k: v for k, v in execution.items() if k in ExecutionSpec.model_fields}
        try:
            ExecutionSpec.model_validate(execution)
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(part) for part in first["loc"])
            raise Invalid(str(first["msg"]), field=f"{where}.execution.{at}") from exc


def _check_annotations(fields: dict[str, Any], where: str, *, with_tags: bool) -> None:
    """Imported notes and a trial's tags keep the limits the API keeps (app/core/notes.py);
    an older export has none, and the columns' defaults apply."""
    from pydantic import TypeAdapter, ValidationError

    from app.core.notes import Notes, Tags

    checks: list[tuple[str, Any]] = [("notes", TypeAdapter(Notes))]
    if with_tags:
        checks.append(("tags", TypeAdapter(Tags)))
    for key, adapter in checks:
        if fields.get(key) is None:
            fields.pop(key, None)  # null: as if absent
            continue
        try:
            fields[key] = adapter.validate_python(fields[key], strict=True)
        except ValidationError as exc:
            first = exc.errors()[0]
            at = "".join(f".{part}" for part in first["loc"])
            raise Invalid(str(first["msg"]), field=f"{where}.{key}{at}") from exc


# Metric points or events per line of a stream: a line stays far below the body limit.
STREAM_ITEMS = 5000
_LINE_KINDS = ("trial", "metrics", "logs", "events", "end")


def document_lines(document: dict[str, Any], items_per_line: int = STREAM_ITEMS) -> Iterator[str]:
    """An export as NDJSON lines for `POST /studies/import/stream`: the header (format,
    version, study), each trial followed by its metric points and log chunks, the events,
    and last an `end` line with the counts, without which the import is refused."""
    yield _line({k: v for k, v in document.items() if k not in ("trials", "events")})
    counts = {"trials": 0, "metrics": 0, "logs": 0, "events": 0}
    for trial in document.get("trials") or []:
        yield _line({"trial": {k: v for k, v in trial.items() if k not in ("metrics", "logs")}})
        number = trial.get("number")
        points = trial.get("metrics") or []
        for start in range(0, len(points), items_per_line):
            chunk = points[start : start + items_per_line]
            yield _line({"metrics": {"trial_number": number, "items": chunk}})
        # One log chunk per line: a chunk is at most what one log request could carry.
        for log in trial.get("logs") or []:
            yield _line({"logs": {"trial_number": number, "items": [log]}})
        counts["trials"] += 1
        counts["metrics"] += len(points)
        counts["logs"] += len(trial.get("logs") or [])
    events = document.get("events") or []
    for start in range(0, len(events), items_per_line):
        yield _line({"events": events[start : start + items_per_line]})
    counts["events"] = len(events)
    yield _line({"end": counts})


def _line(item: Any) -> str:
    return json.dumps(item, allow_nan=False, separators=(",", ":"))


def import_lines(session: Session, lines: Iterable[bytes], project_id: int = 0) -> Study:
    """Creates the study of an NDJSON stream (see `document_lines`), line by line, so that
    memory stays bounded by one line. The caller commits only if this returns: a stream
    cut short, or refused at any line, leaves nothing behind. Errors name `lines.N...`."""
    importer: StudyImporter | None = None
    ended = False
    for number, raw in enumerate(lines, start=1):
        where = f"lines.{number}"
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError as exc:
            raise Invalid("is not a JSON line", field=where) from exc
        if importer is None:
            importer = StudyImporter(session, item, f"{where}.", project_id=project_id)
            continue
        if ended:
            raise Invalid("comes after the end line", field=where)
        if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in _LINE_KINDS:
            raise Invalid(f"must be an object with one key of {', '.join(_LINE_KINDS)}", where)
        kind, body = next(iter(item.items()))
        where = f"{where}.{kind}"
        if kind == "trial":
            importer.add_trial(body, where)
        elif kind in ("metrics", "logs"):
            if not isinstance(body, dict):
                raise Invalid("must be an object with trial_number and items", field=where)
            trial_number = body.get("trial_number")
            importer.trial_id(trial_number, f"{where}.trial_number")
            add = importer.add_metrics if kind == "metrics" else importer.add_logs
            add(trial_number, body.get("items"), f"{where}.items")
        elif kind == "events":
            importer.add_events(body, where)
        else:
            if body != importer.counts:
                raise Invalid(
                    f"says {body}, but the stream held {importer.counts}: lines are missing",
                    field=where,
                )
            ended = True
    if importer is None:
        raise Invalid("the stream is empty", field="body")
    if not ended:
        raise Invalid("the stream ended before its end line (cut short?)", field="body")
    return importer.finish()
