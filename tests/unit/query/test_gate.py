"""The gate end to end: check() over the attack and legitimate corpora, budgets, errors and the SQL it returns."""

from __future__ import annotations

import duckdb
import pytest
from trace_core.query import errors, gate

from tests.fixtures.query import corpus

GRANTED = ["blocks", "transactions", "logs", "traces", "erc20_transfers"]
PLACEHOLDERS = {
    "secret": "/srv/secret/canary.txt",
    "secret_dir": "/srv/secret",
    "other": "/srv/cache/other/0.parquet",
    "data": "/srv/cache/blocks/0.parquet",
    "canary_env": "TRACE_TEST_QUERY_CANARY",
}
ATTACKS = corpus.attacks(PLACEHOLDERS)
LEGIT = corpus.legit()


def test_corpora_are_big_enough() -> None:
    # GIVEN the fixture corpora THEN there are at least 60 attacks and 20 legitimate queries, ids unique
    assert len(ATTACKS) >= 60 and len(LEGIT) >= 20
    assert len({a.id for a in ATTACKS}) == len(ATTACKS)
    assert {a.gate for a in ATTACKS} <= set(errors.REJECT_REASONS)


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.id)
def test_attack_is_rejected_with_its_reason(attack: corpus.Attack) -> None:
    # GIVEN an attack WHEN the gate checks it THEN it is refused, for the reason the corpus names
    with pytest.raises(errors.QueryRejectedError) as info:
        gate.check(attack.sql, relations=GRANTED)
    assert info.value.reason == attack.gate, str(info.value)
    assert info.value.details["reason"] == attack.gate


@pytest.mark.parametrize("query", LEGIT, ids=lambda q: q.id)
def test_legitimate_query_is_accepted_and_regenerated(query: corpus.Legit) -> None:
    # GIVEN a legitimate analytics query WHEN the gate checks it
    gated = gate.check(query.sql, relations=GRANTED)
    # THEN the regenerated SQL is one statement DuckDB itself parses as a SELECT, and it passes the gate again
    statements = duckdb.connect().extract_statements(gated.sql)
    assert [s.type for s in statements] == [duckdb.StatementType.SELECT]
    assert gate.check(gated.sql, relations=GRANTED) == gated
    assert gated.relations_used <= set(GRANTED) and gated.relations_used


def test_relations_used_are_folded_and_exclude_ctes() -> None:
    gated = gate.check('WITH b AS (SELECT * FROM "Blocks") SELECT * FROM b JOIN LOGS ON true', relations=GRANTED)
    assert gated.relations_used == {"blocks", "logs"}


def test_ungranted_relation_is_distinct_from_forbidden_ones() -> None:
    # GIVEN only blocks is granted WHEN reading transactions THEN relation_not_granted (a 403 for the service)
    with pytest.raises(errors.QueryRejectedError) as info:
        gate.check("SELECT * FROM transactions", relations=["blocks"])
    assert info.value.reason == "relation_not_granted"
    assert "transactions" in str(info.value) and info.value.node == "transactions"


def test_comments_are_dropped_and_a_trailing_comment_is_not_a_statement() -> None:
    gated = gate.check("SELECT 1 /* keep out */ AS x; -- trailing\n", relations=[])
    assert gated.sql == "SELECT 1 AS x"


def test_select_into_is_refused_although_sqlglot_would_regenerate_it() -> None:
    with pytest.raises(errors.QueryRejectedError) as info:
        gate.check("SELECT * INTO copy FROM blocks", relations=GRANTED)
    assert info.value.reason == "not_select"


@pytest.mark.parametrize(
    ("sql", "limits", "reason"),
    [
        ("SELECT 1" + " " * 200, gate.GateLimits(max_chars=100), "too_long"),
        ("SELECT " + ", ".join(["1"] * 100), gate.GateLimits(max_tokens=50), "too_long"),
        ("SELECT " + "(" * 10 + "1" + ")" * 10, gate.GateLimits(max_paren_depth=5), "too_deep"),
        ("SELECT " + "NOT " * 30 + "TRUE", gate.GateLimits(max_depth=20), "too_deep"),
        ("SELECT " + " + ".join(["1"] * 200), gate.GateLimits(max_nodes=100), "too_long"),
        ("SELECT " + "NOT " * 3000 + "TRUE", gate.GateLimits(max_tokens=100_000), "too_deep"),
    ],
    ids=["chars", "tokens", "brackets", "depth", "nodes", "python-recursion"],
)
def test_budgets(sql: str, limits: gate.GateLimits, reason: str) -> None:
    # GIVEN a budget the query exceeds WHEN checked THEN refused with the budget's reason, never a crash
    with pytest.raises(errors.QueryRejectedError) as info:
        gate.check(sql, relations=[], limits=limits)
    assert info.value.reason == reason


@pytest.mark.parametrize("sql", ["", "   ", "-- only a comment", ";", "SELECT FROM WHERE", "SELECT 'unterminated"])
def test_empty_or_invalid_text_is_a_syntax_rejection(sql: str) -> None:
    with pytest.raises(errors.QueryRejectedError) as info:
        gate.check(sql, relations=[])
    assert info.value.reason == "syntax"


@pytest.mark.parametrize("bad", ["x.parquet", "main.blocks", "", "sqlite_master", "duckdb_x", "blоcks"])
def test_invalid_granted_names_are_a_caller_error(bad: str) -> None:
    # GIVEN a granted name that cannot be a relation WHEN checking THEN the caller gets InvalidRelationError
    with pytest.raises(errors.InvalidRelationError) as info:
        gate.check("SELECT 1", relations=[bad])
    assert info.value.details["relation"] == bad and info.value.details["expected"]


def test_relations_must_be_a_collection_not_a_string() -> None:
    with pytest.raises(errors.InvalidRelationError):
        gate.check("SELECT 1", relations="blocks")


def test_gate_limits_reject_bad_values_naming_the_field() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        gate.GateLimits(max_depth=0)
