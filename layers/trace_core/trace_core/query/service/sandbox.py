"""The port to the query sandbox (SQL gate + hardened DuckDB engine), as the service needs it.

The service calls ``check`` (the gate: one read-only SELECT over granted
relations, regenerated) and then ``execute`` on the gated SQL with the granted
relations attached from verified local files. Implementations raise the errors
of :mod:`trace_core.query.service.errors`; the adapter over ``trace_core.query``
(:mod:`trace_core.query.service.engine`) translates the sandbox's own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Protocol

import pyarrow as pa


@dataclasses.dataclass(frozen=True)
class RelationFiles:
    """One granted relation: local Parquet files, each verified against its manifest (sha256, size)."""

    name: str
    files: tuple[Path, ...]
    # The pinned versions behind the files, sorted: a stable identity for warm attach caches.
    versions: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class GatedSql:
    sql: str
    relations_used: frozenset[str]


@dataclasses.dataclass(frozen=True)
class ExecLimits:
    timeout_s: float
    memory_mb: int
    max_rows: int
    # Arrow bytes returned at most; a longer result comes back cut short with ``truncated``.
    max_result_bytes: int


@dataclasses.dataclass(frozen=True)
class ResultSet:
    table: pa.Table
    truncated: bool
    # Wall-clock inside the sandbox's worker (attach, run, fetch); the rest of ``execute`` is the hand-over.
    worker_ms: float | None = None


class Sandbox(Protocol):
    def check(self, sql: str, *, relations: Collection[str]) -> GatedSql:
        """Gate ``sql``; raises QueryRejectedError (reason ``relation_not_granted`` or another)."""

    def execute(self, gated: GatedSql, relations: Mapping[str, RelationFiles], limits: ExecLimits) -> ResultSet:
        """Run gated SQL over ``relations``; raises QueryTimeoutError, QueryMemoryError, QueryFailedError, ..."""

    def close(self) -> None:
        """Stop worker processes."""

