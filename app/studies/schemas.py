from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from app.core.notes import Notes
from app.core.schemas import InputSchema, Schema, WireFloat
from app.studies.models import StudyState

NameStr = Annotated[str, Field(min_length=1, max_length=200)]


class PriorSpec(InputSchema):
    """The user's belief about a parameter (app/engine/priors.py); checked against its range."""

    value: str | int | float | bool
    confidence: Literal["low", "medium", "high"] = "medium"


ConditionSpec = Annotated[
    dict[str, list[str | int | float | bool]],
    Field(
        description="Active only when every named parent parameter has one of the listed "
        'values, e.g. {"optimizer": ["sgd"]} (app/engine/space.py checks the parents).'
    ),
]


class FloatSpec(InputSchema):
    type: Literal["float"]
    low: float
    high: float
    scale: Literal["linear", "log", "reverse_log"] = "linear"
    step: float | None = None
    role: str | None = Field(default=None, description="learning_rate, per_device_batch_size, ...")
    prior: PriorSpec | None = None
    condition: ConditionSpec | None = None


class IntSpec(InputSchema):
    type: Literal["int"]
    low: int
    high: int
    scale: Literal["linear", "log"] = "linear"
    step: int | None = None
    role: str | None = None
    prior: PriorSpec | None = None
    condition: ConditionSpec | None = None


class CategoricalSpec(InputSchema):
    type: Literal["categorical"]
    choices: list[str | int | float | bool] = Field(min_length=1)
    role: str | None = None
    prior: PriorSpec | None = None
    condition: ConditionSpec | None = None


class FixedSpec(InputSchema):
    type: Literal["fixed"]
    value: str | int | float | bool
    role: str | None = None
    condition: ConditionSpec | None = None


ParamSpec = Annotated[
    FloatSpec | IntSpec | CategoricalSpec | FixedSpec, Field(discriminator="type")
]


class Objective(InputSchema):
    metric: NameStr
    direction: Literal["minimize", "maximize"]
    aggregate: Literal["last", "best"] = Field(
        default="last", description="How a trial's value comes from its metric points."
    )


class Constraint(InputSchema):
    """A limit on a metric, read from the trial's points like an objective (last point)."""

    metric: NameStr
    op: Literal["<=", ">="]
    value: float = Field(allow_inf_nan=False)


MAX_OBJECTIVES = 3
MAX_CONSTRAINTS = 10


class StrategySpec(InputSchema):
    """`name` and `seed`; any other key is an option of the strategy, checked against the
    options that strategy reads (app/engine/options.py) when the study is validated, so a
    misspelled one is a 422 naming it (`strategy.sed`)."""

    model_config = ConfigDict(extra="allow")

    name: str = "random"
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class EarlyStopping(InputSchema):
    """`rule` and its options, checked against that rule's options (app/engine/options.py)
    when the study is validated."""

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
        default=60,
        gt=0,
        le=7 * 86400,
        description=(
            "A running trial silent this long is failed (and retried if allowed). Runners "
            "beat every second; a lost Celery worker is noticed sooner, in about 10 s."
        ),
    )
    max_retries: int = Field(default=0, ge=0, le=100)


class FidelitySpec(InputSchema):
    param: NameStr
    min: float = Field(gt=0)
    max: float = Field(gt=0)
    reduction_factor: float = Field(default=3.0, gt=1)


class MetricDefinition(InputSchema):
    """A metric read from the trial's console: `value` (and optionally `step`) are named groups.

    Without a `step` group, the n-th match is step n. Patterns are RE2, so a line from a
    training script can never make the matcher run in more than linear time."""

    name: NameStr
    regex: str = Field(min_length=1, max_length=2000)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        import re2

        options = re2.Options()
        options.log_errors = False  # the 422 says what is wrong; no need for stderr noise
        try:
            pattern = re2.compile(regex, options)
        except re2.error as exc:
            detail = (
                exc.args[0].decode(errors="replace")
                if exc.args and isinstance(exc.args[0], bytes)
                else str(exc)
            )
            raise ValueError(f"not a valid RE2 regex: {detail}") from None
        groups = pattern.groupindex
        if "value" not in groups and pattern.groups != 1:
            raise ValueError("needs a named group (?P<value>...) or exactly one group")
        return regex


class ExecutionSpec(InputSchema):
    """How a worker runs one trial: an argv list (never a shell) and how to read its metrics."""

    command: list[Annotated[str, Field(min_length=1, max_length=4000)]] = Field(
        min_length=1, max_length=1000
    )
    args: Literal["flags", "template"] = Field(
        default="flags",
        description="flags: append --name value per hyperparameter; template: fill {name} in the command.",
    )
    metric_definitions: list[MetricDefinition] = Field(default_factory=list, max_length=100)
    gpus_per_trial: int = Field(default=0, ge=0, le=64)
    env: dict[str, str] = Field(default_factory=dict)
    working_dir: str | None = Field(default=None, max_length=4000)
    timeout_s: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0, le=100)
    queue: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$"
    )
    stop_grace_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="Seconds between SIGTERM and SIGKILL when a trial is stopped.",
    )
    checkpoint: bool = Field(
        default=False,
        description="The script saves a checkpoint in TUNELAB_CHECKPOINT_DIR when it exits and "
        "loads it when it starts: needed by pbt and pb2, which copy a member's folder into another's.",
    )

    @field_validator("env")
    @classmethod
    def _safe_env(cls, env: dict[str, str]) -> dict[str, str]:
        from app.security.execution import check_env

        return check_env(env)

    @field_validator("working_dir")
    @classmethod
    def _confined(cls, working_dir: str | None) -> str | None:
        from app.security.execution import check_working_dir, configured_roots

        return None if working_dir is None else check_working_dir(working_dir, configured_roots())


class StudyCreate(InputSchema):
    name: NameStr
    # One objective, or `objectives` (the first is then `objective` too).
    objective: Objective
    objectives: list[Objective] | None = Field(
        default=None, min_length=1, max_length=MAX_OBJECTIVES
    )
    constraints: list[Constraint] = Field(default_factory=list, max_length=MAX_CONSTRAINTS)
    reference_point: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        default=None,
        description="Hypervolume reference point, one value per objective (default: derived).",
    )
    space: dict[str, ParamSpec]
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    early_stopping: EarlyStopping | None = None
    limits: Limits = Field(default_factory=Limits)
    fidelity: FidelitySpec | None = None
    execution: ExecutionSpec | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    notes: Notes = ""
    parent_study_id: int | None = None
    project: str | int | None = Field(
        default=None,
        description="The project (name or id) the study belongs to; default: the default "
        "project. Needs the member role there.",
    )

    @model_validator(mode="before")
    @classmethod
    def _first_objective(cls, data: Any) -> Any:
        """`objectives` alone: the first one is `objective` (what every single-objective
        reader uses); both given must agree (checked in the service, naming the field)."""
        if isinstance(data, dict) and data.get("objective") is None:
            many = data.get("objectives")
            if isinstance(many, list) and many:
                data = {**data, "objective": many[0]}
        return data


class StudyUpdate(InputSchema):
    state: Literal["running", "paused", "stopped"] | None = None
    name: NameStr | None = None
    limits: Limits | None = None
    tags: dict[str, Any] | None = None
    notes: Notes | None = None


class StudyRead(Schema):
    id: int
    name: str
    state: StudyState
    state_reason: str
    objective: Objective
    objectives: list[Objective] = Field(default_factory=list)
    constraints: list[Constraint] = Field(default_factory=list)
    reference_point: list[float] | None = None
    space: dict[str, Any]
    strategy: dict[str, Any]
    early_stopping: dict[str, Any] | None
    limits: Limits
    fidelity: FidelitySpec | None
    execution: dict[str, Any] | None
    tags: dict[str, Any]
    # Markdown notes (app/core/notes.py), who changed them last and when.
    notes: str = ""
    notes_updated_at: datetime | None = None
    notes_updated_by: str | None = None
    parent_study_id: int | None
    project_id: int = 0
    seed: int
    best_value: WireFloat | None
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
