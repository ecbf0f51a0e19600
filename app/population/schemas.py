"""What the population view and a replay read and send."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.core.schemas import InputSchema, Schema, WireFloat


class ScheduleEntry(Schema):
    step: float  # fidelity units from which these values hold
    params: dict[str, Any]


class Exploit(Schema):
    step: float  # the member's own step when it exploited
    donor_id: int
    donor_number: int
    donor_step: float  # where the copied checkpoint was; the member goes on from there
    donor_value: WireFloat | None = None
    value: WireFloat | None = None  # the member's score that put it in the bottom quantile
    from_params: dict[str, Any] = Field(default_factory=dict)
    to_params: dict[str, Any] = Field(default_factory=dict)
    schedule_before: list[ScheduleEntry] = Field(
        default_factory=list, description="The member's schedule before this exploit."
    )


class Member(Schema):
    trial_id: int
    number: int
    state: str
    value: WireFloat | None
    budget: float | None
    params: dict[str, Any]
    # The values the member's weights were trained with, per fidelity interval (inherited
    # from the donor up to an exploit).
    schedule: list[ScheduleEntry]
    scores: dict[str, WireFloat | None]  # the objective at each boundary ("4": 0.31)
    lineage: list[Exploit]
    replay_of: int | None = None  # for a replay trial: the trial whose schedule it runs


class Edge(Schema):
    donor_id: int
    receiver_id: int
    step: float
    donor_step: float


class PopulationRead(Schema):
    strategy: str
    metric: str
    direction: str
    fidelity_param: str | None
    perturbation_interval: float | None
    population_size: int | None
    members: list[Member]
    replays: list[Member]
    edges: list[Edge]


class ScheduleRead(Schema):
    trial_id: int
    schedule: list[ScheduleEntry]
    lineage: list[Exploit]
    replay_of: int | None = None


class ReplayRequest(InputSchema):
    trial_id: int | None = Field(
        default=None, description="The member whose schedule to replay; default: the best."
    )
