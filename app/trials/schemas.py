from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from app.core.notes import MAX_TAGS, Notes, Tags
from app.core.schemas import InputSchema, Schema, WireFloat
from app.engine.base import Action, TrialState
from app.metrics.schemas import MetricPointIn


class TrialCreate(InputSchema):
    """Empty: the strategy suggests (ask). `params`: run this config. With `value` and
    `state`: import a finished result."""

    params: dict[str, Any] | None = None
    value: WireFloat | None = None
    values: list[WireFloat] | None = Field(
        default=None, min_length=1, max_length=3, description="One per objective."
    )
    state: Literal["completed", "failed"] | None = None
    metrics: list[MetricPointIn] | None = Field(
        default=None, max_length=100_000, description="Curves of an imported trial."
    )
    worker: str | None = Field(default=None, max_length=200, description="Who runs the trial.")
    queue: bool = Field(default=False, description="Enqueue `params` to run next instead of now.")


class TrialRead(Schema):
    id: int
    study_id: int
    number: int
    state: TrialState
    params: dict[str, Any]
    value: WireFloat | None
    budget: float | None
    rung: int
    source: str
    retries: int
    resumes: int
    error: str | None
    worker: str | None
    last_step: float | None
    extra: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    # Several objectives and constraints (app/trials/front.py fills them).
    values: list[WireFloat | None] | None = None
    constraints: list[TrialConstraintRead] = Field(default_factory=list)
    feasible: bool | None = None
    is_pareto: bool = False
    tags: list[str] = Field(default_factory=list)
    # Listings carry the note's first characters, not the note (up to 64 KiB a trial):
    # `has_notes` and `notes_excerpt` are filled by listings and single-trial reads, and
    # null in the answers to ask, tell, cancel and retry, which do not read the note.
    has_notes: bool | None = None
    notes_excerpt: str | None = None


class TrialDetail(TrialRead):
    """One trial as `GET /trials/{id}` and `PATCH /trials/{id}` answer: with its note."""

    notes: str = ""
    notes_updated_at: datetime | None = None
    notes_updated_by: str | None = None


class TrialUpdate(InputSchema):
    """A person's annotations; absent fields stay as they are. Neither is seen by the
    trial's strategy, so changing them never touches the trial's lifecycle."""

    notes: Notes | None = None
    tags: Tags | None = None
    # Changes to the tags as they are when the write lands: two people tagging the same
    # trial at once both keep theirs (`tags` replaces the whole list).
    add_tags: Tags | None = Field(
        default=None, description="Tags to add (those already there stay once)."
    )
    remove_tags: list[str] | None = Field(
        default=None, max_length=MAX_TAGS, description="Tags to take off (absent ones are ignored)."
    )


class TrialConstraintRead(Schema):
    """A constraint as the trial met it: `violation` is how far past `limit` (0: met)."""

    metric: str
    op: Literal["<=", ">="]
    limit: float
    value: WireFloat | None
    violation: WireFloat | None


class TrialAsked(TrialRead):
    resume: bool = False
    # A token for the process that runs this trial: it may report on, heartbeat, log and
    # complete this trial only. None while the server runs without tokens.
    token: str | None = None


class TrialList(Schema):
    items: list[TrialRead]
    next_cursor: str | None


class LogChunkIn(InputSchema):
    offset: int = Field(ge=0)
    text: str = Field(max_length=1_000_000)


class TrialComplete(InputSchema):
    state: Literal["completed", "failed"] = "completed"
    value: WireFloat | None = None
    values: list[WireFloat] | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        description="One value per objective, in the study's order (several objectives).",
    )
    error: str | None = Field(default=None, max_length=100_000)
    # A runner's last points and console output ride along with the completion, so the
    # end of a trial costs one round trip. Stored first, exactly as the metrics and logs
    # endpoints store them (idempotent), so `value` may come from these points.
    metrics: list[MetricPointIn] | None = Field(
        default=None,
        max_length=10_000,
        description="Last metric points, stored as POST /trials/{id}/metrics would.",
    )
    log: LogChunkIn | None = Field(
        default=None, description="Last console chunk, stored as POST /trials/{id}/logs would."
    )


class DecisionRead(Schema):
    decision: Action
    reason: str = ""


class LogRead(Schema):
    offset: int
    next_offset: int
    text: str
    complete: bool


class LogEndRead(Schema):
    # The byte offset after the last chunk stored: where a resumed run's output goes.
    offset: int


class HypervolumePoint(Schema):
    number: int
    trial_id: int
    hypervolume: float


class HypervolumeRead(Schema):
    reference_point: list[float] | None
    reference_point_source: Literal["given", "derived"] | None
    points: list[HypervolumePoint]


class ParetoRead(Schema):
    objectives: list[dict[str, Any]]
    reference_point: list[float] | None
    reference_point_source: Literal["given", "derived"] | None
    hypervolume: float | None
    trials: list[TrialRead]
