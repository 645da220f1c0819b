"""Legitimate analytics end to end: gate, trusted attach of what the query uses, engine; answers match the oracles."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pytest
from trace_core.query import engine, gate

from tests.fixtures.query import corpus, oracles
from tests.integration.query import conftest

QUERIES = corpus.legit()


def _normal(value: Any) -> Any:
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def _same(got: Any, want: Any, floats: bool) -> bool:
    if floats and isinstance(got, (int, float, Decimal)) and isinstance(want, (int, float, Decimal)):
        return math.isclose(float(got), float(want), rel_tol=1e-9)
    return _normal(got) == _normal(want)


def test_every_query_has_an_oracle() -> None:
    assert {q.id for q in QUERIES} == set(oracles.ORACLES)


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.id)
def test_legitimate_query_answers_like_its_oracle(query_engine: engine.Engine, world: conftest.World,
                                                  query: corpus.Legit) -> None:
    # GIVEN all five relations granted WHEN the query passes the gate and runs over only what it uses
    gated = gate.check(query.sql, relations=list(world.files))
    result = query_engine.execute(gated.sql, world.relations(*sorted(gated.relations_used)),
                                  engine.ExecLimits(max_rows=10_000))
    # THEN the answer equals the pure-Python oracle's over the same rows
    got = result.rows()
    want = oracles.ORACLES[query.id](world.chain)
    if query.order == "unordered":
        got, want = sorted(got), sorted(want)
    assert not result.truncated
    assert len(got) == len(want), f"{got[:5]} vs {want[:5]}"
    for got_row, want_row in zip(got, want, strict=True):
        assert len(got_row) == len(want_row)
        assert all(_same(g, w, query.float) for g, w in zip(got_row, want_row, strict=True)), (got_row, want_row)
