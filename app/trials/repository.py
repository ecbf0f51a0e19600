"""Every SQL query about trials and their logs."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, cast, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, with_expression

from app.core.notes import EXCERPT_CHARS
from app.engine.base import TrialState
from app.trials.models import Trial, TrialLog

ORDERINGS = (
    "number",
    "-number",
    "value",
    "-value",
    "started_at",
    "-started_at",
    "finished_at",
    "-finished_at",
)
_TIME_KEYS = ("started_at", "finished_at")
# What a listing reads of a trial's note.
_EXCERPT = func.substr(Trial.notes, 1, EXCERPT_CHARS)


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), default=str).encode()).decode()


def decode_cursor(cursor: str) -> list[Any]:
    return list(json.loads(base64.urlsafe_b64decode(cursor.encode())))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63


def parse_cursor(cursor: str, key: str) -> tuple[bool, Any, int]:
    """(last is null, last sort value, last id) of a cursor for ordering by `key`.

    A cursor comes back from the client: anything but the shape `page` wrote raises
    ValueError, so that a forged one is a 422 and never reaches the database."""
    raw = decode_cursor(cursor)
    if len(raw) != 3:
        raise ValueError("a cursor has three parts")
    last_null, last_value, last_id = raw
    if not isinstance(last_null, bool) or not _is_int(last_id):
        raise ValueError("malformed cursor")
    if last_null:
        return True, None, last_id
    if key in _TIME_KEYS:
        if not isinstance(last_value, str):
            raise ValueError("malformed cursor")
        return False, datetime.fromisoformat(last_value), last_id
    if key == "value":
        if isinstance(last_value, bool) or not isinstance(last_value, int | float):
            raise ValueError("malformed cursor")
        return False, float(last_value), last_id
    if not _is_int(last_value):
        raise ValueError("malformed cursor")
    return False, last_value, last_id


class TrialRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, trial_id: int) -> Trial | None:
        return self.session.get(Trial, trial_id)

    def get_for_update(self, trial_id: int) -> Trial | None:
        stmt = select(Trial).where(Trial.id == trial_id)
        if self.session.get_bind().dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).first()

    def add(self, trial: Trial) -> Trial:
        self.session.add(trial)
        self.session.flush()
        return trial

    def annotate(self, trial: Trial, changes: dict[str, Any]) -> None:
        """Writes a person's notes and tags: one UPDATE of those columns of the trial's
        row, which a concurrent lifecycle change (it writes only the columns it changes)
        neither overwrites nor is overwritten by."""
        for key, value in changes.items():
            setattr(trial, key, value)
        self.session.flush()

    def notes_of(self, trial: Trial) -> tuple[str, datetime | None, str | None]:
        """The trial's note, when and by whom it was last written (one query, by id)."""
        return trial.notes, trial.notes_updated_at, trial.notes_updated_by

    def count_in_states(self, study_id: int, states: Sequence[str]) -> int:
        stmt = (
            select(func.count())
            .select_from(Trial)
            .where(Trial.study_id == study_id, Trial.state.in_(list(states)))
        )
        # Sessions do not autoflush: state changes made earlier in this transaction (a
        # trial just completed) must be in the count, or a study never sees its end.
        self.session.flush()
        return int(self.session.scalar(stmt) or 0)

    def counts_by_state(self, study_id: int, states: Sequence[str]) -> dict[str, int]:
        """Trials of the study in each of `states` (absent: none), in one query."""
        stmt = (
            select(Trial.state, func.count())
            .where(Trial.study_id == study_id, Trial.state.in_(list(states)))
            .group_by(Trial.state)
        )
        self.session.flush()  # count this transaction's own changes too
        return {state: int(n) for state, n in self.session.execute(stmt)}

    def first_queued(self, study_id: int) -> Trial | None:
        stmt = (
            select(Trial)
            .where(Trial.study_id == study_id, Trial.state == TrialState.QUEUED)
            .order_by(Trial.number)
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def in_states(self, study_id: int, states: Sequence[str] | None = None) -> list[Trial]:
        stmt = select(Trial).where(Trial.study_id == study_id)
        if states is not None:
            stmt = stmt.where(Trial.state.in_(list(states)))
        return list(self.session.scalars(stmt.order_by(Trial.number)))

    def all_for_study(self, study_id: int) -> list[Trial]:
        return self.in_states(study_id)

    def changed_since(self, study_id: int, version: int) -> Sequence[Any]:
        """What a strategy sees of the trials changed after the study's history `version`
        (all of them for -1): columns only, no ORM objects."""
        stmt = (
            select(
                Trial.id,
                Trial.number,
                Trial.params,
                Trial.state,
                Trial.value,
                Trial.budget,
                Trial.rung,
                Trial.extra,
                Trial.history_version,
                Trial.values,
                Trial.constraint_values,
            )
            .where(Trial.study_id == study_id, Trial.history_version > version)
            # In version order, so that the planner walks ix_trials_study_version: in number
            # order it may scan the whole study through (study_id, number).
            .order_by(Trial.history_version)
        )
        return self.session.execute(stmt).all()

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        """Whether the trial's tags (a JSON list) hold `tag`."""
        if self.session.get_bind().dialect.name == "sqlite":
            values = func.json_each(Trial.tags).table_valued("value")
            return select(values.c.value).where(values.c.value == tag).exists()
        return cast(Trial.tags, JSONB).contains([tag])

    def page(
        self,
        study_id: int,
        states: Sequence[str] | None,
        order_by: str,
        limit: int,
        cursor: str | None,
        tag: str | None = None,
    ) -> tuple[list[Trial], str | None]:
        """Keyset pagination: the cursor holds the sort key of the last row returned.
        Rows carry the first characters of their note (`notes_excerpt`), not the note."""
        descending = order_by.startswith("-")
        key = order_by.lstrip("-")
        column: Any = {
            "number": Trial.number,
            "value": Trial.value,
            "started_at": Trial.started_at,
            "finished_at": Trial.finished_at,
        }[key]
        stmt = (
            select(Trial)
            .where(Trial.study_id == study_id)
            .options(with_expression(Trial.notes_excerpt, _EXCERPT))
        )
        if states:
            stmt = stmt.where(Trial.state.in_(list(states)))
        if tag is not None:
            stmt = stmt.where(self._has_tag(tag))
        if cursor:
            last_null, last_value, last_id = parse_cursor(cursor, key)
            stmt = stmt.where(self._after(column, bool(last_null), last_value, last_id, descending))
        # Rows without a sort value come last in both directions: (is null, value, id).
        nulls_last = case((column.is_(None), 1), else_=0)
        order = (lambda c: c.desc()) if descending else (lambda c: c.asc())
        stmt = stmt.order_by(nulls_last, order(column), order(Trial.id))
        rows = list(self.session.scalars(stmt.limit(limit + 1)))
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            value = getattr(last, key)
            if isinstance(value, datetime):
                value = value.isoformat()
            next_cursor = encode_cursor([value is None, value, last.id])
        return rows, next_cursor

    @staticmethod
    def _after(
        column: Any, last_null: bool, last_value: Any, last_id: int, descending: bool
    ) -> ColumnElement[bool]:
        beyond = (lambda c, v: c < v) if descending else (lambda c, v: c > v)
        if last_null:
            return and_(column.is_(None), beyond(Trial.id, last_id))
        return or_(
            column.is_(None),
            beyond(column, last_value),
            and_(column == last_value, beyond(Trial.id, last_id)),
        )

    def running_on(self, worker_prefix: str) -> list[Trial]:
        """Running trials whose worker name starts with `worker_prefix`."""
        stmt = select(Trial).where(
            Trial.state == TrialState.RUNNING,
            Trial.worker.startswith(worker_prefix, autoescape=True),
        )
        return list(self.session.scalars(stmt.order_by(Trial.id)))

    def stale_running(
        self, now: datetime, limit: int = 100, alive_since: datetime | None = None
    ) -> list[Trial]:
        """Running trials of any study whose last sign of life is older than their timeout.
        Silence before `alive_since` (when this API process started) does not count: no
        one could have heard the trial then, so an API restart fails no trial.

        The timeout lives in each study's limits (JSON), so candidates are filtered in
        Python; only trials idle for at least the smallest allowed timeout are read."""
        from app.studies.models import Study
        from app.studies.settings import stored_limits

        stmt = (
            select(Trial, Study.limits)
            .join(Study, Study.id == Trial.study_id)
            .where(Trial.state == TrialState.RUNNING)
            .order_by(Trial.heartbeat_at)
            .limit(limit * 10)
        )
        stale: list[Trial] = []
        for trial, limits in self.session.execute(stmt):
            timeout = stored_limits(limits).heartbeat_timeout_s
            seen = trial.heartbeat_at or trial.started_at or trial.created_at
            if alive_since is not None:
                seen = max(seen, alive_since)
            if (now - seen).total_seconds() > timeout:
                stale.append(trial)
            if len(stale) >= limit:
                break
        return stale

    # Logs -----------------------------------------------------------------------------

    def append_log(self, trial_id: int, offset: int, text: str) -> None:
        exists = self.session.scalar(
            select(TrialLog.id).where(TrialLog.trial_id == trial_id, TrialLog.offset == offset)
        )
        if exists is None:
            self.session.add(TrialLog(trial_id=trial_id, offset=offset, text=text))
            self.session.flush()

    def log_end(self, trial_id: int) -> int:
        stmt = (
            select(TrialLog.offset, TrialLog.text)
            .where(TrialLog.trial_id == trial_id)
            .order_by(TrialLog.offset.desc())
            .limit(1)
        )
        row = self.session.execute(stmt).first()
        return 0 if row is None else row[0] + len(row[1].encode())

    def read_log(self, trial_id: int, offset: int, limit_bytes: int) -> tuple[str, int]:
        stmt = (
            select(TrialLog.offset, TrialLog.text)
            .where(TrialLog.trial_id == trial_id)
            .order_by(TrialLog.offset)
        )
        parts: list[bytes] = []
        position = offset
        for chunk_offset, text in self.session.execute(stmt):
            data = text.encode()
            end = chunk_offset + len(data)
            if end <= position:
                continue
            if chunk_offset > position:  # a gap: a chunk not yet received
                break
            parts.append(data[position - chunk_offset :])
            position = end
            if position - offset >= limit_bytes:
                break
        blob = b"".join(parts)[:limit_bytes]
        # Never cut a UTF-8 character in two.
        text_out = blob.decode("utf-8", errors="ignore")
        return text_out, offset + len(text_out.encode())

    def export_chunk(self, study_id: int, after_number: int, limit: int) -> Sequence[Any]:
        """The next `limit` trials after `after_number`, as the export writes them
        (number, id, params, value, state, budget, started_at, finished_at, values,
        constraint_values, tags, notes): columns only,
        read by the (study_id, number) key, so an export pages in constant memory."""
        stmt = (
            select(
                Trial.number,
                Trial.id,
                Trial.params,
                Trial.value,
                Trial.state,
                Trial.budget,
                Trial.started_at,
                Trial.finished_at,
                Trial.values,
                Trial.constraint_values,
                Trial.tags,
                Trial.notes,
            )
            .where(Trial.study_id == study_id, Trial.number > after_number)
            .order_by(Trial.number)
            .limit(limit)
        )
        return self.session.execute(stmt).all()

    def unsuggested_params(self, study_id: int, after_number: int, limit: int) -> Sequence[Any]:
        """(number, params) of the next trials not suggested by the study's strategy: only
        a user's or an imported config can hold a key outside the study's space."""
        stmt = (
            select(Trial.number, Trial.params)
            .where(
                Trial.study_id == study_id,
                Trial.number > after_number,
                Trial.source != "suggested",
            )
            .order_by(Trial.number)
            .limit(limit)
        )
        return self.session.execute(stmt).all()

    def results(self, study_id: int) -> Sequence[Any]:
        """(id, number, state, value, values, constraint_values) of the study's trials that
        have a result, in number order: what the Pareto set and the hypervolume read."""
        stmt = (
            select(
                Trial.id,
                Trial.number,
                Trial.state,
                Trial.value,
                Trial.values,
                Trial.constraint_values,
            )
            .where(
                Trial.study_id == study_id,
                Trial.value.is_not(None),
                Trial.state.in_((TrialState.COMPLETED, TrialState.STOPPED)),
            )
            .order_by(Trial.number)
        )
        return self.session.execute(stmt).all()

    def by_ids(self, ids: Sequence[int]) -> list[Trial]:
        """The trials with these ids, in number order."""
        out: list[Trial] = []
        for start in range(0, len(ids), 900):  # under SQLite's bound-parameter limit
            chunk = list(ids[start : start + 900])
            stmt = select(Trial).where(Trial.id.in_(chunk))
            stmt = stmt.options(with_expression(Trial.notes_excerpt, _EXCERPT))
            out.extend(self.session.scalars(stmt))
        return sorted(out, key=lambda t: t.number)
