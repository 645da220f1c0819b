"""In-memory adapters of the analytics ports: Arrow tables in a private DuckDB connection.

For tests of the SQL templates and for trusted local use only: the SQL is ours (rendered
templates), the relations are the caller's tables, and the connection reads no file.
The platform path is :mod:`trace_core.analytics.service`; the integration tests check
that both answer the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import pyarrow as pa

from trace_core.analytics import errors, ports


class ArrowQuery:
    """:class:`~trace_core.analytics.ports.QueryPort` over named Arrow tables."""

    def __init__(self, relations: Mapping[str, pa.Table]) -> None:
        self._relations = dict(relations)

    def query(self, sql: str) -> ports.Rows:
        con = duckdb.connect(config={"enable_external_access": False})
        try:
            for name, table in self._relations.items():
                con.register(name, table)
            try:
                cursor = con.execute(sql)
            except duckdb.Error as exc:
                raise errors.QueryError(f"query failed: {exc}", reason="failed") from exc
            columns = tuple(d[0] for d in cursor.description or ())
            return ports.Rows(columns=columns, rows=tuple(tuple(r) for r in cursor.fetchall()))
        finally:
            con.close()


class FixedCoverage:
    """:class:`~trace_core.analytics.ports.CoveragePort` with given ranges per relation."""

    def __init__(self, ranges: Mapping[str, Sequence[tuple[int, int]]]) -> None:
        self._ranges = {k: list(v) for k, v in ranges.items()}

    def synced(self, relation: str) -> Sequence[tuple[int, int]]:
        return self._ranges.get(relation, [])
