from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from app.core.schemas import InputSchema, Schema, WireFloat
from app.scaling.schemas import ScaleOptions
from app.studies.schemas import NameStr, StrategySpec, StudyRead


class PromoteRequest(ScaleOptions):
    """Promote the best `top_k` completed trials into a new study at the `to` world size."""

    top_k: int = Field(default=3, ge=1, le=1000)
    name: NameStr | None = None
    overrides: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description='Parameters set outright in the new study, e.g. {"data_fraction": 1.0}.',
    )
    max_trials: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Default: the number of promoted configs."
    )
    max_parallel_trials: int | None = Field(default=None, ge=1, le=10_000)
    strategy: StrategySpec | None = None
    tags: dict[str, Any] = Field(default_factory=dict)


class WarmStartRequest(InputSchema):
    parents: list[int] = Field(min_length=1, max_length=100)
    mode: Literal["same_data", "transfer"] = Field(
        default="same_data",
        description="same_data: the parents' finished trials count as observations; "
        "transfer: the parents' best configs become this study's first trials.",
    )
    top_k: int = Field(
        default=3, ge=1, le=1000, description="Configs taken from each parent (transfer)."
    )


class ExtendRequest(InputSchema):
    more_trials: int = Field(ge=1, le=1_000_000)
    space: dict[str, Any] | None = Field(
        default=None,
        description="A narrower space: a new study that reuses the results that fit in it.",
    )
    name: NameStr | None = None


class FollowupTrial(Schema):
    trial_id: int
    number: int
    params: dict[str, Any]
    parent_study_id: int
    parent_trial_id: int
    parent_value: WireFloat | None
    changes: list[dict[str, Any]] = Field(default_factory=list)
    steps: list[dict[str, Any]] = Field(default_factory=list)


class FollowupRead(Schema):
    study: StudyRead
    kind: Literal["promoted", "warm_start", "extended"]
    trials: list[FollowupTrial]
    skipped: int = 0
    notes: list[str] = Field(default_factory=list)


class StudyRef(Schema):
    id: int
    name: str
    state: str


class LineageRead(Schema):
    study_id: int
    parent_study_id: int | None
    ancestors: list[StudyRef]
    children: list[StudyRef]
    entries: list[dict[str, Any]]
