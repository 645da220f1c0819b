"""The hardened DuckDB engine: a pool of warm, sandboxed worker processes, one query each at a time.

``Engine(config).start()`` spawns the workers (:mod:`trace_core.query.worker`);
``execute(sql, relations, limits)`` hands the query and its trusted relations
to a free worker and waits for the result. The limits hold even for SQL that
never went through the gate: each query runs on a fresh DuckDB with external
access off and configuration locked, under DuckDB's memory limit and the
process's address-space and CPU limits, with a watchdog that interrupts it at
the wall-clock limit; if the worker does not answer within a grace period
after that, it is killed and replaced, and the other workers keep serving.

Thread-safe: call ``execute`` from as many threads as there are workers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from multiprocessing import connection
from pathlib import Path
from typing import Any, Literal, Self

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from trace_core.query import attach, errors, protocol

logger = logging.getLogger(__name__)

MiB = 1 << 20


class ExecLimits(BaseModel):
    """Per-query limits. Each must also fit under the engine's ceilings (:class:`EngineConfig`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(default=30.0, gt=0, le=3600, description="Wall-clock limit.")
    memory_mb: int = Field(default=512, ge=16, description="DuckDB memory_limit.")
    threads: int = Field(default=2, ge=1, le=64, description="DuckDB threads.")
    max_rows: int = Field(default=10_000, ge=0, description="Rows returned; more sets truncated.")
    max_result_bytes: int = Field(default=64 * MiB, ge=1024, description="Arrow bytes returned.")
    max_temp_mb: int = Field(default=1024, ge=0, description="DuckDB spill files (max_temp_directory_size).")


class EngineConfig(BaseModel):
    """The pool and its OS-level ceilings, fixed when workers start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(default=2, ge=1, le=64)
    scratch_dir: Path | None = Field(default=None, description="Workers' scratch root; a temp dir when unset.")
    data_roots: tuple[Path, ...] = Field(default=(), description="Parquet files must lie beneath these (and the "
                                         "worker may read nothing else); empty means any local file.")
    max_memory_mb: int = Field(default=4096, ge=64, description="Ceiling for ExecLimits.memory_mb.")
    address_space_overhead_mb: int = Field(default=3072, ge=512, description="RLIMIT_AS = max_memory_mb + this "
                                           "(interpreter, libraries, thread stacks, Arrow results).")
    max_temp_mb: int = Field(default=4096, ge=0, description="Ceiling for ExecLimits.max_temp_mb; RLIMIT_FSIZE.")
    threads: int = Field(default=2, ge=1, le=64, description="The threads most queries use (prewarmed).")
    kill_grace_s: float = Field(default=5.0, gt=0, description="After the timeout, wait this long, then kill.")
    acquire_timeout_s: float = Field(default=30.0, gt=0, description="Wait for a free worker at most this long.")
    start_timeout_s: float = Field(default=60.0, gt=0)
    landlock: Literal["auto", "required", "off"] = Field(
        default="auto", description="OS confinement of workers: where available, always, or never."
    )
    verify_statement: bool = Field(
        default=True, description="DuckDB's parser must see one SELECT. Off only in tests proving the settings alone."
    )
    reuse_databases: bool = Field(
        default=True, description="A worker keeps its last locked database warm for the next query over the same "
        "files and limits (each query still gets its own connection); off = a fresh database per query. "
        "Only with verify_statement.",
    )


@dataclasses.dataclass(frozen=True)
class QueryResult:
    """A query's rows as Arrow, and how it went."""

    table: pa.Table
    truncated: bool  # more rows (or bytes) matched than the limits let through
    duration_s: float  # wall clock in the engine, queueing excluded
    execution_s: float  # inside the worker: attach, run, fetch
    result_bytes: int  # size of the Arrow IPC stream received

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    def rows(self) -> list[tuple[Any, ...]]:
        """The rows as Python tuples (exact: Decimal, int, bytes, datetime)."""
        columns = [column.to_pylist() for column in self.table.columns]
        return list(zip(*columns)) if columns else [() for _ in range(self.table.num_rows)]


class _Worker:
    """The parent's handle on one worker process."""

    def __init__(self, proc: subprocess.Popen[bytes], conn: connection.Connection, sandbox: str,
                 scratch: Path) -> None:
        self.proc = proc
        self.conn = conn
        self.sandbox = sandbox
        self.scratch = scratch

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.conn.close()

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.conn.send_bytes(protocol.header(op="stop"))
            self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()
        shutil.rmtree(self.scratch, ignore_errors=True)


class Engine:
    """A pool of hardened DuckDB worker processes. Use as a context manager, or ``start()`` / ``close()``."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._started = False
        self._own_scratch = self.config.scratch_dir is None
        self._scratch = Path(self.config.scratch_dir or "/nonexistent")  # chosen at start()
        self._serial = 0
        self._spawners: set[threading.Thread] = set()
        self.sandbox = "not started"
        self._finalizer = weakref.finalize(self, _kill_all, self._all)
        defaults = ExecLimits()
        # What ``execute`` uses without explicit limits: ExecLimits' defaults, within this engine's ceilings.
        self.default_limits = defaults.model_copy(update={
            "memory_mb": min(defaults.memory_mb, self.config.max_memory_mb),
            "max_temp_mb": min(defaults.max_temp_mb, self.config.max_temp_mb),
            "threads": self.config.threads,
        })

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Self:
        """Spawn the workers and wait until each is confined and ready."""
        if self._started:
            return self
        self._started = True
        if self._own_scratch:
            self._scratch = Path(tempfile.mkdtemp(prefix="trace-query-"))
        self._scratch = self._scratch.resolve()
        self._scratch.mkdir(parents=True, exist_ok=True)
        errors_seen: list[BaseException] = []

        def spawn() -> None:
            try:
                self._idle.put(self._spawn())
            except BaseException as exc:  # noqa: BLE001 - re-raised below on the caller's thread
                errors_seen.append(exc)

        threads = [threading.Thread(target=spawn) for _ in range(self.config.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors_seen:
            self.close()
            raise errors_seen[0]
        if self.sandbox.startswith("none"):
            logger.warning("query workers run without OS confinement: %s", self.sandbox)
        logger.info("query engine started: %d workers, sandbox %s", self.config.workers, self.sandbox)
        return self

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (for health checks and operators)."""
        with self._lock:
            return sorted(w.proc.pid for w in self._all)

    def close(self) -> None:
        """Stop every worker and remove its scratch directory (and the root, when the engine created it)."""
        with self._lock:
            self._closed = True
            spawners = list(self._spawners)
        for spawner in spawners:  # a replacement being started finishes (and is stopped) before scratch goes
            spawner.join(self.config.start_timeout_s)
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.stop()
        if self._own_scratch and self._started:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def execute(
        self, sql: str, relations: Mapping[str, attach.RelationSource], limits: ExecLimits | None = None
    ) -> QueryResult:
        """Run ``sql`` over ``relations`` under ``limits``.

        Raises QueryTimeoutError, QueryMemoryError, QueryFailedError (the SQL could
        not run), InvalidRelationError (bad trusted input), QueryBusyError, EngineClosedError.
        """
        limits = limits or self.default_limits
        self._check_limits(limits)
        checked = attach.validate(relations, data_roots=self.config.data_roots)
        worker = self._acquire()
        started = time.perf_counter()
        keep = False
        try:
            result = self._ask(worker, sql, checked, limits)
            keep = True
            return dataclasses.replace(result, duration_s=time.perf_counter() - started)
        except errors.QueryError as exc:
            keep = not exc.details.get("recycle", False)
            raise
        finally:
            self._release(worker, keep=keep)

    # --- internals -------------------------------------------------------------------------

    def _check_limits(self, limits: ExecLimits) -> None:
        for field, ceiling in (("memory_mb", self.config.max_memory_mb), ("max_temp_mb", self.config.max_temp_mb)):
            if getattr(limits, field) > ceiling:
                raise errors.InvalidLimitsError(
                    f"ExecLimits.{field}={getattr(limits, field)} is over the engine's ceiling {ceiling}",
                    field=field, expected=f"<= {ceiling}",
                )

    def _acquire(self) -> _Worker:
        if self._closed or not self._started:
            raise errors.EngineClosedError("the query engine is not running")
        deadline = time.monotonic() + self.config.acquire_timeout_s
        while True:
            try:
                worker = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise errors.QueryBusyError(
                    f"no query worker became free within {self.config.acquire_timeout_s:g}s",
                    waited_s=self.config.acquire_timeout_s,
                ) from None
            # An idle worker never has anything to say: a readable socket means it died (EOF) or broke.
            if worker.proc.poll() is None and not _readable(worker.conn):
                return worker
            self._retire(worker)  # died while idle (killed from outside): replace it, take the next

    def _release(self, worker: _Worker, *, keep: bool) -> None:
        if keep and worker.proc.poll() is None and not self._closed:
            self._idle.put(worker)
            return
        self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
            closed = self._closed
        threading.Thread(target=worker.stop, args=(2.0,), daemon=True).start()
        if not closed:
            spawner = threading.Thread(target=self._replace, daemon=True)
            with self._lock:
                self._spawners.add(spawner)
            spawner.start()

    def _replace(self) -> None:
        try:
            self._idle.put(self._spawn())
        except errors.EngineClosedError:
            pass
        except Exception:  # the pool shrinks by one; the next failure is logged again
            logger.exception("could not start a replacement query worker")
        finally:
            with self._lock:
                self._spawners.discard(threading.current_thread())

    def _spawn(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise errors.EngineClosedError("the query engine is closed")
            self._serial += 1
            scratch = self._scratch / f"w{self._serial}"
        scratch.mkdir(parents=True, exist_ok=True)
        parent_sock, child_sock = socket.socketpair()
        env = {"PATH": "/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8", "TZ": "UTC",
               "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "trace_core.query.worker", str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),), env=env, cwd=scratch, stdin=subprocess.DEVNULL,
            )
        finally:
            child_sock.close()
        conn = connection.Connection(os.dup(parent_sock.fileno()))
        parent_sock.close()
        config = self.config
        init: dict[str, Any] = {
            "scratch": str(scratch),
            "data_roots": [str(Path(p).resolve()) for p in config.data_roots],
            "address_space_bytes": (config.max_memory_mb + config.address_space_overhead_mb) * MiB,
            "max_file_bytes": max(config.max_temp_mb, 64) * MiB,
            "landlock": config.landlock,
            "verify_statement": config.verify_statement,
            "threads": config.threads,
            "reuse_databases": config.reuse_databases,
        }
        conn.send_bytes(json.dumps(init).encode())
        if not conn.poll(config.start_timeout_s):
            proc.kill()
            proc.wait()
            conn.close()
            raise errors.QueryFailedError("a query worker did not start in time", kind="start")
        try:
            ready = protocol.parse_header(conn.recv_bytes(64 * 1024))
        except (EOFError, OSError) as exc:
            proc.wait()
            raise errors.QueryFailedError(f"a query worker exited at start ({proc.returncode})", kind="start") from exc
        if not ready.get("ready"):
            proc.wait()
            conn.close()
            raise errors.QueryFailedError(f"a query worker refused to start: {ready.get('error')}", kind="start")
        worker = _Worker(proc, conn, str(ready.get("sandbox")), scratch)
        self.sandbox = worker.sandbox
        with self._lock:
            if self._closed:
                worker.kill()
                raise errors.EngineClosedError("the query engine is closed")
            self._all.add(worker)
        return worker

    def _ask(self, worker: _Worker, sql: str, relations: dict[str, attach.RelationSource],
             limits: ExecLimits) -> QueryResult:
        specs: list[dict[str, Any]] = []
        tables = []
        for name, source in relations.items():
            if source.table is not None:
                specs.append({"name": name, "kind": "arrow"})
                tables.append(source.table)
            else:
                specs.append({"name": name, "kind": "files", "files": [str(f) for f in source.files]})
        try:
            worker.conn.send_bytes(protocol.header(sql=sql, relations=specs, limits=limits.model_dump(),
                                                   arrow_tables=len(tables)))
            for table in tables:
                worker.conn.send_bytes(protocol.table_bytes(table))
            answered = worker.conn.poll(limits.timeout_s + self.config.kill_grace_s)
        except OSError as exc:
            raise self._died(worker, limits) from exc
        if not answered:
            worker.kill()
            raise errors.QueryTimeoutError(
                f"the query did not stop at its {limits.timeout_s:g}s limit and its worker was killed",
                timeout_s=limits.timeout_s, recycle=True,
            )
        try:
            head = protocol.parse_header(worker.conn.recv_bytes(1 * MiB))
            if not head["ok"]:
                raise _error(head, limits)
            raw = worker.conn.recv_bytes(limits.max_result_bytes + 16 * MiB)
        except (EOFError, OSError) as exc:
            raise self._died(worker, limits) from exc
        table = protocol.read_table(raw)
        return QueryResult(table=table, truncated=bool(head["truncated"]), duration_s=0.0,
                           execution_s=float(head["execution_s"]), result_bytes=len(raw))

    def _died(self, worker: _Worker, limits: ExecLimits) -> errors.QueryError:
        try:
            code = worker.proc.wait(5)
        except subprocess.TimeoutExpired:
            worker.kill()
            code = worker.proc.returncode
        if code == -signal.SIGXCPU:
            return errors.QueryTimeoutError(
                f"the query used up its CPU-time budget ({limits.timeout_s:g}s x {limits.threads} threads)",
                timeout_s=limits.timeout_s, recycle=True,
            )
        if code == -signal.SIGXFSZ:
            return errors.QueryFailedError("the query's temporary files grew past the limit",
                                           kind="temp_limit", recycle=True)
        return errors.QueryFailedError(f"the query worker stopped unexpectedly (exit {code})",
                                       kind="crash", recycle=True)


def _error(head: dict[str, Any], limits: ExecLimits) -> errors.QueryError:
    kind, message, recycle = head.get("error"), str(head.get("message")), bool(head.get("recycle"))
    if kind == "timeout":
        return errors.QueryTimeoutError(f"the query was stopped at its {limits.timeout_s:g}s limit",
                                        timeout_s=limits.timeout_s, recycle=recycle)
    if kind == "memory" and "max_temp_directory_size" in message:
        return errors.QueryMemoryError(
            f"the query was stopped at its {limits.max_temp_mb} MB limit on spill files: {message}",
            memory_mb=limits.memory_mb, max_temp_mb=limits.max_temp_mb, recycle=recycle,
        )
    if kind == "memory":
        return errors.QueryMemoryError(f"the query was stopped at its {limits.memory_mb} MB memory limit: {message}",
                                       memory_mb=limits.memory_mb, recycle=recycle)
    if kind == "attach":
        return errors.InvalidRelationError(f"the relations could not be attached: {message}", relation=None,
                                           expected="readable Parquet files sharing one schema", recycle=recycle)
    return errors.QueryFailedError(message, kind=kind, error_type=head.get("error_type"), recycle=recycle)


def _readable(conn: connection.Connection) -> bool:
    try:
        return conn.poll(0)
    except OSError:
        return True


def _kill_all(workers: set[_Worker]) -> None:
    for worker in list(workers):
        try:
            worker.kill()
        except Exception:  # best effort at interpreter exit
            logger.debug("could not kill query worker %s", worker.proc.pid, exc_info=True)
