from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """Base of every API schema. NaN and infinities travel as "NaN", "Infinity", "-Infinity"."""

    model_config = ConfigDict(ser_json_inf_nan="strings", from_attributes=True)


class InputSchema(Schema):
    """Request bodies reject unknown fields, so a typo is an error that names it."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")
