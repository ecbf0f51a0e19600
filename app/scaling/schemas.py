from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from app.core.schemas import InputSchema, Schema


class WorldSpec(InputSchema):
    nodes: int = Field(ge=1, le=100_000)
    gpus_per_node: int = Field(ge=1, le=1024)


class ScaleOptions(InputSchema):
    """How to move from one world size to another. `from` may be left out when the
    study's tags say its world: `tags.world = {nodes, gpus_per_node}`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, ser_json_inf_nan="strings")

    source: WorldSpec | None = Field(default=None, alias="from")
    target: WorldSpec = Field(alias="to")
    rule: Literal["linear", "sqrt", "none"] = "linear"
    per_device_batch: int | None = Field(
        default=None, ge=1, description="A new per-device batch; by default it stays as it is."
    )
    warmup: Literal["same_samples", "same_steps"] = Field(
        default="same_samples",
        description="Keep the warm-up in samples (fewer steps with a larger batch) or in steps.",
    )


class ScaleRequest(ScaleOptions):
    pass


class ConfigScaleRequest(ScaleOptions):
    """Scale a config that is not a trial: roles are given next to the params."""

    params: dict[str, Any]
    roles: dict[str, str] = Field(default_factory=dict)


class WorldRead(Schema):
    nodes: int
    gpus_per_node: int
    world_size: int


class StepRead(Schema):
    what: str
    formula: str
    value: float | int | None
    param: str | None
    role: str | None


class ChangeRead(Schema):
    param: str
    role: str
    before: Any
    after: Any


class ScaleRead(Schema):
    trial_id: int | None = None
    study_id: int | None = None
    rule: str
    source: WorldRead = Field(serialization_alias="from")
    target: WorldRead = Field(serialization_alias="to")
    world_factor: float
    batch_factor: float
    lr_factor: float
    warmup_factor: float
    roles: dict[str, str]
    roles_inferred: bool
    params: dict[str, Any]
    changes: list[ChangeRead]
    steps: list[StepRead]
    notes: list[str]
