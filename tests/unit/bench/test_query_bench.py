"""The Query Service benchmark (bench/query_service.py): answers compared by content across the service's JSON
and DuckDB's values, cold trivial queries that the gate's memory cannot answer, time-boxed rounds, targets."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import duckdb
import pytest
from trace_core.query.service import engine, results

from bench import method
from bench import query_service as qs

GROUPS = "select from_address, count(*) as n, sum(value) as total from t group by 1"


def _table(rows: list[tuple[bytes, int]]) -> Any:
    con = duckdb.connect()
    con.execute("create table t (from_address blob, value ubigint)")
    con.executemany("insert into t values (?, ?)", rows)
    return con.sql(GROUPS).to_arrow_table()


def _service_body(table: Any) -> dict[str, Any]:
    """The service's JSON body for ``table``, shaped by its own code (big integers as strings, binary as hex)."""
    return {"columns": results.columns(table), "rows": results.json_rows(table)}


BIG = 10**17  # sums past 2**53 travel as strings in the service's JSON


def test_the_services_json_and_duckdbs_values_of_one_answer_digest_alike() -> None:
    # GIVEN a group-by whose sums pass 2**53, as DuckDB returns it and as the service writes it as JSON
    table = _table([(b"\x01" * 20, BIG), (b"\x01" * 20, BIG), (b"\x02" * 20, 5)])
    body = _service_body(table)
    assert any(isinstance(v, str) for row in body["rows"] for v in row[1:])  # a big sum really is a string
    # THEN both give the same digest, with exact sums
    assert qs.json_digest(body) == qs.arrow_digest(table)
    assert qs.arrow_digest(table)["sums"] == {"n": 3, "total": 2 * BIG + 5}


def test_groups_with_swapped_sums_fail_though_counts_and_totals_agree() -> None:
    # GIVEN two answers with the same groups, counts and overall sums, but two groups' sums swapped
    good = _table([(b"\x01" * 20, 7), (b"\x02" * 20, 9)])
    swapped = _table([(b"\x01" * 20, 9), (b"\x02" * 20, 7)])
    expected, got = qs.arrow_digest(good), qs.json_digest(_service_body(swapped))
    assert (got["rows"], got["sums"]) == (expected["rows"], expected["sums"])
    # THEN the check stops the run, naming the keys
    with pytest.raises(RuntimeError, match="keys"):
        qs.check_answer("reference (service)", expected, got)


def test_every_cold_trivial_query_is_gated_anew_and_the_warm_one_is_remembered() -> None:
    # GIVEN the gate's memory of verdicts, empty, and the benchmark's cold and warm trivial texts
    engine._gated.cache_clear()
    checker = engine.SandboxEngine(engine=None)  # type: ignore[arg-type]  # check() never touches the engine
    literals = qs.cold_literals()
    for _ in range(5):
        checker.check(qs.TRIVIAL.format(n=next(literals)), relations=["transactions"])
    # THEN each cold text was a miss: the gate parsed and checked every one
    assert (engine._gated.cache_info().misses, engine._gated.cache_info().hits) == (5, 0)
    # AND the warm text, repeated, is gated once and then remembered
    for _ in range(3):
        checker.check(qs.TRIVIAL.format(n=qs.WARM_LITERAL), relations=["transactions"])
    assert (engine._gated.cache_info().misses, engine._gated.cache_info().hits) == (6, 2)
    engine._gated.cache_clear()


def test_cold_literals_never_repeat_the_warm_one() -> None:
    assert qs.WARM_LITERAL not in set(itertools.islice(qs.cold_literals(), 1000))


def test_a_round_runs_for_its_time_and_its_figure_is_the_mean_per_call() -> None:
    # GIVEN a 10 ms call, its answers checked
    checked: list[int] = []
    calls = itertools.count()

    def call() -> int:
        time.sleep(0.01)
        return next(calls)

    # WHEN it runs as a 0.2 s round measured with this process as its group
    r, times = qs.timed_round("service", 3, call, checked.append, 0.2, {"bench": [os.getpid()]})
    # THEN it ran for at least 0.2 s, each answer was checked, and the figure is the mean per call
    assert r.window >= 0.2 and r.extra["queries"] == len(times) == len(checked) >= 10
    assert r.seconds == pytest.approx(sum(times) / len(times))
    assert 0.01 <= r.seconds < 0.05 and (r.side, r.index) == ("service", 3)
    assert r.extra["p50_ms"] >= 10


def test_a_wrong_answer_stops_the_round() -> None:
    def check(answer: int) -> None:
        if answer != 1:
            raise RuntimeError(f"answered {answer}")

    with pytest.raises(RuntimeError, match="answered 2"):
        qs.timed_round("cold", 0, lambda: 2, check, 10.0, {"bench": [os.getpid()]})


def _round(side: str, index: int, seconds: float, outside: float = 0.0) -> method.Round:
    # 1 s window on 2 cores: ``outside`` CPU-seconds used outside the measured group
    return method.Round(side, index, seconds, cpu={"service": 1.0}, machine_cpu=1.0 + outside, cores=2, window_s=1.0)


def _results(group_by: list[method.Round], errors: int = 0) -> dict[str, Any]:
    rule = method.Rule()
    trivial_rounds = [_round("warm", 0, 0.009), _round("duckdb", 0, 0.001), _round("cold", 0, 0.012)]
    trivial = {"cold": {"p50_ms": 12.0, "p95_ms": 14.0, "requests": 10, "phases_p50_ms": {"gate": 1.4},
                        "comparison": qs.comparison(trivial_rounds, "duckdb", "cold", rule)},
               "warm": {"p50_ms": 9.0, "p95_ms": 11.0, "requests": 10, "phases_p50_ms": {"gate": 0.05},
                        "comparison": qs.comparison(trivial_rounds, "duckdb", "warm", rule)},
               "duckdb": {"p50_ms": 0.7, "p95_ms": 0.9, "queries": 100}}
    return {"group_by": {"reference": {"parquet_mb": 570, "rows_back": 100,
                                       "comparison": qs.comparison(group_by, "duckdb", "service", rule)}},
            "trivial": trivial,
            "concurrent": {"clients": 2, "duration_s": 1, "ok": 5, "errors": errors, "requests_per_s": 5,
                           "outside_share": 0.0}}


def test_the_group_by_target_is_the_median_pair_ratio_and_a_disturbed_pair_does_not_count() -> None:
    # GIVEN three pairs: service 1.1x and 1.25x DuckDB's time, and one pair whose DuckDB round ran beside 30% load
    group_by = [_round("duckdb", 0, 1.0), _round("service", 0, 1.1), _round("duckdb", 1, 1.0),
                _round("service", 1, 1.25), _round("duckdb", 2, 5.0, outside=0.6), _round("service", 2, 1.0)]
    results = _results(group_by)
    summary = results["group_by"]["reference"]["comparison"]["summary"]
    # THEN the figure is the median of the two counted ratios, and it meets "within 1.2x" (>= 1/1.2)
    assert (summary["n"], summary["excluded"]) == (2, 1)
    assert summary["median"] == pytest.approx((1 / 1.1 + 1 / 1.25) / 2, abs=1e-3)
    assert qs.counted_indexes(group_by, "duckdb", "service", method.Rule()) == {0, 1}
    results["targets"] = qs.targets(results, "reference")
    assert results["targets"] == {"group_by_within_1.2x": True, "trivial_cold_p50_under_30ms": True,
                                  "concurrent_zero_errors": True}
    # AND the report names every pair, the excluded one marked and explained
    text = qs.report(results)
    assert "0: 0.909, 1: 0.800, 2: 5.000*" in text and "round 2: duckdb round 2: 30%" in text
    # AND the trivial query's latency and gate time, cold and warm
    assert "| service, gate cold | 12.0 | 14.0 | 10 | 1.4 |" in text and "| service, gate warm | 9.0 |" in text


def test_no_counted_pair_or_an_error_misses_the_target() -> None:
    disturbed = [_round("duckdb", 0, 1.0, outside=0.6), _round("service", 0, 1.0)]
    results = _results(disturbed, errors=1)
    assert qs.targets(results, "reference") == {"group_by_within_1.2x": False, "trivial_cold_p50_under_30ms": True,
                                                "concurrent_zero_errors": False}
