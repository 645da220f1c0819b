"""The two things an analytic needs from the platform, as ports.

- :class:`QueryPort`: run one SQL query over the granted relations (the Query Service).
- :class:`CoveragePort`: which block ranges of a relation are synced and visible.

Adapters: :mod:`trace_core.analytics.service` (the Query Service over HTTP or
in-process, and Postgres' visible versions); :mod:`trace_core.analytics.memory`
(Arrow tables in a local DuckDB, for unit tests of the templates).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol


@dataclasses.dataclass(frozen=True)
class Rows:
    """A query's answer: column names and rows of JSON-like values (amounts as decimal text)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


class QueryPort(Protocol):
    def query(self, sql: str) -> Rows:
        """Run ``sql`` (one read-only SELECT) and return all its rows; raise QueryError on refusal."""
        ...


class CoveragePort(Protocol):
    def synced(self, relation: str) -> Sequence[tuple[int, int]]:
        """The visible, committed block ranges ``[start, end)`` of ``relation`` (any order)."""
        ...
