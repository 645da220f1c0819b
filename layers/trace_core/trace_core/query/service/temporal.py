"""Dates and timestamps as JSON text, for every value DuckDB can return.

Python's ``datetime`` holds years 1 to 9999 at microsecond precision. DuckDB
returns more: ``'infinity'`` and ``'-infinity'`` (sentinels at the ends of the
storage type), years up to 294247 (5881580 for dates) and before year 1, and
nanosecond timestamps. Converting those through Python fails, which used to make
the whole answer a 500. The rule here:

- ``infinity`` / ``-infinity`` for DuckDB's infinite values;
- values Python holds: ``isoformat()`` as before (``2026-11-23``,
  ``2026-11-23T10:00:00.250000``, ``+00:00`` when the column has a time zone);
- other years in ISO 8601 expanded form with astronomical numbering
  (``+10000-01-01``, ``0000-03-15`` for 1 BC, ``-0043-03-15`` for 44 BC);
- sub-microsecond timestamps with nine fractional digits.

Values Python cannot hold are written in UTC (``+00:00``) when the column has a time zone.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

INFINITY, NEGATIVE_INFINITY = "infinity", "-infinity"
# DuckDB's infinite values: the largest storage integer and its negation.
_DATE_INFINITY = 2**31 - 1
_TIMESTAMP_INFINITY = 2**63 - 1
# Days since 1970-01-01 of 0001-01-01 and 9999-12-31: what Python's date holds.
_PY_MIN_DAY, _PY_MAX_DAY = -719_162, 2_932_896
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def is_temporal(kind: pa.DataType) -> bool:
    """Types :func:`json_values` converts (the ones DuckDB returns for DATE and the TIMESTAMP family)."""
    return bool(pa.types.is_date32(kind) or pa.types.is_timestamp(kind))


def json_values(column: pa.ChunkedArray) -> list[Any]:
    """Each value of a date32 or timestamp column as JSON text (None for NULL)."""
    kind = column.type
    if pa.types.is_date32(kind):
        raw = column.cast(pa.int32()).to_pylist()
        if _within(raw, _PY_MIN_DAY, _PY_MAX_DAY):
            return [None if v is None else v.isoformat() for v in column.to_pylist()]
        return [None if v is None else _date_text(v) for v in raw]
    per_second = _PER_SECOND[kind.unit]
    per_day = 86_400 * per_second
    raw = column.cast(pa.int64()).to_pylist()
    if kind.unit != "ns" and _within(raw, _PY_MIN_DAY * per_day, (_PY_MAX_DAY + 1) * per_day - 1):
        return [None if v is None else v.isoformat() for v in column.to_pylist()]
    # Nanoseconds (Python keeps microseconds) or a value Python cannot hold: written from the integers.
    zone = "+00:00" if kind.tz is not None else ""
    return [None if v is None else _timestamp_text(v, per_second, zone) for v in raw]


def _within(raw: list[int | None], low: int, high: int) -> bool:
    values = [v for v in raw if v is not None]
    return not values or (low <= min(values) and max(values) <= high)


def _date_text(days: int) -> str:
    if days >= _DATE_INFINITY:
        return INFINITY
    if days <= -_DATE_INFINITY:
        return NEGATIVE_INFINITY
    year, month, day = _civil(days)
    return f"{_year_text(year)}-{month:02d}-{day:02d}"


def _timestamp_text(value: int, per_second: int, zone: str) -> str:
    if value >= _TIMESTAMP_INFINITY:
        return INFINITY
    if value <= -_TIMESTAMP_INFINITY:
        return NEGATIVE_INFINITY
    days, within_day = divmod(value, 86_400 * per_second)
    seconds, fraction = divmod(within_day, per_second)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    nanos = fraction * (1_000_000_000 // per_second)
    if nanos == 0:
        frac = ""  # as isoformat(): no fraction when it is zero, microseconds when they suffice
    elif nanos % 1000 == 0:
        frac = f".{nanos // 1000:06d}"
    else:
        frac = f".{nanos:09d}"
    return f"{_date_text(days)}T{hours:02d}:{minutes:02d}:{seconds:02d}{frac}{zone}"


def _year_text(year: int) -> str:
    # ISO 8601: four digits for 0000-9999, a sign beyond (year 0 is 1 BC).
    if 0 <= year <= 9999:
        return f"{year:04d}"
    return f"{'+' if year > 0 else '-'}{abs(year):04d}"


def _civil(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of days since 1970-01-01, for any integer.

    Howard Hinnant's ``civil_from_days`` (https://howardhinnant.github.io/date_algorithms.html).
    """
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day

