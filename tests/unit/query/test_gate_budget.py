"""The gate's cost: linear in the query's size, bounded by a CPU budget, and malformed text is a clear refusal."""

from __future__ import annotations

import time

import pytest
from trace_core.query import errors, gate


def _ctes(n: int) -> str:
    # The shape of the attack: about 20 characters and 7 tokens per trivial CTE (2,800 of them is ~52 KB).
    return "with " + ",".join(f"c{i} as(select 1)" for i in range(n)) + f" select * from c{n - 1}"


def _chained_ctes(n: int) -> str:
    # Each CTE reads the one before: every scope resolves a name against all the CTEs before it.
    return "with c0 as(select 1)," + ",".join(f"c{i} as(select*from c{i - 1})" for i in range(1, n)) + \
        f" select * from c{n - 1}"


def _cpu(sql: str, limits: gate.GateLimits) -> float:
    start = time.thread_time()
    gate.check(sql, relations=["t"], limits=limits)
    return time.thread_time() - start


def test_2800_trivial_ctes_are_gated_quickly() -> None:
    # GIVEN the 2,800-CTE query that cost 12-24 s of CPU WHEN gated THEN it is accepted within a few seconds
    sql = _ctes(2800)
    assert len(sql) > 50_000
    # Generous: 0.9 s on a quiet machine, 2.3 s seen on a loaded CI run, 5.3 s before the fix (quadratic);
    # the growth test below is what tells linear from quadratic.
    assert _cpu(sql, gate.GateLimits(max_cpu_s=30)) < 4.0


@pytest.mark.parametrize("shape", [_ctes, _chained_ctes], ids=["independent", "chained"])
def test_gate_time_grows_about_linearly_with_the_number_of_ctes(shape: object) -> None:
    # GIVEN the same shape at 700 and 2,800 CTEs (4x the text) WHEN gated
    limits = gate.GateLimits(max_cpu_s=30, max_tokens=100_000, max_chars=200_000)
    build = shape  # type: ignore[assignment]
    _cpu(build(50), limits)  # warm sqlglot's caches so the first measure is not the import
    small = min(_cpu(build(700), limits) for _ in range(3))
    large = min(_cpu(build(2800), limits) for _ in range(3))
    # THEN 4x the size costs well under the 16x a quadratic gate costs (sqlglot's scopes copy a dict of the
    # CTEs before each one, in C: a small quadratic term the budget bounds)
    assert large < 10 * small, (small, large)  # 16x would be quadratic; min of 3 rides out a loaded machine


def test_a_query_over_the_cpu_budget_is_refused_with_a_clear_reason() -> None:
    # GIVEN a budget the query cannot be checked in WHEN gated THEN refused as too_long, naming the budget
    with pytest.raises(errors.QueryRejectedError) as info:
        gate.check(_ctes(2000), relations=["t"], limits=gate.GateLimits(max_cpu_s=0.01))
    assert info.value.reason == "too_long"
    assert "budget of 0.01 s of CPU" in str(info.value)


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("select [1][2[", "'[' at line 1, column 13 is never closed"),
        ("SELECT (1]", "']' at line 1, column 10 closes no matching bracket"),
        ("SELECT 1)", "')' at line 1, column 9 closes no matching bracket"),
        ("SELECT {'a': [1}", "'}' at line 1, column 16 closes no matching bracket"),
    ],
)
def test_unbalanced_brackets_are_a_syntax_refusal_naming_the_bracket(sql: str, says: str) -> None:
    # GIVEN text whose brackets do not pair up (sqlglot's parser crashed with IndexError on the first)
    with pytest.raises(errors.QueryRejectedError) as info:
        gate.check(sql, relations=[])
    # THEN a syntax refusal that says which bracket, never an internal error
    assert info.value.reason == "syntax"
    assert says in str(info.value)


def test_any_parser_crash_is_a_syntax_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a sqlglot parser that fails with something other than ParseError on some text
    from trace_core.query.gate import gate as gate_module

    def crash(self: object, tokens: object, sql: object) -> object:
        raise IndexError("list index out of range")

    monkeypatch.setattr(gate_module._DIALECT.parser_class, "parse", crash)
    # WHEN the gate parses THEN the caller gets a syntax refusal naming the parser failure
    with pytest.raises(errors.QueryRejectedError) as info:
        gate.check("SELECT 1", relations=[])
    assert info.value.reason == "syntax" and "IndexError" in str(info.value)
