"""JSON shaping of query results: exact integers, big values as strings, binary as 0x-hex, per column type."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_core.query.service import results

SAFE = 2**53 - 1


def _reference(table: pa.Table) -> list[list[object]]:
    """The value-by-value rule (results.json_value) applied to every cell."""
    columns = [[results.json_value(v) for v in column.to_pylist()] for column in table.columns]
    return [list(row) for row in zip(*columns)]


def test_each_type_follows_the_documented_rule() -> None:
    table = pa.table({
        "safe_sum": pa.array([decimal.Decimal(SAFE), None, decimal.Decimal(-5)], pa.decimal128(38, 0)),
        "big_sum": pa.array([decimal.Decimal(2**120), decimal.Decimal(1), None], pa.decimal128(38, 0)),
        "wei": pa.array([2**64 - 1, 0, None], pa.uint64()),
        "nulls": pa.array([None, None, None], pa.int64()),
        "address": pa.array([b"\x01" * 20, None, b""], pa.binary()),
        "hash": pa.array([b"ab", b"cd", None], pa.binary(2)),
        "price": pa.array([decimal.Decimal("1.50"), None, decimal.Decimal("2.00")], pa.decimal128(10, 2)),
        "day": pa.array([dt.date(2026, 11, 23), None, dt.date(1970, 1, 1)]),
        "flag": pa.array([True, None, False]),
    })
    rows = results.json_rows(table)
    assert rows == _reference(table)
    assert rows[0] == [SAFE, str(2**120), str(2**64 - 1), None, "0x" + "01" * 20, "0x6162", "1.50", "2026-11-23", True]
    assert rows[1][:3] == [None, 1, 0]
    assert rows[2][0] == -5 and rows[2][4] == "0x" and rows[2][6] == 2
    json.dumps(rows, allow_nan=False)  # every value is plain JSON


@settings(max_examples=150, deadline=None)
@given(ints=st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), min_size=1, max_size=30),
       sums=st.lists(st.one_of(st.none(), st.integers(-(10**37), 10**37)), min_size=1, max_size=30))
def test_typed_conversion_equals_the_value_rule(ints: list[int | None], sums: list[int | None]) -> None:
    n = min(len(ints), len(sums))
    table = pa.table({
        "i": pa.array(ints[:n], pa.int64()),
        "d": pa.array([None if v is None else decimal.Decimal(v) for v in sums[:n]], pa.decimal128(38, 0)),
    })
    assert results.json_rows(table) == _reference(table)


def test_fractional_decimals_are_plain_decimal_strings() -> None:
    # GIVEN decimals Python's str() writes in exponent form (0E-10, 1.000E-7)
    table = pa.table({"d": pa.array([decimal.Decimal("0.0000001000"), decimal.Decimal("-0.0000000001"),
                                     decimal.Decimal("0E-10")], pa.decimal128(38, 10))})
    # THEN JSON has their plain digits (an integral value follows the integer rule)
    assert results.json_rows(table) == [["0.0000001000"], ["-0.0000000001"], [0]]
