"""Turning a template's change points into exact series. Pure.

Templates return, per key (holder, validator), its running value after the last
change in each sampling bucket (bucket -1 holds the last change before the window).
A bucket without a row keeps the previous bucket's value; that is exact, because
no change happened in it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from trace_core.analytics import errors, ports

K = TypeVar("K", bound=Hashable)


def records(rows: ports.Rows, analytic: str, expected: Sequence[str]) -> list[dict[str, Any]]:
    """The rows as dicts, after checking the query returned the columns the analytic reads."""
    missing = [c for c in expected if c not in rows.columns]
    if missing:
        raise errors.ResultShapeError(
            f"{analytic}: the query returned columns {', '.join(rows.columns) or 'none'}; expected "
            f"{', '.join(expected)}", analytic=analytic, field=missing[0],
        )
    return [dict(zip(rows.columns, row)) for row in rows.rows]


def exact_int(value: Any, *, analytic: str, column: str) -> int:
    """An amount from a query: decimal text (or an int) to a Python int, never through a float."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise errors.ResultShapeError(
            f"{analytic}: column {column} must hold exact integers (decimal text), got {value!r}",
            analytic=analytic, field=column,
        )
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise errors.ResultShapeError(
            f"{analytic}: column {column} must hold decimal integers, got {value!r}", analytic=analytic, field=column,
        ) from exc


def carry_forward(
    points: Iterable[tuple[K, int, Any]], buckets: int, initial: Callable[[], Any]
) -> dict[K, list[Any]]:
    """``(key, bucket, value)`` change points -> ``key -> [value at bucket 0..buckets-1]``.

    A key's value before its first change point is ``initial()``; bucket -1 seeds it.
    """
    by_key: dict[K, dict[int, Any]] = {}
    for key, bucket, value in points:
        by_key.setdefault(key, {})[bucket] = value
    out: dict[K, list[Any]] = {}
    for key, changes in by_key.items():
        value = changes.get(-1, initial())
        filled = []
        for bucket in range(buckets):
            value = changes.get(bucket, value)
            filled.append(value)
        out[key] = filled
    return out
