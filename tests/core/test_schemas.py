"""WireFloat: NaN and infinities as strings on the wire, both ways, and a schema that says so;
every other request float is finite."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from app.core.schemas import InputSchema, Schema, WireFloat


class Point(InputSchema):
    value: WireFloat
    bound: float = 1.0


class Read(Schema):
    value: WireFloat | None


@pytest.mark.parametrize(
    ("sent", "stored", "echoed"),
    [
        (0.5, 0.5, "0.5"),
        ("NaN", math.nan, '"NaN"'),
        ("Infinity", math.inf, '"Infinity"'),
        ("-Infinity", -math.inf, '"-Infinity"'),
        (math.nan, math.nan, '"NaN"'),
    ],
)
def test_non_finite_values_travel_as_strings(sent: object, stored: float, echoed: str) -> None:
    point = Point.model_validate({"value": sent})
    assert point.value == stored or (math.isnan(stored) and math.isnan(point.value))
    assert point.model_dump_json() == f'{{"value":{echoed},"bound":1.0}}'
    assert Read(value=point.value).model_dump(mode="json")["value"] == (
        point.value if math.isfinite(point.value) else echoed.strip('"')
    )


def test_schema_says_number_or_one_of_the_strings_in_both_directions() -> None:
    for mode in ("validation", "serialization"):
        field = Read.model_json_schema(mode=mode)["properties"]["value"]
        assert {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]} in field["anyOf"]
        assert {"type": "number"} in field["anyOf"]


@pytest.mark.parametrize("bound", ["NaN", "Infinity", math.inf])
def test_other_request_floats_are_finite(bound: object) -> None:
    with pytest.raises(ValidationError) as error:
        Point.model_validate({"value": 1, "bound": bound})
    assert error.value.errors()[0]["loc"] == ("bound",)


def test_other_strings_are_refused() -> None:
    with pytest.raises(ValidationError):
        Point.model_validate({"value": "nope"})
