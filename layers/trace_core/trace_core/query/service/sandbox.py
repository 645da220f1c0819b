"""The port to the query sandbox (SQL gate + hardened DuckDB engine), as the service needs it.

The service calls ``check`` (the gate: one read-only SELECT over granted
relations, regenerated) and then ``execute`` on the gated SQL with the granted
relations attached from verified local files. The adapter over
``trace_core.query`` lives in :mod:`trace_core.query.service.engine`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Protocol

import pyarrow as pa
from trace_core.query.service import errors


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


@dataclasses.dataclass(frozen=True)
class ResultSet:
    table: pa.Table
    truncated: bool


class Sandbox(Protocol):
    def check(self, sql: str, *, relations: Collection[str]) -> GatedSql:
        """Gate ``sql``; raises the sandbox's QueryRejectedError (reason ``relation_not_granted`` or another)."""

    def execute(self, gated: GatedSql, relations: Mapping[str, RelationFiles], limits: ExecLimits) -> ResultSet:
        """Run gated SQL over ``relations``; raises the sandbox's timeout, memory or failure errors."""

    def close(self) -> None:
        """Stop worker processes."""


class InProcessSandbox:
    """A FAKE sandbox for tests of the service around it: not hardened, not for serving.

    It runs one statement over the relations it is given, in this process: a
    sqlglot pass that refuses anything but one SELECT over granted names, then
    DuckDB over the files loaded as Arrow tables, with external access off and a
    watchdog that interrupts at the time limit. The real gate and engine live in
    ``trace_core.query``; the contract tests run against both.
    """

    def check(self, sql: str, *, relations: Collection[str]) -> GatedSql:
        import sqlglot
        from sqlglot import expressions as exp

        try:
            statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
        except sqlglot.errors.ParseError as exc:
            raise errors.QueryRejectedError(f"syntax error: {exc}", reason="syntax") from exc
        if len(statements) != 1:
            raise errors.QueryRejectedError("exactly one statement is allowed", reason="multiple_statements")
        tree = statements[0]
        if not isinstance(tree, exp.Query):
            raise errors.QueryRejectedError("only SELECT queries are allowed", reason="not_select")
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        used = set()
        for table in tree.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier) or table.args.get("db") or table.args.get("catalog"):
                raise errors.QueryRejectedError(f"{table.sql('duckdb')} is not a granted relation",
                                                reason="forbidden_relation")
            name = table.name.lower()
            if name in ctes:
                continue
            if name not in relations:
                raise errors.QueryRejectedError(f"relation {name!r} is not granted", reason="relation_not_granted",
                                                relation=name)
            used.add(name)
        return GatedSql(sql=tree.sql(dialect="duckdb"), relations_used=frozenset(used))

    def execute(self, gated: GatedSql, relations: Mapping[str, RelationFiles], limits: ExecLimits) -> ResultSet:
        import threading

        import duckdb
        import pyarrow.parquet as pq

        con = duckdb.connect(config={"threads": 2, "memory_limit": f"{limits.memory_mb}MB"})
        try:
            for name, source in relations.items():
                con.register(name, pa.concat_tables([pq.read_table(f) for f in source.files]))
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            timer = threading.Timer(limits.timeout_s, con.interrupt)
            timer.start()
            try:
                reader = con.sql(gated.sql).to_arrow_reader()
                batches, rows = [], 0
                for batch in reader:
                    batches.append(batch)
                    rows += batch.num_rows
                    if rows > limits.max_rows:
                        break
                table = pa.Table.from_batches(batches, schema=reader.schema)
            except duckdb.InterruptException as exc:
                raise errors.QueryTimeoutError(f"query stopped after {limits.timeout_s:g}s",
                                               timeout_s=limits.timeout_s) from exc
            except duckdb.OutOfMemoryException as exc:
                raise errors.QueryMemoryError(f"query stopped at its {limits.memory_mb} MB memory limit",
                                              memory_mb=limits.memory_mb) from exc
            except duckdb.Error as exc:
                raise errors.QueryFailedError(f"query failed: {exc}") from exc
            finally:
                timer.cancel()
        finally:
            con.close()
        return ResultSet(table=table.slice(0, limits.max_rows), truncated=table.num_rows > limits.max_rows)

    def close(self) -> None:
        return None
