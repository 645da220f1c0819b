"""Dispatcher throughput: Trace (pgqueue and SQS) against PgQueuer 1.6 and procrastinate 3.10 on one Postgres.

What is measured, the same way for every system: its workers (1, 2, 4 OS
processes, default settings) are started and idle; then the producer enqueues
N no-op jobs in batches of 1,000 and the clock runs until the last one is
done. tasks/s = N / (last completion - first enqueue). For Trace a job is the
whole path: create (task + outbox row) -> outbox drainer (the Lite host
process, woken by NOTIFY) -> QueueDriver publish -> worker receive -> claim
(lease) -> run `noop` -> complete (fenced) -> ack. Each system gets a fresh
database on the same server. Also: Trace's wake-up latency (create -> claim)
at low load, one task every 50 ms.

Run: .venv/bin/python -m bench.dispatcher_throughput [--tasks 10000] [--sqs-tasks 2000]
(needs `pip install -e '.[bench]'`). Results: printed, and as JSON with --out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
from psycopg import sql
from trace_core.db import migrate
from trace_core.dispatcher import models, tasks
from trace_core.lite import moto, postgres, procs

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1000


# ---------------------------------------------------------------- plumbing
class Server:
    """One Postgres server for every system; a fresh database per run."""

    def __init__(self, admin_url: str, postmaster: int | None = None) -> None:
        self.admin_url = admin_url
        self.postmaster = postmaster  # known for the embedded server: its CPU time is measured

    def cpu_seconds(self) -> float:
        """CPU used by the server so far: the postmaster, its exited children, and its live backends."""
        if self.postmaster is None:
            return float("nan")
        total = _cpu(self.postmaster, children=True)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _ppid(int(entry.name)) == self.postmaster:
                total += _cpu(int(entry.name))
        return total

    def database(self, prefix: str) -> str:
        name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        info = psycopg.conninfo.conninfo_to_dict(self.admin_url)
        info["dbname"] = name
        return psycopg.conninfo.make_conninfo(**info)

    def drop(self, url: str) -> None:
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rindex(")") + 2:].split()  # fields after "pid (comm)"


def _ppid(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def _cpu(pid: int, children: bool = False) -> float:
    """utime + stime (all threads) of ``pid``, plus its waited-for children's if asked, in seconds."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / _TICK


@contextlib.contextmanager
def embedded_server(workdir: Path) -> Iterator[Server]:
    data = workdir / "pg"
    port = procs.free_port()
    postmaster = postgres.start(data, port)  # Lite's defaults (fsync on), not the test suite's fast mode
    try:
        yield Server(postgres.url(port), postmaster)
    finally:
        postgres.destroy(data)


class CpuMeter:
    """CPU seconds the server, the system's own processes and any ``others`` used between start() and stop().

    ``roles`` names a role for some of the own processes (``host``, ``workers``) to report apart;
    ``others`` are measured but not the system's own (moto server beside Trace on SQS).
    """

    def __init__(self, server: Server, pids: list[int], *, roles: dict[str, list[int]] | None = None,
                 others: dict[str, int] | None = None) -> None:
        self.server, self.pids = server, pids
        self.roles, self.others = roles or {}, others or {}

    def start(self) -> None:
        self._pg = self.server.cpu_seconds()
        self._each = {p: _cpu(p) for p in [*self.pids, *self.others.values()]}

    def stop(self, n: int) -> dict[str, Any]:
        pg = self.server.cpu_seconds() - self._pg
        used = {p: _cpu(p) - before for p, before in self._each.items()}
        per_1k = 1e6 / n
        out: dict[str, Any] = {"cpu_ms_per_1k_postgres": pg * per_1k,
                               "cpu_ms_per_1k_processes": sum(used[p] for p in self.pids) * per_1k,
                               "cpu_ms_per_1k_by_pid": {str(p): round(used[p] * per_1k) for p in self.pids}}
        for role, pids in self.roles.items():
            out[f"cpu_ms_per_1k_{role}"] = sum(used[p] for p in pids) * per_1k
        for name, pid in self.others.items():
            out[f"cpu_ms_per_1k_{name}"] = used[pid] * per_1k
        return out


@contextlib.contextmanager
def children(logs: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Factory for child processes, each in its own session; all stopped on exit."""
    started: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        # One log per process: a later round's readiness wait must not find an earlier round's "ready".
        log = logs / f"{name}.{len(started)}.log"
        proc = procs.spawn(cmd, log, env={"PYTHONPATH": str(ROOT), **(env or {})})
        proc.log = log  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    try:
        yield spawn
    finally:
        for proc in started:
            procs.stop(proc.pid, timeout=20)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def wait_ready(proc: subprocess.Popen[bytes], marker: str, timeout: float = 90) -> None:
    log: Path = proc.log  # type: ignore[attr-defined]
    procs.wait_until(log.stem, lambda: marker in log.read_text(errors="replace"), proc=proc, log=log,
                     timeout=timeout)


def until_done(url: str, count_sql: str, n: int, timeout: float) -> float:
    """Poll ``count_sql`` every 20 ms until it reaches ``n``; returns the monotonic time it did."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute(count_sql).fetchone()[0] >= n:  # type: ignore[index]
                return time.monotonic()
            time.sleep(0.02)
    raise TimeoutError(f"not done within {timeout:.0f}s ({count_sql})")


# ---------------------------------------------------------------- Trace
def trace_env(url: str, queue: str, driver: str, moto_url: str | None, home: Path) -> dict[str, str]:
    env = {"TRACE_DATABASE_URL": url, "TRACE_TASK_QUEUE": queue, "TRACE_QUEUE_DRIVER": driver,
           "TRACE_HOME": str(home)}
    if moto_url:
        env |= {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1"}
    return env


def make_sqs_queue(moto_url: str, name: str) -> None:
    client = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
    dlq = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})})


def create_tasks(url: str, queue: str, n: int, batch: int = BATCH) -> None:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        for start in range(0, n, batch):
            tasks.create_many(conn, [models.CreateTask(operator="noop", queue=queue)
                                     for _ in range(min(batch, n - start))])


def run_trace(server: Server, spawn: Callable[..., Any], *, driver: str, workers: int, n: int,
              moto_url: str | None, workdir: Path, moto_pid: int | None = None) -> dict[str, Any]:
    url = server.database(f"trace_{driver}")
    migrate.apply(url)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    if driver == "sqs":
        assert moto_url
        make_sqs_queue(moto_url, queue)
    env = trace_env(url, queue, driver, moto_url, workdir / "home")
    cli = [sys.executable, "-m", "trace_core.cli"]
    host = spawn(f"trace-{driver}-{workers}-host", [*cli, "host", "--workers", "0", "--port", "0"], env)
    pool = [spawn(f"trace-{driver}-{workers}-worker{i}", [*cli, "worker", "--queue", queue], env)
            for i in range(workers)]
    wait_ready(host, "host ready")
    for proc in pool:
        wait_ready(proc, " ready: ")
    workers_pids = [p.pid for p in pool]
    meter = CpuMeter(server, [host.pid, *workers_pids], roles={"host": [host.pid], "workers": workers_pids},
                     others={"moto": moto_pid} if moto_pid else None)
    meter.start()
    started = time.monotonic()
    create_tasks(url, queue, n)
    created = time.monotonic()
    done = until_done(url, "SELECT count(*) FROM state.tasks WHERE status = 'completed'", n, timeout=600)
    cpu = meter.stop(n)
    with psycopg.connect(url) as conn:
        attempts = conn.execute("SELECT count(*), count(*) FILTER (WHERE outcome = 'succeeded') "
                                "FROM state.task_attempts").fetchone()
    for proc in [host, *pool]:
        procs.stop(proc.pid, timeout=20)
    server.drop(url)
    return {"system": f"trace-{driver}", "workers": workers, "tasks": n, "seconds": done - started,
            "tasks_per_s": n / (done - started), "enqueue_s": created - started,
            "attempts": attempts[0], "succeeded": attempts[1], **cpu}  # type: ignore[index]


def trace_latency(server: Server, spawn: Callable[..., Any], *, n: int, workdir: Path,
                  moto_url: str | None) -> dict[str, Any]:
    """Create one task every 50 ms with one idle worker; create -> claim from the database's clock."""
    url = server.database("trace_latency")
    migrate.apply(url)
    queue = f"lat-{uuid.uuid4().hex[:8]}"
    env = trace_env(url, queue, "pgqueue", moto_url, workdir / "home")
    cli = [sys.executable, "-m", "trace_core.cli"]
    host = spawn("trace-latency-host", [*cli, "host", "--workers", "0", "--port", "0"], env)
    worker = spawn("trace-latency-worker", [*cli, "worker", "--queue", queue], env)
    wait_ready(host, "host ready")
    wait_ready(worker, " ready: ")
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        for _ in range(n):
            tasks.create(conn, models.CreateTask(operator="noop", queue=queue))
            time.sleep(0.05)
    until_done(url, "SELECT count(*) FROM state.tasks WHERE status = 'completed'", n, timeout=60)
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT extract(epoch FROM a.claimed_at - t.created_at) * 1000 "
                            "FROM state.tasks t JOIN state.task_attempts a USING (task_id)").fetchall()
    for proc in (host, worker):
        procs.stop(proc.pid, timeout=20)
    server.drop(url)
    ms = sorted(float(r[0]) for r in rows)
    return {"system": "trace-pgqueue", "samples": len(ms), "p50_ms": statistics.median(ms),
            "p99_ms": ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))], "max_ms": ms[-1]}


# ---------------------------------------------------------------- PgQueuer 1.6
async def _pgqueuer_child(dsn: str) -> None:
    from pgqueuer import PsycopgDriver, Queries, QueueManager

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    qm = QueueManager(Queries(PsycopgDriver(conn)))

    @qm.entrypoint("noop")
    async def noop(job: Any) -> None:
        return None

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, qm.shutdown.set)
    print("child ready", flush=True)
    await qm.run()  # default settings (batch_size=10)


async def _pgqueuer_setup(dsn: str) -> None:
    from pgqueuer import PsycopgDriver, Queries

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await Queries(PsycopgDriver(conn)).install()


async def _pgqueuer_enqueue(dsn: str, n: int) -> None:
    from pgqueuer import PsycopgDriver, Queries

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        queries = Queries(PsycopgDriver(conn))
        for start in range(0, n, BATCH):
            size = min(BATCH, n - start)
            await queries.enqueue(["noop"] * size, [None] * size, [0] * size)


def run_pgqueuer(server: Server, spawn: Callable[..., Any], *, workers: int, n: int) -> dict[str, Any]:
    # PgQueuer deletes a job when it finishes (and logs it): done = the queue table is empty again.
    return _run_peer(server, spawn, "pgqueuer", "pgqueuer-1.6", setup=_pgqueuer_setup, enqueue=_pgqueuer_enqueue,
                     done_sql=f"SELECT {n} - count(*) FROM pgqueuer", workers=workers, n=n, timeout=600)


def _run_peer(server: Server, spawn: Callable[..., Any], peer: str, system: str, *, setup: Callable[[str], Any],
              enqueue: Callable[[str, int], Any], done_sql: str, workers: int, n: int,
              timeout: float) -> dict[str, Any]:
    """One peer's round: its idle worker processes, the enqueue, the clock until ``done_sql`` counts ``n``."""
    url = server.database(peer)
    asyncio.run(setup(url))
    pool = [spawn(f"{peer}-{workers}-worker{i}", [sys.executable, "-m", "bench.dispatcher_throughput",
                                                  "child", peer, url]) for i in range(workers)]
    for proc in pool:
        wait_ready(proc, "child ready")
    time.sleep(0.5)  # let each worker reach its first dequeue
    meter = CpuMeter(server, [p.pid for p in pool])
    meter.start()
    started = time.monotonic()
    asyncio.run(enqueue(url, n))
    created = time.monotonic()
    done = until_done(url, done_sql, n, timeout=timeout)
    cpu = meter.stop(n)
    for proc in pool:
        procs.stop(proc.pid, timeout=20)
    server.drop(url)
    return {"system": system, "workers": workers, "tasks": n, "seconds": done - started,
            "tasks_per_s": n / (done - started), "enqueue_s": created - started, **cpu}


# ---------------------------------------------------------------- procrastinate 3.10
def _procrastinate_app(dsn: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    return app, noop


async def _procrastinate_child(dsn: str) -> None:
    app, _ = _procrastinate_app(dsn)
    async with app.open_async():
        print("child ready", flush=True)
        await app.run_worker_async()  # default settings (concurrency=1); stops on SIGTERM


async def _procrastinate_setup(dsn: str) -> None:
    app, _ = _procrastinate_app(dsn)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def _procrastinate_enqueue(dsn: str, n: int) -> None:
    app, noop = _procrastinate_app(dsn)
    async with app.open_async():
        for start in range(0, n, BATCH):
            await noop.batch_defer_async(*[{} for _ in range(min(BATCH, n - start))])


def run_procrastinate(server: Server, spawn: Callable[..., Any], *, workers: int, n: int) -> dict[str, Any]:
    return _run_peer(server, spawn, "procrastinate", "procrastinate-3.10", setup=_procrastinate_setup,
                     enqueue=_procrastinate_enqueue,
                     done_sql="SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'",
                     workers=workers, n=n, timeout=900)


# ---------------------------------------------------------------- report
def report(results: list[dict[str, Any]], latency: dict[str, Any] | None) -> str:
    lines = ["| system | tasks | 1 worker | 2 workers | 4 workers |", "|---|---|---|---|---|"]
    systems = list(dict.fromkeys(r["system"] for r in results))
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for r in results:  # best round of each (system, workers): the machine is shared and noisy
        key = (r["system"], r["workers"])
        if key not in table or r["tasks_per_s"] > table[key]["tasks_per_s"]:
            table[key] = r
    for system in systems:
        cells = [f"{table[(system, w)]['tasks_per_s']:,.0f}/s" if (system, w) in table else "-" for w in (1, 2, 4)]
        n = next(r["tasks"] for r in results if r["system"] == system)
        lines.append(f"| {system} | {n:,} | " + " | ".join(cells) + " |")
    lines += ["", "| workers | trace-pgqueue / faster peer | trace-sqs / faster peer |", "|---|---|---|"]
    for w in (1, 2, 4):
        peers = [table[(p, w)]["tasks_per_s"] for p in ("pgqueuer-1.6", "procrastinate-3.10") if (p, w) in table]
        if not peers:
            continue
        best = max(peers)
        ratio = [f"{table[(s, w)]['tasks_per_s'] / best:.2f}x" if (s, w) in table else "-"
                 for s in ("trace-pgqueue", "trace-sqs")]
        lines.append(f"| {w} | {ratio[0]} | {ratio[1]} |")
    lines += ["", ("| system | workers | CPU ms per 1k tasks: Postgres | its own processes "
                   "| of which host (drainer) / workers | moto server |"), "|---|---|---|---|---|---|"]
    for (system, w), r in table.items():
        split = (f"{r['cpu_ms_per_1k_host']:.0f} / {r['cpu_ms_per_1k_workers']:.0f}"
                 if "cpu_ms_per_1k_host" in r else "-")
        moto_ms = f"{r['cpu_ms_per_1k_moto']:.0f}" if "cpu_ms_per_1k_moto" in r else "-"
        lines.append(f"| {system} | {w} | {r.get('cpu_ms_per_1k_postgres', float('nan')):.0f} | "
                     f"{r.get('cpu_ms_per_1k_processes', float('nan')):.0f} | {split} | {moto_ms} |")
    own = {w: table[(s, w)]["cpu_ms_per_1k_processes"] for s in ("trace-pgqueue",) for w in (1, 2, 4)
           if (s, w) in table}
    ratios = [f"{w} worker(s) {table[('trace-sqs', w)]['cpu_ms_per_1k_processes'] / own[w]:.2f}x"
              for w in (1, 2, 4) if ("trace-sqs", w) in table and own.get(w)]
    if ratios:
        lines += ["", "Trace's own CPU per task, SQS / pgqueue (moto server not counted): " + ", ".join(ratios)]
    if latency:
        lines += ["", (f"Trace wake-up latency (create -> claim, pgqueue, one task every 50 ms, "
                       f"{latency['samples']} samples): p50 {latency['p50_ms']:.1f} ms, "
                       f"p99 {latency['p99_ms']:.1f} ms, max {latency['max_ms']:.1f} ms")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("child", help="(internal) a peer's worker process")
    child.add_argument("system", choices=("pgqueuer", "procrastinate"))
    child.add_argument("dsn")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--sqs-tasks", type=int, default=600, help="moto server is slow; fewer tasks for SQS")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--systems", default="trace-pgqueue,pgqueuer,procrastinate,trace-sqs")
    parser.add_argument("--latency-tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="runs per system and worker count; the best counts")
    parser.add_argument("--database-url", help="an admin URL of an existing server (default: embedded)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.command == "child":
        target = _pgqueuer_child if args.system == "pgqueuer" else _procrastinate_child
        asyncio.run(target(args.dsn))
        return

    worker_counts = [int(w) for w in args.workers.split(",")]
    systems = args.systems.split(",")
    results: list[dict[str, Any]] = []
    latency = None
    with tempfile.TemporaryDirectory(prefix="trace-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "logs").mkdir()
        server_cm = (contextlib.nullcontext(Server(args.database_url)) if args.database_url
                     else embedded_server(workdir))
        with server_cm as server, children(workdir / "logs") as spawn:
            moto_proc = None
            moto_url = None
            if any(s.startswith("trace-") for s in systems):
                # Lite refuses to start without a local AWS endpoint (never falls back to AWS): on pgqueue
                # too, though nothing there calls it. Only the SQS rounds measure its CPU.
                port = procs.free_port()
                moto_proc = moto.start(port, workdir / "logs" / "moto.log")
                moto_url = moto.url(port)
            try:
                # Rounds interleave the systems, so a burst of load on the shared machine hits all of them.
                plan = [(w, s) for w in worker_counts for _ in range(args.rounds) for s in systems]
                for workers, system in plan:
                    t0 = time.monotonic()
                    if system == "trace-pgqueue":
                        r = run_trace(server, spawn, driver="pgqueue", workers=workers, n=args.tasks,
                                      moto_url=moto_url, workdir=workdir)
                    elif system == "trace-sqs":
                        r = run_trace(server, spawn, driver="sqs", workers=workers, n=args.sqs_tasks,
                                      moto_url=moto_url, workdir=workdir,
                                      moto_pid=moto_proc.pid if moto_proc else None)
                    elif system == "pgqueuer":
                        r = run_pgqueuer(server, spawn, workers=workers, n=args.tasks)
                    else:
                        r = run_procrastinate(server, spawn, workers=workers, n=args.tasks)
                    r["wall_s"] = time.monotonic() - t0
                    results.append(r)
                    print(json.dumps(r), flush=True)
                if "trace-pgqueue" in systems and args.latency_tasks:
                    latency = trace_latency(server, spawn, n=args.latency_tasks, workdir=workdir, moto_url=moto_url)
                    print(json.dumps(latency), flush=True)
            finally:
                if moto_proc is not None:
                    procs.stop(moto_proc.pid)
    text = report(results, latency)
    print(text)
    if args.out:
        args.out.write_text(json.dumps({"results": results, "latency": latency, "table": text,
                                        "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
