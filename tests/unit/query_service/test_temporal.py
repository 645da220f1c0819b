"""Dates and timestamps as JSON text (trace_core.query.service.temporal), from DuckDB's own Arrow results."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_core.query.service import results, temporal


@pytest.fixture(scope="module")
def con():
    with duckdb.connect(":memory:") as made:
        made.execute("SET TimeZone = 'UTC'")
        yield made


@pytest.mark.parametrize(("expression", "expected"), [
    ("'infinity'::DATE", "infinity"),
    ("'-infinity'::DATE", "-infinity"),
    ("'infinity'::TIMESTAMP", "infinity"),
    ("'-infinity'::TIMESTAMP", "-infinity"),
    ("'infinity'::TIMESTAMPTZ", "infinity"),
    ("'infinity'::TIMESTAMP_NS", "infinity"),
    ("'-infinity'::TIMESTAMP_MS", "-infinity"),
    ("'infinity'::TIMESTAMP_S", "infinity"),
    ("'10000-01-01'::DATE", "+10000-01-01"),
    ("'5881580-07-10'::DATE", "+5881580-07-10"),
    ("'0001-03-15 (BC)'::DATE", "0000-03-15"),
    ("'0044-03-15 (BC)'::DATE", "-0043-03-15"),
    ("'294247-01-10 04:00:54.775806'::TIMESTAMP", "+294247-01-10T04:00:54.775806"),
    ("'12000-06-01 10:00:00'::TIMESTAMPTZ", "+12000-06-01T10:00:00+00:00"),
    ("'2020-01-01 00:00:00.000000001'::TIMESTAMP_NS", "2020-01-01T00:00:00.000000001"),
    ("'2020-01-01 00:00:00.123'::TIMESTAMP_NS", "2020-01-01T00:00:00.123000"),
    ("'2020-01-01 00:00:00'::TIMESTAMP_NS", "2020-01-01T00:00:00"),
    ("'2026-11-23 10:00:00.25'::TIMESTAMPTZ", "2026-11-23T10:00:00.250000+00:00"),
    ("'2026-11-23'::DATE", "2026-11-23"),
])
def test_every_date_and_timestamp_duckdb_returns_has_an_answer(con, expression, expected):
    # GIVEN a value Python's datetime may not hold (these used to fail the whole answer)
    table = con.sql(f"SELECT {expression} AS v UNION ALL SELECT NULL").to_arrow_table()
    # WHEN shaped as JSON THEN it is named exactly
    assert results.json_rows(table) == [[expected], [None]]


@settings(max_examples=200, deadline=None)
@given(days=st.lists(st.integers(-719_162, 2_932_896), min_size=1, max_size=10))
def test_the_calendar_matches_python_wherever_python_has_one(con, days):
    # GIVEN dates Python holds, written by the extended-range path (as when a far value shares the column)
    texts = [temporal._date_text(d) for d in days]
    # THEN each equals Python's own isoformat
    assert texts == [(dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat() for d in days]


@settings(max_examples=100, deadline=None)
@given(micros=st.lists(st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999), min_size=1, max_size=10))
def test_timestamps_match_python_wherever_python_has_them(micros):
    texts = [temporal._timestamp_text(m, 1_000_000, "") for m in micros]
    epoch = dt.datetime(1970, 1, 1)  # noqa: DTZ001 - naive on purpose: TIMESTAMP has no time zone
    assert texts == [(epoch + dt.timedelta(microseconds=m)).isoformat() for m in micros]


def test_a_far_value_and_an_ordinary_one_share_a_column(con):
    table = con.sql("SELECT * FROM (VALUES ('infinity'::DATE), ('2026-11-23'::DATE)) t(v)").to_arrow_table()
    assert results.json_rows(table) == [["infinity"], ["2026-11-23"]]


def test_infinite_values_inside_lists_structs_and_maps(con):
    # GIVEN infinite dates and timestamps nested in a list, a struct, a map and a fixed-size array
    table = con.sql(
        "SELECT ['infinity'::DATE, '2020-01-01'::DATE, NULL] AS l, {'a': '-infinity'::TIMESTAMP, 'b': '\\x01'::BLOB} "
        "AS s, MAP(['-infinity'::DATE], ['2020-01-02 03:04:05'::TIMESTAMP]) AS m, "
        "['infinity'::DATE, '2020-01-01'::DATE]::DATE[2] AS a UNION ALL SELECT NULL, NULL, NULL, NULL"
    ).to_arrow_table()
    # THEN each is answered, shaped as the other nested values are
    assert results.json_rows(table) == [
        [["infinity", "2020-01-01", None], {"a": "-infinity", "b": "0x01"}, [["-infinity", "2020-01-02T03:04:05"]],
         ["infinity", "2020-01-01"]],
        [None, None, None, None],
    ]
    assert results.json_rows(table.slice(1)) == [[None, None, None, None]]


def test_the_nested_path_shapes_values_as_the_usual_path_does(con):
    table = con.sql("SELECT [[1, 2], [3], NULL] AS l, {'x': 2::UBIGINT * 9007199254740993, 'y': 'z'} AS s, "
                    "MAP(['k'], [1.5::DECIMAL(4, 1)]) AS m, [DATE '2026-11-23']::DATE[1] AS a").to_arrow_table()
    assert [[v for c in table.columns for v in results._json_nested(c.chunk(0))]] == results.json_rows(table)
