"""Each gate rule alone, against its own fixture corpus (tests/fixtures/query/rules/<rule>.yaml)."""

from __future__ import annotations

import pytest
import sqlglot
from trace_core.query import errors
from trace_core.query.gate import dialect, gate, rules
from trace_core.query.gate.rules import context

from tests.fixtures.query import corpus

RULE_NAMES = ["statement", "depth", "syntax", "variant_casts", "functions", "relations"]


def _cases(kind: str) -> list[tuple[str, str, str | None]]:
    out = []
    for name in RULE_NAMES:
        cases = corpus.rule_cases(name)
        if kind == "accept":
            out += [(name, sql, None) for sql in cases["accept"]]
        else:
            out += [(name, case["sql"], case["reason"]) for case in cases["reject"]]
    return out


def _apply(rule_name: str, sql: str) -> context.Context:
    cases = corpus.rule_cases(rule_name)
    limits = gate.GateLimits(**cases.get("limits", {}))
    ctx = context.Context(relations=frozenset(cases.get("relations", ["t", "u", "v", "blocks"])), limits=limits)
    rule = next(r for r in rules.RULES if r.__name__ == rule_name)
    rule(sqlglot.parse_one(sql, dialect=dialect.GateDuckDB), ctx)
    return ctx


def test_every_rule_has_a_corpus_and_is_in_the_tuple() -> None:
    # GIVEN the rule tuple WHEN listing its functions THEN each has a fixture file, in the documented order
    assert [r.__name__ for r in rules.RULES] == RULE_NAMES


@pytest.mark.parametrize(("rule", "sql", "reason"), _cases("accept"), ids=lambda v: str(v)[:60])
def test_rule_accepts(rule: str, sql: str, reason: None) -> None:
    # GIVEN a query the rule must let through WHEN the rule runs alone THEN it returns without error
    _apply(rule, sql)


@pytest.mark.parametrize(("rule", "sql", "reason"), _cases("reject"), ids=lambda v: str(v)[:60])
def test_rule_rejects_with_reason(rule: str, sql: str, reason: str) -> None:
    # GIVEN a query the rule must refuse WHEN the rule runs alone THEN it raises with the listed reason
    with pytest.raises(errors.QueryRejectedError) as info:
        _apply(rule, sql)
    assert info.value.reason == reason
    assert str(info.value)


def test_relations_rule_reports_the_granted_relations_it_read() -> None:
    # GIVEN a query over a CTE and two granted relations WHEN the relations rule runs
    ctx = _apply("relations", "WITH x AS (SELECT * FROM blocks) SELECT * FROM x JOIN transactions ON true")
    # THEN exactly the granted names read are recorded, not the CTE
    assert ctx.relations_used == {"blocks", "transactions"}
