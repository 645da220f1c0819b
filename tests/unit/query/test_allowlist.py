"""The function allowlist against the DuckDB that is installed: every function reviewed, nothing stale."""

from __future__ import annotations

import fnmatch

import duckdb
import pytest
from trace_core.query.gate import allowlist

_KIND = {"table": "table", "table_macro": "table", "pragma": "pragma"}


def _functions() -> set[tuple[str, allowlist.Kind]]:
    con = duckdb.connect()
    try:
        rows = con.execute("SELECT DISTINCT function_name, function_type FROM duckdb_functions()").fetchall()
    finally:
        con.close()
    return {(name, _KIND.get(kind, "scalar")) for name, kind in rows}  # type: ignore[misc]


FUNCTIONS = _functions()


def test_every_duckdb_function_is_reviewed() -> None:
    # GIVEN every function the installed DuckDB ships WHEN classifying each THEN none is unreviewed:
    # a DuckDB upgrade that adds one fails here until it is allowed or denied with a reason
    unreviewed = sorted(f"{name} ({kind})" for name, kind in FUNCTIONS if allowlist.classify(name, kind) is None)
    assert unreviewed == []


def test_no_function_is_both_allowed_and_denied() -> None:
    both = sorted(
        f"{name} ({kind})"
        for name, kind in FUNCTIONS
        if allowlist.classify(name, kind) == "allowed" and allowlist.denial(name, kind) is not None
    )
    assert both == []


def test_every_allowed_name_exists_in_duckdb() -> None:
    # GIVEN the allow sets WHEN compared with DuckDB THEN no entry is stale
    # (a typo would widen nothing, but hides intent)
    scalars = {name.lower() for name, kind in FUNCTIONS if kind == "scalar"}
    tables = {name.lower() for name, kind in FUNCTIONS if kind == "table"}
    assert allowlist.SCALAR_FUNCTIONS - scalars == set()
    assert allowlist.TABLE_FUNCTIONS - tables == set()
    assert allowlist.SYNTAX_CALLS & scalars <= {"unnest"}
    for family in allowlist.SCALAR_FAMILIES:
        assert any(fnmatch.fnmatchcase(name, family) for name in scalars)


@pytest.mark.parametrize(
    "name",
    ["read_csv", "read_parquet", "read_text", "read_blob", "read_json_auto", "parquet_scan", "arrow_scan",
     "seq_scan", "glob", "getenv", "current_setting", "duckdb_settings", "duckdb_views", "duckdb_secrets",
     "query", "query_table", "sql_auto_complete", "json_execute_serialized_sql", "sniff_csv", "parquet_metadata",
     "which_secret", "pragma_version", "histogram", "index_key", "pg_get_viewdef", "getvariable", "sleep_ms"],
)
def test_the_named_dangerous_functions_are_refused_everywhere(name: str) -> None:
    # GIVEN a function that touches files, network, settings or the catalog THEN no position allows it
    assert not allowlist.allowed_in_from(name) or name == "histogram"
    assert not allowlist.allowed_in_from(name.upper())
    assert not allowlist.allowed_in_expression(name) or name == "histogram"  # the histogram aggregate is pure


def test_denial_rules_cover_unknown_file_readers_of_future_versions() -> None:
    # GIVEN names DuckDB might add WHEN classified THEN the patterns already deny them with a reason
    for name in ("read_xlsx", "iceberg_scan", "delta_scan", "duckdb_new_catalog", "pragma_new"):
        rule = allowlist.denial(name, "table")
        assert rule is not None and rule.reason


def test_non_ascii_names_match_nothing() -> None:
    # GIVEN a Kelvin sign, which lower()s to ASCII 'k' THEN it does not match an allowed name
    assert not allowlist.allowed_in_expression("\u212aurtosis")
    assert allowlist.allowed_in_expression("KURTOSIS")
    assert allowlist.normalize("upper") == "upper" and allowlist.normalize("uppеr") is None
