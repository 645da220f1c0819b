"""Concentration metrics over stakes, exact: Python ints in, ``Fraction`` (or int) out. Pure.

Stakes are uint256 amounts; floats would round them (a double has 53 bits), so
every ratio here is a :class:`fractions.Fraction`. Zero stakes are left out
(a validator with no stake holds no share of consensus); an empty or all-zero
distribution has no Gini, share or Nakamoto coefficient (``None``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

ONE_THIRD = Fraction(1, 3)
ONE_HALF = Fraction(1, 2)


def _positive_desc(stakes: Iterable[int]) -> list[int]:
    values = list(stakes)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"stakes must be integers >= 0, got {value!r}")
    return sorted((v for v in values if v > 0), reverse=True)


def gini(stakes: Iterable[int]) -> Fraction | None:
    """Gini coefficient: mean absolute difference over twice the mean, ``sum|xi-xj| / (2 n sum x)``.

    0 when every validator holds the same stake, approaching 1 when one holds it all.
    Computed in O(n log n) from the sorted stakes: ``sum|xi-xj| = 2 * sum_i (2i - n - 1) x_(i)``
    with ``x_(1) <= ... <= x_(n)``.
    """
    ordered = sorted(_positive_desc(stakes))
    n = len(ordered)
    total = sum(ordered)
    if n == 0:
        return None
    weighted = sum((2 * i - n - 1) * x for i, x in enumerate(ordered, start=1))
    return Fraction(2 * weighted, 2 * n * total)


def top_k_share(stakes: Iterable[int], k: int) -> Fraction | None:
    """The share of all stake held by the ``k`` largest validators (all of it if there are fewer)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ordered = _positive_desc(stakes)
    total = sum(ordered)
    if total == 0:
        return None
    return Fraction(sum(ordered[:k]), total)


def nakamoto(stakes: Iterable[int], threshold: Fraction = ONE_THIRD) -> int | None:
    """The smallest number of validators whose stake together is MORE than ``threshold`` of the total."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    ordered = _positive_desc(stakes)
    total = sum(ordered)
    if total == 0:
        return None
    running = 0
    for count, stake in enumerate(ordered, start=1):
        running += stake
        # running / total > threshold, kept in integers
        if running * threshold.denominator > threshold.numerator * total:
            return count
    raise AssertionError("unreachable: the whole set holds all the stake")  # pragma: no cover


def shares(stakes: Sequence[int]) -> list[Fraction | None]:
    """Each stake's share of the total, in the given order (``None`` when the total is 0)."""
    total = sum(stakes)
    return [Fraction(s, total) if total else None for s in stakes]


def decimal_text(value: Fraction | None, places: int = 18) -> str | None:
    """A ratio as decimal text rounded half-even to ``places`` digits (for JSON and tables)."""
    if value is None:
        return None
    scaled = round(value * 10**places)
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"
