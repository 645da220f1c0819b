"""The shared benchmark method (bench/method.py): paired ratios, their median, exclusion of disturbed rounds,
content digests."""

from __future__ import annotations

import pytest

from bench import method


def _round(side: str, index: int, seconds: float, *, measured: float = 0.0, machine: float = 0.0,
           cores: int = 2) -> method.Round:
    return method.Round(side, index, seconds, cpu={"measured": measured}, machine_cpu=machine, cores=cores)


def test_pairs_join_rounds_of_the_same_index_whatever_the_order_they_ran_in() -> None:
    # GIVEN rounds of two sides recorded out of order
    rounds = [_round("trace", 1, 10), _round("plain", 0, 12), _round("trace", 0, 10), _round("plain", 1, 9)]
    # WHEN they are paired THEN each pair holds one round of each side of the same index
    pairs = method.pair_rounds(rounds, "plain", "trace")
    assert [(p.reference.index, p.subject.index) for p in pairs] == [(0, 0), (1, 1)]
    assert [p.ratio for p in pairs] == [pytest.approx(1.2), pytest.approx(0.9)]


def test_a_round_without_its_partner_is_refused() -> None:
    # GIVEN a trace round whose plain round is missing WHEN paired THEN it is refused, not compared across rounds
    with pytest.raises(ValueError, match=r"\[1\].*no partner"):
        method.pair_rounds([_round("plain", 0, 1), _round("trace", 0, 1), _round("trace", 1, 1)], "plain", "trace")


def test_the_figure_is_the_median_of_pair_ratios_not_the_ratio_of_medians() -> None:
    # GIVEN three pairs whose medians per side would give 10 / 10 = 1.0x
    rounds = [_round("plain", 0, 8), _round("trace", 0, 10), _round("plain", 1, 10), _round("trace", 1, 12),
              _round("plain", 2, 12), _round("trace", 2, 8)]
    # WHEN summarised THEN the figure is the median of 0.8, 0.833 and 1.5, with its spread
    s = method.summary(method.pair_rounds(rounds, "plain", "trace"), method.Rule())
    assert s.median == pytest.approx(10 / 12)
    assert (s.low, s.high, s.n, s.excluded) == (pytest.approx(0.8), pytest.approx(1.5), 3, 0)


def test_outside_load_is_the_machine_cpu_less_the_measured_groups() -> None:
    # GIVEN a 10 s round on 2 cores: the machine worked 15 CPU-s, the measured processes 12
    r = _round("trace", 0, 10, measured=12, machine=15)
    # THEN 3 CPU-s were used outside: 15% of the machine, 30% of one core
    assert r.outside_cpu == pytest.approx(3)
    assert r.outside_share == pytest.approx(0.15)
    assert r.cpu_pct() == {"measured": 120, "outside": 30}


def test_a_pair_with_a_disturbed_round_is_excluded_and_counted() -> None:
    # GIVEN two clean pairs and one where the reference ran beside 30% outside load
    rounds = [_round("plain", 0, 10, measured=15, machine=15.5), _round("trace", 0, 10, measured=18, machine=18),
              _round("plain", 1, 10, measured=12, machine=18), _round("trace", 1, 20, measured=18, machine=19),
              _round("plain", 2, 11, measured=15, machine=15), _round("trace", 2, 10, measured=18, machine=18)]
    pairs = method.pair_rounds(rounds, "plain", "trace")
    # WHEN summarised with the default rule (10% of the machine) THEN the disturbed pair does not count
    s = method.summary(pairs, method.Rule())
    assert (s.n, s.excluded) == (2, 1)
    assert s.ratios == (pytest.approx(1.0), pytest.approx(1.1))
    _, reasons = method.pair_ratios(pairs, method.Rule())
    assert len(reasons) == 1 and "plain round 1" in reasons[0] and "30%" in reasons[0]
    # AND a looser rule counts it
    assert method.summary(pairs, method.Rule(max_outside_share=0.5)).n == 3


def test_no_counted_pair_gives_no_figure() -> None:
    pairs = method.pair_rounds([_round("plain", 0, 10, measured=1, machine=19), _round("trace", 0, 10)],
                               "plain", "trace")
    s = method.summary(pairs, method.Rule())
    assert (s.median, s.n, s.excluded) == (None, 0, 1)
    assert str(s) == "no pair counted (1 excluded)"


def test_a_rule_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_outside_share"):
        method.Rule(max_outside_share=10)


def test_rounds_alternate_their_order() -> None:
    # The subject stays in the middle; each reference runs first in one round and last in the next
    assert method.order(0, ["plain", "trace", "matched"]) == ["plain", "trace", "matched"]
    assert method.order(1, ["plain", "trace", "matched"]) == ["matched", "trace", "plain"]


def test_key_hash_ignores_order_but_not_content() -> None:
    keys = [("0xaa", 1), ("0xbb", 2), ("0xcc", 3)]
    assert method.key_hash(keys) == method.key_hash(list(reversed(keys)))
    assert method.key_hash(keys) != method.key_hash([("0xaa", 1), ("0xbb", 2), ("0xcd", 3)])  # a changed key
    assert method.key_hash(keys) != method.key_hash(keys[:2])  # a missing key
    assert method.key_hash(keys) != method.key_hash([*keys, keys[0]])  # a duplicated key


def test_content_mismatches_name_the_dataset_and_the_part_that_differs() -> None:
    # GIVEN two answers with equal row counts but a different key and a different sum
    expected = {"logs": method.digest(2, {"block_number": 3}, [("0xa", 0), ("0xb", 1)]),
                "blocks": method.digest(2, {"block_number": 1}, ["0x1", "0x2"])}
    got = {"logs": method.digest(2, {"block_number": 3}, [("0xa", 0), ("0xb", 2)]),
           "blocks": method.digest(2, {"block_number": 2}, ["0x2", "0x1"])}
    # THEN the check fails on content even though the counts agree
    problems = method.content_mismatches(expected, got)
    assert [" ".join(p.split()[:2]) for p in problems] == ["logs: keys", "blocks: sums"]
    # AND the same content in another order passes; a missing dataset is named
    same = {"logs": method.digest(2, {"block_number": 3}, [("0xb", 1), ("0xa", 0)]), "blocks": expected["blocks"]}
    assert method.content_mismatches(expected, same) == []
    assert method.content_mismatches(expected, {"logs": expected["logs"]}) == ["blocks: missing"]


def test_machine_cpu_reads_the_working_fields_of_proc_stat() -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice (in clock ticks)
    line = "cpu  100 10 50 9999 7 3 2 5 40 0"
    ticks = method.os.sysconf("SC_CLK_TCK")
    assert method.machine_cpu_seconds(line) == pytest.approx((100 + 10 + 50 + 3 + 2 + 5) / ticks)
    with pytest.raises(ValueError, match="cpu line"):
        method.machine_cpu_seconds("intr 1 2 3")
