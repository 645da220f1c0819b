"""The dispatcher benchmark's pure parts: the run order, the exactly-once check, paired ratios across sizes."""

from __future__ import annotations

import pytest

from bench import dispatcher_throughput as bench
from bench import method


def _round(system: str, workers: int, index: int, seconds: float, tasks: int, *, outside: float = 0.0) -> method.Round:
    # 2 cores over a 10 s window; ``outside``: CPU seconds used by processes the round did not start
    return method.Round(bench.side(system, workers), index, seconds, cpu={"postgres": 5.0, "workers": 5.0},
                        machine_cpu=10.0 + outside, cores=2, window_s=10.0,
                        extra={"system": system, "tasks": tasks, "tasks_per_s": tasks / seconds})


def test_systems_must_be_known_distinct_and_include_trace() -> None:
    assert bench.parse_systems("pgqueuer, trace,trace-sqs") == ["pgqueuer", "trace", "trace-sqs"]
    with pytest.raises(ValueError, match=r"unknown system.*celery"):
        bench.parse_systems("trace,celery")
    with pytest.raises(ValueError, match="'trace' must be among"):
        bench.parse_systems("pgqueuer,procrastinate")
    with pytest.raises(ValueError, match="named twice"):
        bench.parse_systems("trace,pgqueuer,pgqueuer")


def test_worker_counts_are_positive_integers() -> None:
    assert bench.parse_workers("1,2,4") == [1, 2, 4]
    for bad in ("0,2", "one", ""):
        with pytest.raises(ValueError, match="worker counts"):
            bench.parse_workers(bad)


def test_the_plan_alternates_the_order_and_keeps_trace_next_to_pgqueuer() -> None:
    # GIVEN two rounds of two worker counts
    runs = bench.plan(2, [1, 4], ["pgqueuer", "trace", "pgqueuer-b100"])
    # THEN every system runs once per round and worker count, round 0 as given and round 1 reversed
    assert runs[:3] == [(0, 1, "pgqueuer"), (0, 1, "trace"), (0, 1, "pgqueuer-b100")]
    assert runs[6:9] == [(1, 1, "pgqueuer-b100"), (1, 1, "trace"), (1, 1, "pgqueuer")]
    assert len(runs) == 12 and len(set(runs)) == 12
    # AND PgQueuer runs right before Trace in one round and right after it in the next
    assert runs.index((0, 1, "trace")) - runs.index((0, 1, "pgqueuer")) == 1
    assert runs.index((1, 1, "pgqueuer")) - runs.index((1, 1, "trace")) == 1


def test_every_job_once_passes() -> None:
    assert bench.exactly_once(range(5), [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]) == []


def test_a_job_run_twice_fails_though_the_count_is_right() -> None:
    # GIVEN job 1 started twice and job 2 never: as many starts as jobs
    problems = bench.exactly_once(range(4), [0, 1, 1, 3], [0, 1, 2, 3])
    # THEN both are named, with what went wrong
    assert problems == ["1 never started (e.g. [2])", "1 started more than once (e.g. [1])"]


def test_an_unfinished_or_unknown_job_is_named() -> None:
    problems = bench.exactly_once(["a", "b"], ["a", "b"], ["a", "z"])
    assert problems == ["1 never finished (e.g. ['b'])", "1 finished but not enqueued (e.g. ['z'])"]


def test_pairs_of_one_size_compare_seconds() -> None:
    # GIVEN three rounds of Trace and PgQueuer with 1 worker, the same jobs
    rounds = [r for i, (ref, own) in enumerate([(9.0, 10.0), (12.0, 10.0), (11.0, 10.0)])
              for r in (_round("pgqueuer", 1, i, ref, 60_000), _round("trace", 1, i, own, 60_000))]
    # WHEN compared THEN the figure is the median of the pair ratios (PgQueuer seconds / Trace seconds)
    [c] = bench.comparisons(rounds, [1], ["pgqueuer"], method.Rule())
    assert (c["workers"], c["reference"]) == (1, "pgqueuer")
    assert c["summary"]["median"] == pytest.approx(1.1)
    assert [p["ratio"] for p in c["pairs"]] == [0.9, 1.2, 1.1]


def test_pairs_of_different_sizes_compare_rates_and_a_disturbed_round_is_excluded() -> None:
    # GIVEN procrastinate running 5,000 jobs in 12.5 s (400/s) beside Trace's 60,000 in 15 s (4,000/s),
    # and a second pair where Trace's round ran beside 4 CPU-s of outside load (20% of the machine)
    rounds = [_round("procrastinate", 2, 0, 12.5, 5_000), _round("trace", 2, 0, 15.0, 60_000),
              _round("procrastinate", 2, 1, 12.5, 5_000), _round("trace", 2, 1, 30.0, 60_000, outside=4.0)]
    [c] = bench.comparisons(rounds, [2], ["procrastinate"], method.Rule())
    # THEN the counted pair's ratio is the rates' (10x), the disturbed pair is excluded and named
    assert c["summary"]["ratios"] == [10.0]
    assert (c["summary"]["n"], c["summary"]["excluded"]) == (1, 1)
    assert "trace:w2 round 1" in c["pairs"][1]["excluded"][0]
    assert (c["pairs"][0]["reference_per_s"], c["pairs"][0]["trace_per_s"]) == (400, 4000)


def test_a_reference_not_run_gives_no_comparison() -> None:
    rounds = [_round("pgqueuer", 1, 0, 9.0, 100), _round("trace", 1, 0, 10.0, 100)]
    assert [c["reference"] for c in bench.comparisons(rounds, [1], ["pgqueuer", "procrastinate"], method.Rule())] \
        == ["pgqueuer"]


def test_latency_percentiles_and_cpu_per_thousand_jobs() -> None:
    stats = bench.percentiles([float(x) for x in range(1, 101)])
    assert stats == {"samples": 100, "p50_ms": 50.5, "p99_ms": 99.0, "max_ms": 100.0}
    with pytest.raises(ValueError, match="no latency samples"):
        bench.percentiles([])
    assert bench.cpu_per_1k(_round("trace", 1, 0, 10.0, 50_000)) == {"postgres": 100, "workers": 100}
