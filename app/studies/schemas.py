from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from app.core.schemas import InputSchema, Schema
from app.studies.models import StudyState

NameStr = Annotated[str, Field(min_length=1, max_length=200)]


class FloatSpec(InputSchema):
    type: Literal["float"]
    low: float
    high: float
    scale: Literal["linear", "log", "reverse_log"] = "linear"
    step: float | None = None
    role: str | None = Field(default=None, description="learning_rate, per_device_batch_size, ...")


class IntSpec(InputSchema):
    type: Literal["int"]
    low: int
    high: int
    scale: Literal["linear", "log"] = "linear"
    step: int | None = None
    role: str | None = None


class CategoricalSpec(InputSchema):
    type: Literal["categorical"]
    choices: list[str | int | float | bool] = Field(min_length=1)
    role: str | None = None


class FixedSpec(InputSchema):
    type: Literal["fixed"]
    value: str | int | float | bool
    role: str | None = None


ParamSpec = Annotated[
    FloatSpec | IntSpec | CategoricalSpec | FixedSpec, Field(discriminator="type")
]


class Objective(InputSchema):
    metric: NameStr
    direction: Literal["minimize", "maximize"]
    aggregate: Literal["last", "best"] = Field(
        default="last", description="How a trial's value comes from its metric points."
    )


class StrategySpec(InputSchema):
    """`name` and `seed`; any other key is an option of the strategy."""

    model_config = ConfigDict(extra="allow")

    name: str = "random"
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class EarlyStopping(InputSchema):
    model_config = ConfigDict(extra="allow")

    rule: str


class Limits(InputSchema):
    max_trials: int = Field(default=20, ge=1, le=1_000_000)
    max_parallel_trials: int = Field(default=1, ge=1, le=10_000)
    max_runtime_s: float | None = Field(default=None, gt=0)
    target_value: float | None = None
    max_trials_without_improvement: int | None = Field(default=None, ge=1)
    max_budget: float | None = Field(default=None, gt=0, description="Total fidelity units")
    heartbeat_timeout_s: float = Field(
        default=300,
        gt=0,
        le=7 * 86400,
        description="A running trial silent this long is failed (and retried if allowed).",
    )
    max_retries: int = Field(default=0, ge=0, le=100)


class FidelitySpec(InputSchema):
    param: NameStr
    min: float = Field(gt=0)
    max: float = Field(gt=0)
    reduction_factor: float = Field(default=3.0, gt=1)


class StudyCreate(InputSchema):
    name: NameStr
    objective: Objective
    space: dict[str, ParamSpec]
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    early_stopping: EarlyStopping | None = None
    limits: Limits = Field(default_factory=Limits)
    fidelity: FidelitySpec | None = None
    execution: dict[str, Any] | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    parent_study_id: int | None = None


class StudyUpdate(InputSchema):
    state: Literal["running", "paused", "stopped"] | None = None
    name: NameStr | None = None
    limits: Limits | None = None
    tags: dict[str, Any] | None = None


class StudyRead(Schema):
    id: int
    name: str
    state: StudyState
    state_reason: str
    objective: Objective
    space: dict[str, Any]
    strategy: dict[str, Any]
    early_stopping: dict[str, Any] | None
    limits: Limits
    fidelity: FidelitySpec | None
    execution: dict[str, Any] | None
    tags: dict[str, Any]
    parent_study_id: int | None
    seed: int
    best_value: float | None
    best_trial_id: int | None
    n_trials: int
    trial_counts: dict[str, int]
    budget_used: float
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class StudyList(Schema):
    items: list[StudyRead]
    total: int
