"""The service remembers the gate's accepted verdicts by (SQL, granted names), and only those."""

from __future__ import annotations

import pytest
from trace_core.query.service import engine, errors


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    engine._gated.cache_clear()


def _checker() -> engine.SandboxEngine:
    return engine.SandboxEngine(engine=None)  # type: ignore[arg-type]  # check() never touches the engine


def test_a_repeated_query_is_gated_once_and_answers_the_same() -> None:
    checker = _checker()
    first = checker.check("select count(*) from blocks", relations=["blocks", "logs"])
    again = checker.check("select count(*) from blocks", relations=["logs", "blocks"])
    assert again == first and "blocks" in first.sql.lower()
    assert engine._gated.cache_info().hits == 1


def test_the_verdict_depends_on_the_grant() -> None:
    checker = _checker()
    checker.check("select count(*) from blocks", relations=["blocks"])
    with pytest.raises(errors.QueryRejectedError) as caught:
        checker.check("select count(*) from blocks", relations=["logs"])
    assert caught.value.details["reason"] == "relation_not_granted"


def test_rejections_are_not_remembered_and_long_sql_is_not_kept() -> None:
    checker = _checker()
    for _ in range(2):
        with pytest.raises(errors.QueryRejectedError):
            checker.check("select * from read_parquet('/etc/passwd')", relations=["blocks"])
    long_sql = "select 1 as one from blocks where number in (" + ", ".join(str(i) for i in range(2000)) + ")"
    assert len(long_sql) > engine.GATE_CACHE_MAX_CHARS
    checker.check(long_sql, relations=["blocks"])
    info = engine._gated.cache_info()
    assert info.currsize == 0 and info.hits == 0
