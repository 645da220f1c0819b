"""Concentration metrics: exact, and equal to their textbook definitions computed the slow way."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trace_core.analytics import metrics


def _gini_by_definition(stakes: list[int]) -> Fraction:
    # G = sum_i sum_j |xi - xj| / (2 n^2 mean): every ordered pair, no sorting trick.
    n = len(stakes)
    pairs = sum(abs(a - b) for a, b in combinations(stakes, 2)) * 2
    return Fraction(pairs, 2 * n * sum(stakes))


def _nakamoto_by_subsets(stakes: list[int], threshold: Fraction) -> int:
    # Smallest subset size (any subset, not only the largest) holding more than threshold of the total.
    total = sum(stakes)
    for size in range(1, len(stakes) + 1):
        if any(Fraction(sum(c), total) > threshold for c in combinations(stakes, size)):
            return size
    raise AssertionError


stakes_lists = st.lists(st.integers(min_value=1, max_value=2**256 - 1), min_size=1, max_size=7)


@given(stakes_lists)
def test_gini_equals_the_pairwise_definition_exactly(stakes):
    assert metrics.gini(stakes) == _gini_by_definition(stakes)


@given(stakes_lists, st.integers(min_value=1, max_value=9))
def test_top_k_share_is_the_k_largest_over_the_total(stakes, k):
    expected = Fraction(sum(sorted(stakes, reverse=True)[:k]), sum(stakes))
    assert metrics.top_k_share(stakes, k) == expected


@given(stakes_lists)
def test_nakamoto_is_the_smallest_subset_over_the_threshold(stakes):
    assert metrics.nakamoto(stakes, metrics.ONE_THIRD) == _nakamoto_by_subsets(stakes, metrics.ONE_THIRD)
    assert metrics.nakamoto(stakes, metrics.ONE_HALF) == _nakamoto_by_subsets(stakes, metrics.ONE_HALF)


def test_known_values():
    # GIVEN equal stakes THEN no inequality; one validator with everything among four THEN 3/4
    assert metrics.gini([5, 5, 5]) == 0
    assert metrics.gini([0, 0, 0, 2**200]) == 0  # zero stakes are not validators with a share
    assert metrics.gini([1, 1, 1, 2**200]) == _gini_by_definition([1, 1, 1, 2**200])
    # exactly one third is not MORE than one third
    assert metrics.nakamoto([1, 1, 1]) == 2
    assert metrics.nakamoto([1, 1, 1, 1], metrics.ONE_HALF) == 3
    assert metrics.top_k_share([3, 1], 5) == 1


def test_values_differing_below_float_precision_stay_distinct():
    # GIVEN stakes that are equal as floats
    a, b = 2**128, 2**128 + 1
    assert float(a) == float(b)
    # THEN the metrics still see the difference: sum|xi-xj| = 2, n = 2
    assert metrics.gini([a, b]) == Fraction(2, 2 * 2 * (a + b))
    assert metrics.top_k_share([a, b], 1) == Fraction(b, a + b) != Fraction(1, 2)


def test_empty_or_zero_distributions_have_no_metrics():
    assert metrics.gini([]) is None
    assert metrics.top_k_share([0, 0], 3) is None
    assert metrics.nakamoto([]) is None


@pytest.mark.parametrize("bad", [[-1], [1.5], [True]])
def test_non_integer_or_negative_stakes_are_refused(bad):
    with pytest.raises(ValueError, match="integers >= 0"):
        metrics.gini(bad)


def test_decimal_text_rounds_to_eighteen_places():
    assert metrics.decimal_text(Fraction(1, 3)) == "0.333333333333333333"
    assert metrics.decimal_text(Fraction(2, 3)) == "0.666666666666666667"
    assert metrics.decimal_text(Fraction(1)) == "1.000000000000000000"
    assert metrics.decimal_text(None) is None
