"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Float, Integer
from sqlalchemy.types import TypeDecorator, TypeEngine

# SQLite only autoincrements a column declared exactly INTEGER.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes; SQLite hands back naive ones, which are UTC here."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class FaithfulFloat(TypeDecorator[float]):
    """A float that keeps NaN and +/-inf.

    PostgreSQL's double precision holds all three. SQLite turns a bound NaN into NULL,
    so NaN travels there as the text 'NaN', which a REAL column keeps as text.
    """

    impl = Float(precision=53)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # SQLite's Float coerces every bound value to float, which would undo "NaN".
            return dialect.type_descriptor(_PlainReal())
        return dialect.type_descriptor(Float(precision=53))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is not None and dialect.name == "sqlite" and math.isnan(value):
            return "NaN"
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        if value is None:
            return None
        return float(value)


class _PlainReal(Float[float]):
    """A REAL column whose values go to the driver untouched."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


def utcnow() -> datetime:
    return datetime.now(UTC)
