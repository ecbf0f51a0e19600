from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AllowInfNan, BaseModel, BeforeValidator, ConfigDict, PlainSerializer

# JSON has no NaN or infinities: they travel as these strings, both ways.
NonFinite = Literal["NaN", "Infinity", "-Infinity"]


def _as_sent(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _unchanged(value: object) -> object:
    return value


# A number that may be NaN or +/-inf (a trial's value, a metric point): in Python a float,
# on the wire a JSON number or one of the NonFinite strings, and the OpenAPI schema says so
# for requests and responses alike, so that generated clients get the type right.
WireFloat = Annotated[
    float,
    AllowInfNan(True),
    BeforeValidator(_unchanged, json_schema_input_type=float | NonFinite),
    PlainSerializer(_as_sent, return_type=float | NonFinite, when_used="json"),
]


class Schema(BaseModel):
    """Base of every API schema. NaN and infinities travel as "NaN", "Infinity", "-Infinity"
    (declare such a field WireFloat, so that the schema says so)."""

    model_config = ConfigDict(ser_json_inf_nan="strings", from_attributes=True)


class InputSchema(Schema):
    """Request bodies reject unknown fields, so a typo is an error that names it. A float is
    finite (a limit, a bound, a fidelity) unless declared WireFloat: NaN or infinity there is
    a 422 naming the field, not a value that is stored and then sent back off its schema."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings", allow_inf_nan=False)
