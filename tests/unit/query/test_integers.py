"""DuckDB's HUGEINT and UHUGEINT as exact Arrow columns (trace_core.query.integers), checked on a real DuckDB."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from trace_core.query import integers, worker

HUGEINT = (-(2**127), 2**127 - 1)
UHUGEINT = (0, 2**128 - 1)
MAX_38_DIGITS = 10**38 - 1
LIMITS = {"max_rows": 1000, "max_result_bytes": 1 << 20}


@pytest.fixture(scope="module")
def con():
    with duckdb.connect(":memory:") as made:
        yield made


def _values_sql(signed: list[int | None], unsigned: list[int | None]) -> str:
    def literal(value: int | None, kind: str) -> str:
        return f"CAST(NULL AS {kind})" if value is None else f"CAST('{value}' AS {kind})"

    rows = ", ".join(f"({literal(s, 'HUGEINT')}, {literal(u, 'UHUGEINT')})" for s, u in zip(signed, unsigned))
    return f"SELECT * FROM (VALUES {rows}) AS t(s, u)"


def test_the_worker_returns_the_largest_uhugeint_exactly(con):
    # GIVEN 2**128 - 1, which DuckDB's own Arrow export turns into -1
    sql = "SELECT CAST('340282366920938463463374607431768211455' AS UHUGEINT) AS v"
    assert con.sql(sql).to_arrow_table().column("v").to_pylist() == [-1]
    # WHEN the worker fetches it THEN it is exact, in a type that holds it
    table, truncated = worker._fetch(con, sql, LIMITS)
    assert table.column("v").to_pylist() == [2**128 - 1] and not truncated
    assert table.schema.field("v").type == integers.WIDE


@settings(max_examples=200, deadline=None)
@example(pairs=[(HUGEINT[0], UHUGEINT[1]), (HUGEINT[1], UHUGEINT[0]), (None, None)], skip=0)
@example(pairs=[(MAX_38_DIGITS, MAX_38_DIGITS), (-MAX_38_DIGITS, 2**127 - 1)], skip=0)
@given(pairs=st.lists(st.tuples(st.one_of(st.none(), st.integers(*HUGEINT)),
                                st.one_of(st.none(), st.integers(*UHUGEINT))), min_size=1, max_size=20),
       skip=st.integers(0, 3))
def test_full_ranges_are_exact_and_stay_decimal128_while_38_digits_hold_them(con, pairs, skip):
    # GIVEN HUGEINT and UHUGEINT values over their full ranges, fetched as the worker fetches (maybe sliced)
    signed, unsigned = [p[0] for p in pairs], [p[1] for p in pairs]
    relation = con.sql(_values_sql(signed, unsigned))
    table = relation.to_arrow_table().slice(min(skip, len(pairs) - 1))
    kept = len(table)
    # WHEN made exact
    exact = integers.exact_table(table, relation.types)
    exact.validate(full=True)
    # THEN every value is the value, and the type is decimal128(38, 0) exactly when 38 digits hold the column
    for name, values in (("s", signed[-kept:]), ("u", unsigned[-kept:])):
        assert exact.column(name).to_pylist() == values
        fits = all(abs(v) <= MAX_38_DIGITS for v in values if v is not None)
        assert exact.schema.field(name).type == (pa.decimal128(38, 0) if fits else integers.WIDE)


def test_128_bit_integers_inside_lists_arrays_structs_and_maps(con):
    big, low = 2**128 - 1, -(2**127)
    sql = (f"SELECT [CAST('{big}' AS UHUGEINT), NULL] AS l, [CAST('1' AS UHUGEINT), CAST('{big}' AS UHUGEINT)]"
           f"::UHUGEINT[2] AS a, {{'x': CAST('{low}' AS HUGEINT)}} AS s, "
           f"MAP([CAST('{big}' AS UHUGEINT)], [CAST('-1' AS HUGEINT)]) AS m, CAST(5 AS HUGEINT) AS small "
           "UNION ALL SELECT NULL, NULL, NULL, NULL, 6")
    relation = con.sql(sql)
    for table in (relation.to_arrow_table(), relation.to_arrow_table().slice(1)):
        exact = integers.exact_table(table, relation.types)
        exact.validate(full=True)
        rows = exact.to_pylist()
        if len(rows) == 2:
            assert rows[0] == {"l": [big, None], "a": [1, big], "s": {"x": low}, "m": [(big, -1)], "small": 5}
        assert rows[-1] == {"l": None, "a": None, "s": None, "m": None, "small": 6}
        assert exact.schema.field("small").type == pa.decimal128(38, 0)  # nothing widened that fits
