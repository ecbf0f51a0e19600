from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.core.schemas import InputSchema, Schema, WireFloat


class MetricPointIn(InputSchema):
    name: str = Field(min_length=1, max_length=200)
    step: float = Field(allow_inf_nan=False)
    # NaN and +/-inf are allowed (as JSON NaN/Infinity or the strings "NaN", "Infinity").
    value: WireFloat


class MetricPointRead(Schema):
    id: int
    name: str
    step: float
    value: WireFloat
    created_at: datetime


class MetricPointList(Schema):
    items: list[MetricPointRead]
    # Pass as `since` to get only newer points.
    cursor: int
