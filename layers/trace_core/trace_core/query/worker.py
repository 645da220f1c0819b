"""The query worker process: one query at a time, each on its own connection to a hardened, locked DuckDB.

Started by :class:`trace_core.query.engine.Engine` as
``python -m trace_core.query.worker <fd>`` with a minimal environment. Before it
imports DuckDB or Arrow (so before any thread exists) it confines itself: OS
resource limits, then Landlock where the kernel has it (reads only beneath the
runtime and the data roots, writes only beneath its scratch directory, no TCP).

Per query: a DuckDB database prepared while idle (extension autoload and
install off, Python replacement scans off, its own temp directory) gets the
relations attached by trusted code, its limits set, ``allowed_paths`` set to
exactly the attached files, then external access off and configuration
locked. Then DuckDB's own parser must see one SELECT, and the query runs under
a CPU limit and a watchdog that interrupts it at the wall-clock limit. The
result is fetched up to the row and byte caps (cap + 1 rows, to know whether
it was truncated).

Afterwards the database and its temp directory are discarded, except that the
last database that answered may stay warm for the next query over exactly the
same files and limits (``reuse_databases``): that query gets a new connection
to it. A first query on a new database pays a cold start (about 20 ms on a
10M-row Parquet scan); nothing a SELECT does outlives its connection, which is
why reuse needs the SELECT-only check. At most one database holds memory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import shutil
import signal
import sys
import threading
import time
from multiprocessing import connection
from pathlib import Path
from typing import Any

from trace_core.query import landlock

# Read-only system locations the interpreter and its native libraries need after confinement.
_SYSTEM_READ = ("/usr", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/localtime", "/proc/self", "/sys/fs/cgroup",
                "/sys/devices/system/cpu", "/dev/urandom")


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m trace_core.query.worker <socket fd>``."""
    argv = sys.argv if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine decides when workers stop
    conn = connection.Connection(int(argv[1]))
    init = json.loads(conn.recv_bytes())
    scratch = Path(init["scratch"])
    scratch.mkdir(parents=True, exist_ok=True)
    os.chdir(scratch)
    _set_limits(init)
    sandbox = _confine(init, scratch)
    if init["landlock"] == "required" and not sandbox.enforced:
        conn.send_bytes(json.dumps({"ready": False, "error": sandbox.reason}).encode())
        return 2
    worker = _Worker(conn, scratch, verify_statement=bool(init["verify_statement"]), threads=int(init["threads"]),
                     reuse_databases=bool(init["reuse_databases"]))
    conn.send_bytes(json.dumps({"ready": True, "sandbox": _describe(sandbox), "pid": os.getpid()}).encode())
    worker.serve()
    return 0


def _set_limits(init: dict[str, Any]) -> None:
    # RLIMIT_AS bounds what DuckDB's memory_limit does not (allocations outside its buffer manager).
    resource.setrlimit(resource.RLIMIT_AS, (init["address_space_bytes"], init["address_space_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not dump granted data to disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (init["max_file_bytes"], init["max_file_bytes"]))


def _confine(init: dict[str, Any], scratch: Path) -> landlock.Outcome:
    if init["landlock"] == "off":
        return landlock.Outcome(0, "Landlock switched off by configuration")
    import trace_core

    read = {Path(p) for p in _SYSTEM_READ}
    read |= {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    read |= {Path(p) for p in sys.path if p and os.path.isdir(p)}
    read.add(Path(trace_core.__file__).resolve().parent)
    # Without data roots the engine accepts any local file, so reads cannot be confined (writes and TCP still are).
    read |= {Path(p) for p in init["data_roots"]} or {Path("/")}
    try:
        return landlock.restrict(read={Path(os.path.realpath(p)) for p in read}, write={scratch, Path("/dev/null")})
    except OSError as exc:
        return landlock.Outcome(0, f"Landlock rules could not be added: {exc}")


def _describe(outcome: landlock.Outcome) -> str:
    return f"landlock-abi-{outcome.abi}" if outcome.enforced else f"none ({outcome.reason})"


@dataclasses.dataclass
class _Database:
    """One DuckDB database: prepared (unlocked) or attached and locked for one grant and its limits."""

    con: Any
    directory: Path
    key: str | None = None  # set once attached and locked, when it may serve later queries


class _Worker:
    def __init__(self, conn: connection.Connection, scratch: Path, *, verify_statement: bool, threads: int,
                 reuse_databases: bool) -> None:
        # Imported only now, after confinement, so every thread they start is confined too.
        import duckdb

        from trace_core.query import attach, protocol

        self._duckdb = duckdb
        self._attach = attach
        self._protocol = protocol
        self._conn = conn
        self._scratch = scratch
        self._verify_statement = verify_statement
        self._threads = threads  # the usual per-query value: opening with it spares a resize per query
        # A warm database is reused only behind DuckDB's own SELECT-only check: nothing a SELECT
        # does outlives its connection, and each query gets a new connection.
        self._reuse = reuse_databases and verify_statement
        self._warm: _Database | None = None
        self._watchdog = _Watchdog()
        self._seq = 0
        self._next: _Database | None = None
        self._prepare_next()

    def serve(self) -> None:
        while True:
            try:
                request = json.loads(self._conn.recv_bytes())
            except (EOFError, OSError):
                return  # the engine went away
            if request.get("op") == "stop":
                return
            tables = [self._protocol.read_table(self._conn.recv_bytes()) for _ in range(request["arrow_tables"])]
            key = self._warm_key(request) if self._reuse else None
            database = self._database_for(key)
            response: dict[str, Any] = {"ok": False}
            try:
                response, payload = self._run(database, key, request, tables)
                self._conn.send_bytes(self._protocol.header(**response))
                if payload is not None:
                    self._conn.send_bytes(payload)
            finally:
                # After answering: closing a database costs more than a trivial query. Only a
                # database that answered is kept warm; after any failure it is discarded.
                if response.get("ok") and database.key is not None:
                    self._warm = database
                else:
                    _close(database)
            if response.get("recycle"):
                return  # state may be damaged: the engine starts a fresh worker
            if self._next is None:
                self._prepare_next()

    def _warm_key(self, request: dict[str, Any]) -> str | None:
        """Queries over the same files with the same database-level limits may share a locked database."""
        if request["arrow_tables"] or not request["relations"]:
            return None  # Arrow tables arrive anew with each query; nothing to keep warm without relations
        limits = request["limits"]
        return json.dumps([sorted((r["name"], r["files"]) for r in request["relations"]),
                           limits["memory_mb"], limits["threads"], limits["max_temp_mb"]])

    def _database_for(self, key: str | None) -> _Database:
        """The warm database for ``key``, else the prepared one; at most one database holds memory at a time."""
        warm, self._warm = self._warm, None
        if warm is not None and key is not None and warm.key == key:
            return warm
        if warm is not None:
            _close(warm)  # before the next query allocates: their memory must not add up
        database, self._next = self._next, None
        assert database is not None
        return database

    def _prepare_next(self) -> None:
        """Open the next query's database while idle (connecting costs more than a trivial query)."""
        self._seq += 1
        directory = self._scratch / f"q{self._seq}"
        (directory / "tmp").mkdir(parents=True, exist_ok=True)
        self._next = _Database(self._duckdb.connect(":memory:", config={
            "threads": self._threads,
            "memory_limit": "64MB",
            "temp_directory": str(directory / "tmp"),
            "extension_directory": str(directory / "extensions"),
            "secret_directory": str(directory / "secrets"),
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
            "python_enable_replacements": False,
            # Pinned (and locked with the rest): the gate drops an explicit NULLS LAST, which is this order.
            "default_null_order": "nulls_last",
            "default_order": "asc",
        }), directory)

    def _run(self, database: _Database, key: str | None, request: dict[str, Any],
             tables: list[Any]) -> tuple[dict[str, Any], Any]:
        duckdb = self._duckdb
        limits = request["limits"]
        relations = self._relations(request["relations"], tables)
        redact = {**self._attach.redactions(relations), str(self._scratch): "<scratch>"}
        started = time.perf_counter()
        timed_out = threading.Event()
        con = database.con
        try:
            if database.key is None:  # a fresh database: trusted attach, then lock it down
                try:
                    files = self._attach.attach(con, relations)
                except duckdb.Error as exc:
                    return _failure("attach", _redacted(exc, redact)), None
                _lock(con, limits, files)
                database.key = key
            if database.key is not None:
                con = database.con.cursor()  # a shared, locked database: the query gets its own connection
        except duckdb.Error as exc:
            return _failure("failed", _redacted(exc, redact), error_type=type(exc).__name__), None
        try:
            if self._verify_statement:
                refusal = _statement_refusal(duckdb, con, request["sql"])
                if refusal:
                    return _failure("not_select", refusal), None
            _cpu_budget(limits)
            self._watchdog.arm(limits["timeout_s"], con, timed_out)
            table, truncated = _fetch(con, request["sql"], limits)
            self._watchdog.disarm()
            payload = self._protocol.table_bytes(table)
            return {"ok": True, "truncated": truncated, "rows": table.num_rows,
                    "execution_s": time.perf_counter() - started}, payload
        except duckdb.InterruptException as exc:
            kind = "timeout" if timed_out.is_set() else "failed"
            return _failure(kind, _redacted(exc, redact)), None
        except duckdb.OutOfMemoryException as exc:
            return _failure("memory", _redacted(exc, redact)), None
        except MemoryError as exc:  # outside DuckDB (Arrow, Python): this process may be damaged
            return _failure("memory", f"out of memory: {exc}", recycle=True), None
        except duckdb.Error as exc:
            return _failure("failed", _redacted(exc, redact), error_type=type(exc).__name__), None
        except Exception as exc:  # noqa: BLE001 - report, then let the engine replace this worker
            return _failure("internal", _redacted(exc, redact), recycle=True), None
        finally:
            self._watchdog.disarm()
            if con is not database.con:
                con.close()

    def _relations(self, specs: list[dict[str, Any]], tables: list[Any]) -> dict[str, Any]:
        source = self._attach.RelationSource
        relations: dict[str, Any] = {}
        arrow = iter(tables)
        for spec in specs:
            if spec["kind"] == "arrow":
                relations[spec["name"]] = source(table=next(arrow))
            else:
                relations[spec["name"]] = source(files=tuple(Path(f) for f in spec["files"]))
        return relations


def _close(database: _Database) -> None:
    database.con.close()
    shutil.rmtree(database.directory, ignore_errors=True)


class _Watchdog:
    """One thread, started with the worker, that stops the running query at its wall-clock limit.

    Not a timer thread per query: under RLIMIT_AS, with DuckDB's threads and arenas mapped, starting a
    thread can fail ("can't start new thread") and would fail the query; this one exists before any of them.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._job: tuple[float, Any, threading.Event] | None = None
        threading.Thread(target=self._loop, name="watchdog", daemon=True).start()

    def arm(self, timeout_s: float, con: Any, timed_out: threading.Event) -> None:
        with self._cv:
            self._job = (time.monotonic() + timeout_s, con, timed_out)
            self._cv.notify()

    def disarm(self) -> None:
        with self._cv:
            self._job = None
            self._cv.notify()

    def _loop(self) -> None:
        while True:
            with self._cv:
                job = self._job
                if job is None:
                    self._cv.wait()
                    continue
                remaining = job[0] - time.monotonic()
                if remaining > 0:
                    self._cv.wait(remaining)
                    continue
                self._job = None
            _interrupt(job[1], job[2])


def _interrupt(con: Any, timed_out: threading.Event) -> None:
    """The watchdog: stop the running query at the wall-clock limit."""
    timed_out.set()
    try:
        con.interrupt()
    except Exception:  # noqa: BLE001 - the query finished and the connection closed meanwhile
        return


def _lock(con: Any, limits: dict[str, Any], files: list[str]) -> None:
    """Per-query limits, exactly the attached files readable, then external access off and configuration locked."""
    con.execute("SET memory_limit = ?", [f"{limits['memory_mb']}MB"])
    con.execute("SET threads = ?", [limits["threads"]])
    con.execute("SET max_temp_directory_size = ?", [f"{limits['max_temp_mb']}MB"])
    if files:
        con.execute("SET allowed_paths = ?", [files])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _statement_refusal(duckdb: Any, con: Any, sql: str) -> str | None:
    """DuckDB's own parser must see exactly one SELECT (a second line behind the gate)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        return f"the SQL does not parse: {exc}"
    if len(statements) != 1:
        return f"exactly one statement is allowed; got {len(statements)}"
    if statements[0].type != duckdb.StatementType.SELECT:
        return f"only SELECT statements run here; got {statements[0].type.name}"
    return None


def _cpu_budget(limits: dict[str, Any]) -> None:
    """A CPU-time ceiling for this query: past it the kernel sends SIGXCPU and the worker ends."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    budget = limits["timeout_s"] * limits["threads"] + 5
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(used + budget)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _fetch(con: Any, sql: str, limits: dict[str, Any]) -> tuple[Any, bool]:
    import pyarrow as pa

    from trace_core.query import integers

    max_rows, max_bytes = limits["max_rows"], limits["max_result_bytes"]
    relation = con.sql(sql)
    if relation is None:  # a statement without a result (only reachable with the statement check off)
        return pa.table({}), False
    reader = relation.to_arrow_reader(max(1, min(max_rows + 1, 65_536)))
    batches, rows, size = [], 0, 0
    for batch in reader:
        batches.append(batch)
        rows += batch.num_rows
        size += batch.nbytes
        if rows > max_rows or size > max_bytes:
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    truncated = table.num_rows > max_rows
    # DuckDB's Arrow export wraps UHUGEINT past 2**127 and overflows decimal128 with HUGEINT: fix it here,
    # where DuckDB's own column types are known (and before the byte cap, since widening grows the values).
    table = integers.exact_table(table.slice(0, max_rows), relation.types)
    if table.nbytes > max_bytes:
        truncated = True
        low, high = 0, table.num_rows  # the longest prefix within the byte cap
        while low < high:
            mid = (low + high + 1) // 2
            if table.slice(0, mid).nbytes <= max_bytes:
                low = mid
            else:
                high = mid - 1
        table = table.slice(0, low)
    return table, truncated


def _failure(kind: str, message: str, *, recycle: bool = False, error_type: str | None = None) -> dict[str, Any]:
    return {"ok": False, "error": kind, "message": message, "recycle": recycle, "error_type": error_type}


def _redacted(exc: BaseException, replacements: dict[str, str]) -> str:
    """The error text without attached file paths or the scratch location (longest first)."""
    text = str(exc)
    for old in sorted(replacements, key=len, reverse=True):
        text = text.replace(old, replacements[old])
    return text


if __name__ == "__main__":
    sys.exit(main())
