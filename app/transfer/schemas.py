"""Bodies of the transfer endpoints: an Optuna study to import."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from app.core.schemas import InputSchema, WireFloat
from app.studies.schemas import NameStr, StrategySpec

OPTUNA_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


class OptunaTrial(InputSchema):
    """One Optuna trial as `tunelab.integrations.optuna.trial_document` writes it."""

    number: int = Field(ge=0)
    state: Literal["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]
    params: dict[str, Any] = Field(default_factory=dict)
    distributions: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Tunelab parameter specs, one per param."
    )
    values: list[WireFloat] | None = None
    intermediate_values: list[tuple[float, WireFloat]] = Field(
        default_factory=list, description="[step, value] pairs of the first objective."
    )
    user_attrs: dict[str, Any] = Field(default_factory=dict)
    fail_reason: str | None = None
    datetime_start: str | None = None
    datetime_complete: str | None = None


class OptunaStudyDocument(InputSchema):
    """An Optuna study (`tunelab.integrations.optuna.study_document`)."""

    format: Literal["optuna-study"]
    version: Literal[1]
    study_name: str
    directions: list[Literal["minimize", "maximize"]] = Field(min_length=1, max_length=10)
    metric_names: list[NameStr] | None = None
    user_attrs: dict[str, Any] = Field(default_factory=dict)
    trials: list[OptunaTrial] = Field(default_factory=list)


class OptunaImport(InputSchema):
    study: OptunaStudyDocument
    name: NameStr | None = Field(default=None, description="Default: the Optuna study's name.")
    strategy: StrategySpec | None = Field(
        default=None,
        description="How the study goes on (default: tpe); it starts from the imported trials.",
    )
    more_trials: int = Field(
        default=20, ge=0, le=1_000_000, description="New trials allowed after the imported ones."
    )
    max_parallel_trials: int = Field(default=1, ge=1, le=10_000)
