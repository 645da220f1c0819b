"""The Sandbox adapter over ``trace_core.query``: its SQL gate, then its hardened DuckDB engine.

Translates the sandbox's errors into :mod:`trace_core.query.service.errors` at
the boundary, so the HTTP mapping depends on one module. If the sandbox's workers
cannot start, the service still starts (health answers) and every query
is a 503 ``sandbox_unavailable`` naming the cause: it never falls back to
anything weaker.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from trace_core import errors as trace_errors
from trace_core.query import attach, gate
from trace_core.query import engine as query_engine
from trace_core.query import errors as query_errors
from trace_core.query.service import errors, sandbox
from trace_core.settings import Settings

logger = logging.getLogger(__name__)

# Distinct (SQL, granted names) verdicts kept, for SQL up to GATE_CACHE_MAX_CHARS (at most ~40 MB).
GATE_CACHE_SIZE = 2048
GATE_CACHE_MAX_CHARS = 8192


class UnavailableSandbox:
    """Refuses every query with SandboxUnavailableError."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _refuse(self) -> errors.SandboxUnavailableError:
        return errors.SandboxUnavailableError(f"the query sandbox is unavailable: {self.reason}", reason=self.reason)

    def check(self, sql: str, *, relations: Collection[str]) -> sandbox.GatedSql:
        raise self._refuse()

    def execute(self, gated: sandbox.GatedSql, relations: Mapping[str, sandbox.RelationFiles],
                limits: sandbox.ExecLimits) -> sandbox.ResultSet:
        raise self._refuse()

    def close(self) -> None:
        return None


@contextmanager
def _translated() -> Iterator[None]:
    """The sandbox's errors as the service's."""
    try:
        yield
    except query_errors.QueryRejectedError as exc:
        raise errors.QueryRejectedError(exc.message, reason=str(exc.reason), node=exc.node) from exc
    except query_errors.QueryTimeoutError as exc:
        raise errors.QueryTimeoutError(exc.message, timeout_s=exc.details.get("timeout_s")) from exc
    except query_errors.QueryMemoryError as exc:
        raise errors.QueryMemoryError(exc.message, memory_mb=exc.details.get("memory_mb")) from exc
    except query_errors.QueryFailedError as exc:
        raise errors.QueryFailedError(exc.message, kind=exc.details.get("kind")) from exc
    except query_errors.QueryBusyError as exc:
        raise errors.QueryBusyError(exc.message, waited_s=exc.details.get("waited_s")) from exc
    except query_errors.EngineClosedError as exc:
        raise errors.SandboxUnavailableError(exc.message, reason="engine closed") from exc
    except query_errors.QueryError as exc:  # invalid relations or limits: a bug in trusted code
        raise errors.QueryServiceError(f"sandbox refused trusted input: {exc.message}") from exc


@functools.lru_cache(maxsize=GATE_CACHE_SIZE)
def _gated(sql: str, relations: frozenset[str]) -> sandbox.GatedSql:
    """The gate's verdict on ``sql`` for this set of granted names, remembered for repeated queries.

    The gate is a pure function of exactly these two inputs, and its answer is immutable, so a
    dashboard's repeated query skips parsing and regenerating (about 1-2 ms). Rejections are not
    remembered: they raise, and are rare.
    """
    gated = gate.check(sql, relations=relations)
    return sandbox.GatedSql(sql=gated.sql, relations_used=frozenset(gated.relations_used))


class SandboxEngine:
    """The production Sandbox: ``trace_core.query.gate.check``, then ``trace_core.query.engine.Engine``."""

    def __init__(self, engine: query_engine.Engine) -> None:
        self._engine = engine

    @classmethod
    def start(cls, settings: Settings, *, data_roots: tuple[Path, ...] = ()) -> sandbox.Sandbox:
        """Start the worker pool (reading only files under ``data_roots``), or an UnavailableSandbox saying why."""
        config = query_engine.EngineConfig(
            workers=settings.query_workers, data_roots=data_roots, max_memory_mb=settings.query_memory_mb,
        )
        try:
            engine = query_engine.Engine(config).start()
        except (trace_errors.TraceError, OSError) as exc:
            logger.error("query sandbox did not start: %s", exc)
            return UnavailableSandbox(f"the sandbox workers did not start ({exc})")
        return cls(engine)

    def check(self, sql: str, *, relations: Collection[str]) -> sandbox.GatedSql:
        check = _gated if len(sql) <= GATE_CACHE_MAX_CHARS else _gated.__wrapped__
        with _translated():
            return check(sql, frozenset(relations))

    def execute(self, gated: sandbox.GatedSql, relations: Mapping[str, sandbox.RelationFiles],
                limits: sandbox.ExecLimits) -> sandbox.ResultSet:
        sources = {name: attach.RelationSource.parquet(files.files) for name, files in relations.items()}
        exec_limits = query_engine.ExecLimits(
            timeout_s=limits.timeout_s, memory_mb=limits.memory_mb, max_rows=limits.max_rows,
            max_result_bytes=limits.max_result_bytes,
        )
        with _translated():
            result = self._engine.execute(gated.sql, sources, exec_limits)
        return sandbox.ResultSet(table=result.table, truncated=result.truncated,
                                 worker_ms=round(result.execution_s * 1000, 3))

    def close(self) -> None:
        self._engine.close()
