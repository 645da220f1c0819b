"""Dispatcher throughput: Trace (pgqueue) against PgQueuer 1.6 and procrastinate 3.10 at their defaults.

    .venv/bin/python -m bench.dispatcher_throughput [--tasks 60000] [--workers 1,2,4] [--rounds 5]
        [--systems trace,pgqueuer,pgqueuer-b100,procrastinate] [--procrastinate-tasks 5000]
        [--sqs-tasks 2000] [--latency-tasks 200] [--max-outside 0.10] [--out results.json]

The method is ``bench.method``'s: paired rounds, disturbed rounds excluded, answers checked by content.
One embedded Postgres (Lite's settings: fsync on) serves every system, a fresh database per round. A
round of a system: its W worker processes (W = 1, 2, 4) are started and idle, Postgres is checkpointed,
then the producer (this process) enqueues N no-op jobs in batches of 1,000 and the clock runs from the
first enqueue until none is left to run (startup is not timed). Per round index and worker count the
systems run back to back in the order of ``--systems``, reversed on odd rounds (Trace stays next to
PgQueuer both ways). Systems, each as its users run it:

- ``trace``: the whole Lite path with default settings: ``tasks.create_many`` (task + outbox row) ->
  the outbox drainer in ``trace-lite host --workers 0`` (woken by NOTIFY) -> the pgqueue driver (a signal
  queue: NOTIFY only, decision 2302) -> ``trace-lite worker`` processes: claim what is due, run ``noop``,
  complete. The subject of every ratio.
- ``pgqueuer``: ``QueueManager.run()`` at its defaults (batch_size 10), psycopg driver,
  ``Queries.enqueue`` in batches. The headline reference.
- ``pgqueuer-b100``: the same with ``batch_size=100`` (the stretch figure; the nearest PgQueuer gets to
  Trace's own claim batches of up to 32 operators + 96 prefetched leases per worker).
- ``procrastinate``: ``run_worker_async()`` at its defaults (concurrency 1), ``batch_defer_async``. It
  runs about 15x slower, so it gets ``--procrastinate-tasks`` (its round lasts as long as the others');
  its pair ratio is of rates (tasks/s), against the same round's Trace run.
- ``trace-sqs`` (not run by default): Trace on the SQS driver against Lite's moto server, with
  ``--sqs-tasks``; reported as tasks/s and CPU per 1,000 jobs (Trace's own processes apart from moto's),
  in no ratio.

Every round records the CPU of what it started (Postgres, the system's processes, moto, this process)
and of the whole machine; a round with more than ``--max-outside`` of the machine used elsewhere is
excluded with its pair. The figure per worker count and reference is the median of the pair ratios
(reference seconds / Trace seconds: above 1, Trace is faster) with min, max and the number of pairs.
Each job carries its index; a round counts only if every job ran exactly once (the multiset of what
started and of what finished is compared with what was enqueued, by key hash, not by count).
Then each system's wake-up latency at low load, the same way for all: one idle worker, one job every
50 ms, create -> start from the database's clock (Trace: ``claimed_at - created_at``; PgQueuer: its
log's ``picked`` - ``queued``; procrastinate: its events' ``started`` - ``deferred``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import method

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1000
SUBJECT = "trace"
# System -> what it is, as the report names it.
SYSTEMS = {
    "trace": "Trace (pgqueue), its defaults",
    "pgqueuer": "PgQueuer 1.6, its defaults (batch_size 10)",
    "pgqueuer-b100": "PgQueuer 1.6, batch_size 100 (stretch)",
    "procrastinate": "procrastinate 3.10, its defaults (concurrency 1)",
    "trace-sqs": "Trace (SQS driver, Lite's moto server)",
}
PEER_BATCH = {"pgqueuer": None, "pgqueuer-b100": 100}  # None: PgQueuer's default


# ---------------------------------------------------------------- pure helpers
def parse_systems(text: str) -> list[str]:
    """``--systems``: known names, no repeats, and ``trace`` among them (every ratio is against it)."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; choose from {sorted(SYSTEMS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a system is named twice in {names}")
    if SUBJECT not in names:
        raise ValueError(f"{SUBJECT!r} must be among the systems: every ratio is against it")
    return names


def parse_workers(text: str) -> list[int]:
    try:
        counts = [int(w) for w in text.split(",")]
    except ValueError:
        raise ValueError(f"worker counts are integers separated by commas, got {text!r}") from None
    if not counts or any(w < 1 for w in counts):
        raise ValueError(f"worker counts must be at least 1, got {text!r}")
    return counts


def side(system: str, workers: int) -> str:
    return f"{system}:w{workers}"


def plan(rounds: int, worker_counts: Sequence[int], systems: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(round index, workers, system)`` in the order they run: per round and worker count, ``systems`` as
    given on even rounds and reversed on odd ones (``method.order``)."""
    return [(index, w, system) for index in range(rounds) for w in worker_counts
            for system in method.order(index, systems)]


def exactly_once(expected: Iterable[Any], started: Iterable[Any], finished: Iterable[Any]) -> list[str]:
    """What is wrong with a round's runs: each expected job must have started once and finished once.

    Compared as multisets by ``method.digest`` (count and key hash), then the differences named.
    """
    want = Counter(expected)
    problems = []
    for what, got in (("started", Counter(started)), ("finished", Counter(finished))):
        if method.digest(sum(got.values()), {}, got.elements()) == method.digest(sum(want.values()), {},
                                                                                   want.elements()):
            continue
        never = sorted((k for k in want if got[k] < want[k]), key=repr)
        twice = sorted((k for k in want if got[k] > want[k]), key=repr)
        stray = sorted((k for k in got if k not in want), key=repr)
        for label, keys in ((f"never {what}", never), (f"{what} more than once", twice),
                            (f"{what} but not enqueued", stray)):
            if keys:
                problems.append(f"{len(keys)} {label} (e.g. {keys[:3]})")
    return problems


def rate_scaled(r: method.Round, tasks: int) -> method.Round:
    """``r`` as if it had run ``tasks`` jobs at its measured rate (its seconds scaled; window and CPU kept,
    so the outside-load rule reads it as it ran): pairs rounds of different sizes by tasks/s."""
    if r.extra["tasks"] == tasks:
        return r
    return dataclasses.replace(r, seconds=r.seconds * tasks / r.extra["tasks"], window_s=r.window)


def comparisons(rounds: Sequence[method.Round], worker_counts: Sequence[int], references: Sequence[str],
                rule: method.Rule) -> list[dict[str, Any]]:
    """Per worker count and reference: every pair (ratio; why excluded), the summary, each side's tasks/s.

    Pairs of different sizes (procrastinate, SQS) compare rates: the reference round scaled to Trace's size.
    """
    out = []
    for w in worker_counts:
        subject = [r for r in rounds if r.side == side(SUBJECT, w)]
        by_index = {r.index: r for r in subject}
        for ref in references:
            theirs = [rate_scaled(r, by_index[r.index].extra["tasks"]) if r.index in by_index else r
                      for r in rounds if r.side == side(ref, w)]
            if not theirs:
                continue
            pairs = method.pair_rounds([*theirs, *subject], side(ref, w), side(SUBJECT, w))
            s = method.summary(pairs, rule)
            out.append({"workers": w, "reference": ref, "summary": s.as_dict(), "text": str(s),
                        "pairs": [{"round": p.subject.index, "ratio": round(p.ratio, 3),
                                   "reference_per_s": round(p.reference.extra["tasks_per_s"]),
                                   "trace_per_s": round(p.subject.extra["tasks_per_s"]),
                                   "excluded": p.excluded(rule)} for p in pairs]})
    return out


def percentiles(ms: Sequence[float]) -> dict[str, Any]:
    """p50, p99 and max of latency samples (nearest rank)."""
    if not ms:
        raise ValueError("no latency samples")
    ordered = sorted(ms)
    return {"samples": len(ordered), "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))], 2),
            "max_ms": round(ordered[-1], 2)}


def cpu_per_1k(r: method.Round) -> dict[str, int]:
    """CPU ms per 1,000 jobs of each measured group of a round."""
    return {group: round(seconds * 1e6 / r.extra["tasks"]) for group, seconds in r.cpu.items()}


# ---------------------------------------------------------------- plumbing
class Server:
    """One embedded Postgres (Lite's settings) for every system; a fresh database per round."""

    def __init__(self, workdir: Path) -> None:
        from trace_core.lite import postgres, procs

        self._data = workdir / "pg"
        self.port = procs.free_port()
        self.postmaster = postgres.start(self._data, self.port)  # fsync on, not the test suite's fast mode
        self.admin_url = postgres.url(self.port)

    def close(self) -> None:
        from trace_core.lite import postgres

        postgres.destroy(self._data)

    def database(self, prefix: str) -> str:
        from trace_core.lite import postgres

        name = f"bench_{prefix.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return postgres.url(self.port, name)

    def drop(self, url: str) -> None:
        name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def checkpoint(self) -> None:
        """Flush the previous round's writes now, not during this round's clock."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")


@contextlib.contextmanager
def children(logs: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Factory for child processes, each in its own session and log; all stopped on exit."""
    from trace_core.lite import procs

    started: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = logs / f"{name}.{len(started)}.log"  # a later round must not find an earlier round's "ready"
        proc = procs.spawn(cmd, log, env={"PYTHONPATH": str(ROOT), **(env or {})})
        proc.log = log  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    try:
        yield spawn
    finally:
        for proc in started:
            if proc.poll() is None:
                procs.stop(proc.pid, timeout=20)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def stop_all(pool: Sequence[subprocess.Popen[bytes]]) -> None:
    from trace_core.lite import procs

    for proc in pool:
        procs.stop(proc.pid, timeout=20)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def wait_ready(proc: subprocess.Popen[bytes], marker: str, timeout: float = 90) -> None:
    from trace_core.lite import procs

    log: Path = proc.log  # type: ignore[attr-defined]
    procs.wait_until(log.stem, lambda: marker in log.read_text(errors="replace"), proc=proc, log=log,
                     timeout=timeout)


def until_none_left(url: str, left_sql: str, timeout: float, pool: Sequence[subprocess.Popen[bytes]]) -> float:
    """Poll ``left_sql`` (true while a job is left to run; an index-only EXISTS, cheap beside a count) every
    20 ms until it is false; returns the monotonic time it was."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if not conn.execute(left_sql).fetchone()[0]:  # type: ignore[index]
                return time.monotonic()
            if any(p.poll() is not None for p in pool):
                raise RuntimeError(f"a worker exited during the round: see {[p.log for p in pool]}")  # type: ignore[attr-defined]
            time.sleep(0.02)
    raise TimeoutError(f"jobs still left after {timeout:.0f}s ({left_sql})")


@dataclasses.dataclass
class Ctx:
    server: Server
    spawn: Callable[..., subprocess.Popen[bytes]]
    workdir: Path
    moto_url: str
    moto_pid: int
    timeout: float


def measured_round(ctx: Ctx, system: str, index: int, workers: int, n: int, groups: dict[str, list[int]],
                   enqueue: Callable[[], list[Any]], left_sql: str, url: str,
                   pool: Sequence[subprocess.Popen[bytes]], began: float) -> tuple[method.Round, list[Any]]:
    """The timed part shared by every system: checkpoint, meter, enqueue, wait until none is left."""
    ctx.server.checkpoint()
    all_groups = {"postgres": [ctx.server.postmaster], "moto": [ctx.moto_pid], "bench": [os.getpid()], **groups}
    meter = method.Meter(all_groups, shallow=("bench",)).start()
    started = time.monotonic()
    expected = enqueue()
    enqueued = time.monotonic()
    done = until_none_left(url, left_sql, ctx.timeout, pool)
    window, cpu, machine = meter.stop()
    seconds = done - started
    extra = {"system": system, "workers": workers, "tasks": n, "tasks_per_s": round(n / seconds, 1),
             "enqueue_s": round(enqueued - started, 3), "startup_s": round(started - began, 2)}
    return method.Round(side(system, workers), index, seconds, cpu=cpu, machine_cpu=machine,
                        cores=os.cpu_count() or 1, window_s=window, extra=extra), expected


def checked(r: method.Round, problems: list[str]) -> method.Round:
    if problems:
        raise RuntimeError(f"{r.side} round {r.index}: not every job ran exactly once: " + "; ".join(problems))
    return dataclasses.replace(r, extra={**r.extra, "checked": "every job started and finished exactly once"})


# ---------------------------------------------------------------- Trace
def trace_env(url: str, queue: str, driver: str, moto_url: str, home: Path) -> dict[str, str]:
    # Lite refuses to start without a local AWS endpoint (never falls back to AWS), on pgqueue too.
    return {"TRACE_DATABASE_URL": url, "TRACE_TASK_QUEUE": queue, "TRACE_QUEUE_DRIVER": driver,
            "TRACE_HOME": str(home), "AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def make_sqs_queue(moto_url: str, name: str) -> None:
    import boto3

    client = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
    dlq = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})})


def create_tasks(url: str, queue: str, n: int, batch: int = BATCH) -> list[int]:
    from trace_core.dispatcher import models, tasks

    with psycopg.connect(url, autocommit=True) as conn:
        for start in range(0, n, batch):
            tasks.create_many(conn, [models.CreateTask(operator="noop", queue=queue, payload={"i": i})
                                     for i in range(start, min(n, start + batch))])
    return list(range(n))


# Scalar subqueries in the partial indexes' order (an EXISTS drops ORDER BY and LIMIT, and its plan, a
# sequential scan, reads the whole table once few tasks are left: the poll then costs more than the work).
TRACE_LEFT = ("SELECT (SELECT 1 FROM state.tasks WHERE status = 'queued' ORDER BY not_before, task_id LIMIT 1) "
              "IS NOT NULL OR (SELECT 1 FROM state.tasks WHERE status = 'running' ORDER BY lease_expires_at "
              "LIMIT 1) IS NOT NULL")
TRACE_RUNS = ("SELECT (t.payload->>'i')::int, a.outcome = 'succeeded' AND t.status = 'completed' "
              "FROM state.task_attempts a JOIN state.tasks t USING (task_id)")  # one row per attempt


@contextlib.contextmanager
def trace_platform(ctx: Ctx, driver: str, workers: int, label: str) -> Iterator[dict[str, Any]]:
    from trace_core.db import migrate

    url = ctx.server.database(label)
    migrate.apply(url)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    if driver == "sqs":
        make_sqs_queue(ctx.moto_url, queue)
    env = trace_env(url, queue, driver, ctx.moto_url, ctx.workdir / "home")
    cli = [sys.executable, "-m", "trace_core.cli"]
    host = ctx.spawn(f"{label}-host", [*cli, "host", "--workers", "0", "--port", "0"], env)
    pool = [ctx.spawn(f"{label}-worker{i}", [*cli, "worker", "--queue", queue], env) for i in range(workers)]
    try:
        wait_ready(host, "host ready")
        for proc in pool:
            wait_ready(proc, " ready: ")
        yield {"url": url, "queue": queue, "host": host, "pool": pool}
    finally:
        stop_all([host, *pool])
        ctx.server.drop(url)


def run_trace(ctx: Ctx, index: int, *, driver: str, workers: int, n: int) -> method.Round:
    system = "trace" if driver == "pgqueue" else "trace-sqs"
    began = time.monotonic()
    with trace_platform(ctx, driver, workers, f"{system}-w{workers}") as p:
        groups = {"host": [p["host"].pid], "workers": [w.pid for w in p["pool"]]}
        r, expected = measured_round(ctx, system, index, workers, n, groups,
                                     lambda: create_tasks(p["url"], p["queue"], n), TRACE_LEFT, p["url"],
                                     [p["host"], *p["pool"]], began)
        with psycopg.connect(p["url"]) as conn:
            runs = conn.execute(TRACE_RUNS).fetchall()
    return checked(r, exactly_once(expected, [i for i, _ in runs], [i for i, ok in runs if ok]))


def trace_latency(ctx: Ctx, n: int) -> list[float]:
    from trace_core.dispatcher import models, tasks

    with trace_platform(ctx, "pgqueue", 1, "trace-latency") as p:
        with psycopg.connect(p["url"], autocommit=True) as conn:
            for i in range(n):
                tasks.create(conn, models.CreateTask(operator="noop", queue=p["queue"], payload={"i": i}))
                time.sleep(0.05)
        until_none_left(p["url"], TRACE_LEFT, 60, p["pool"])
        with psycopg.connect(p["url"]) as conn:
            rows = conn.execute("SELECT extract(epoch FROM a.claimed_at - t.created_at) * 1000 "
                                "FROM state.tasks t JOIN state.task_attempts a USING (task_id)").fetchall()
    return [float(r[0]) for r in rows]


# ---------------------------------------------------------------- PgQueuer 1.6
async def _pgqueuer_child(dsn: str, batch_size: int | None) -> None:
    from pgqueuer import PsycopgDriver, Queries, QueueManager

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    qm = QueueManager(Queries(PsycopgDriver(conn)))

    @qm.entrypoint("noop")
    async def noop(job: Any) -> None:
        return None

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, qm.shutdown.set)
    print("child ready", flush=True)
    await (qm.run() if batch_size is None else qm.run(batch_size=batch_size))  # otherwise its defaults


async def _pgqueuer_setup(dsn: str) -> None:
    from pgqueuer import PsycopgDriver, Queries

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await Queries(PsycopgDriver(conn)).install()


async def _pgqueuer_enqueue(dsn: str, n: int, batch: int = BATCH, pause: float = 0.0) -> list[Any]:
    from pgqueuer import PsycopgDriver, Queries

    ids: list[Any] = []
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        queries = Queries(PsycopgDriver(conn))
        for start in range(0, n, batch):
            size = min(batch, n - start)
            ids += await queries.enqueue(["noop"] * size, [str(start + k).encode() for k in range(size)],
                                         [0] * size)
            if pause:
                await asyncio.sleep(pause)
    return ids


PGQUEUER_LEFT = "SELECT EXISTS (SELECT 1 FROM pgqueuer)"  # PgQueuer deletes a job once done (and logs it)
PGQUEUER_RUNS = "SELECT job_id, status::text FROM pgqueuer_log WHERE status IN ('picked', 'successful')"
PGQUEUER_LATENCY = ("SELECT extract(epoch FROM p.created - q.created) * 1000 FROM pgqueuer_log q "
                    "JOIN pgqueuer_log p ON p.job_id = q.job_id AND p.status = 'picked' WHERE q.status = 'queued'")


# ---------------------------------------------------------------- procrastinate 3.10
def _procrastinate_app(dsn: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")
    async def noop(i: int) -> None:
        return None

    return app, noop


async def _procrastinate_child(dsn: str, _batch: int | None) -> None:
    app, _ = _procrastinate_app(dsn)
    async with app.open_async():
        print("child ready", flush=True)
        await app.run_worker_async()  # its defaults (concurrency 1); stops on SIGTERM


async def _procrastinate_setup(dsn: str) -> None:
    app, _ = _procrastinate_app(dsn)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def _procrastinate_enqueue(dsn: str, n: int, batch: int = BATCH, pause: float = 0.0) -> list[Any]:
    app, noop = _procrastinate_app(dsn)
    async with app.open_async():
        for start in range(0, n, batch):
            await noop.batch_defer_async(*[{"i": i} for i in range(start, min(n, start + batch))])
            if pause:
                await asyncio.sleep(pause)
    return list(range(n))


PROCRASTINATE_LEFT = "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing'))"
PROCRASTINATE_RUNS = ("SELECT (j.args->>'i')::int, e.type::text FROM procrastinate_events e JOIN procrastinate_jobs j "
                      "ON j.id = e.job_id WHERE e.type IN ('started', 'succeeded')")
PROCRASTINATE_LATENCY = ("SELECT extract(epoch FROM s.at - d.at) * 1000 FROM procrastinate_events d "
                         "JOIN procrastinate_events s ON s.job_id = d.job_id AND s.type = 'started' "
                         "WHERE d.type = 'deferred'")

PEERS: dict[str, dict[str, Any]] = {
    "pgqueuer": {"setup": _pgqueuer_setup, "enqueue": _pgqueuer_enqueue, "left": PGQUEUER_LEFT,
                 "runs": PGQUEUER_RUNS, "start": "picked", "finish": "successful", "latency": PGQUEUER_LATENCY},
    "procrastinate": {"setup": _procrastinate_setup, "enqueue": _procrastinate_enqueue, "left": PROCRASTINATE_LEFT,
                      "runs": PROCRASTINATE_RUNS, "start": "started", "finish": "succeeded",
                      "latency": PROCRASTINATE_LATENCY},
}


@contextlib.contextmanager
def peer_platform(ctx: Ctx, system: str, workers: int) -> Iterator[dict[str, Any]]:
    """A fresh database with ``system``'s schema and ``workers`` idle worker processes."""
    kind = "procrastinate" if system == "procrastinate" else "pgqueuer"
    url = ctx.server.database(system)
    asyncio.run(PEERS[kind]["setup"](url))
    batch = PEER_BATCH.get(system)
    pool = [ctx.spawn(f"{system}-w{workers}-worker{i}",
                      [sys.executable, "-m", "bench.dispatcher_throughput", "child", kind, url,
                       *(["--batch-size", str(batch)] if batch else [])]) for i in range(workers)]
    try:
        for proc in pool:
            wait_ready(proc, "child ready")
        time.sleep(0.5)  # let each worker reach its first dequeue (LISTEN)
        yield {"url": url, "pool": pool, "peer": PEERS[kind]}
    finally:
        stop_all(pool)
        ctx.server.drop(url)


def run_peer(ctx: Ctx, system: str, index: int, *, workers: int, n: int) -> method.Round:
    began = time.monotonic()
    with peer_platform(ctx, system, workers) as p:
        peer = p["peer"]
        r, expected = measured_round(ctx, system, index, workers, n, {"workers": [w.pid for w in p["pool"]]},
                                     lambda: asyncio.run(peer["enqueue"](p["url"], n)), peer["left"], p["url"],
                                     p["pool"], began)
        with psycopg.connect(p["url"]) as conn:
            runs = conn.execute(peer["runs"]).fetchall()
    return checked(r, exactly_once(expected, [k for k, s in runs if s == peer["start"]],
                                   [k for k, s in runs if s == peer["finish"]]))


def peer_latency(ctx: Ctx, system: str, n: int) -> list[float]:
    with peer_platform(ctx, system, 1) as p:
        asyncio.run(p["peer"]["enqueue"](p["url"], n, batch=1, pause=0.05))
        until_none_left(p["url"], p["peer"]["left"], 60, p["pool"])
        with psycopg.connect(p["url"]) as conn:
            rows = conn.execute(p["peer"]["latency"]).fetchall()
    return [float(r[0]) for r in rows]


# ---------------------------------------------------------------- report
def _line(r: method.Round, rule: method.Rule) -> str:
    cpu = " ".join(f"{k}={v}%" for k, v in r.cpu_pct().items() if v)
    why = rule.reason(r)
    return (f"round {r.index} {r.side:18s} {r.extra['tasks']:>6} jobs {r.seconds:6.2f}s "
            f"{r.extra['tasks_per_s']:8.0f}/s  cpu: {cpu}  outside {r.outside_share:.0%} of the machine"
            f"{'  EXCLUDED' if why else ''}")


def report(rounds: Sequence[method.Round], comps: Sequence[dict[str, Any]], latency: dict[str, Any],
           worker_counts: Sequence[int]) -> str:
    lines = [("| workers | reference | median of pair ratios (min-max) | pairs counted / excluded | "
              "every pair ratio (round: ratio; * excluded) | tasks/s, median: reference / Trace |"),
             "|---|---|---|---|---|---|"]
    for c in comps:
        s = c["summary"]
        figure = f"**{s['median']:.2f}x** ({s['min']:.2f}-{s['max']:.2f})" if s["median"] is not None else "none"
        every = ", ".join(f"{p['round']}: {p['ratio']:.2f}{'*' if p['excluded'] else ''}" for p in c["pairs"])
        ref_rate = statistics.median(p["reference_per_s"] for p in c["pairs"])
        own_rate = statistics.median(p["trace_per_s"] for p in c["pairs"])
        lines.append(f"| {c['workers']} | {SYSTEMS[c['reference']]} | {figure} | {s['n']} / {s['excluded']} | "
                     f"{every} | {ref_rate:,.0f} / {own_rate:,.0f} |")
    excluded = [f"- {c['workers']} worker(s) vs {c['reference']}, round {p['round']}: {'; '.join(p['excluded'])}"
                for c in comps for p in c["pairs"] if p["excluded"]]
    lines += ["", "Excluded pairs:", *excluded] if excluded else ["", "Excluded pairs: none"]
    lines += ["", ("| system | workers | jobs per round | tasks/s, median of rounds | CPU ms per 1,000 jobs, "
                   "median of rounds: postgres / workers / host / moto / producer (this process) |"),
              "|---|---|---|---|---|"]
    for system in dict.fromkeys(r.extra["system"] for r in rounds):
        for w in worker_counts:
            mine = [r for r in rounds if r.side == side(system, w)]
            if mine:
                per_1k = [cpu_per_1k(r) for r in mine]
                cells = " / ".join(f"{statistics.median(m.get(g, 0) for m in per_1k):.0f}"
                                   for g in ("postgres", "workers", "host", "moto", "bench"))
                rate = statistics.median(r.extra["tasks_per_s"] for r in mine)
                lines.append(f"| {system} | {w} | {mine[0].extra['tasks']:,} | {rate:,.0f} | {cells} |")
    for system, lat in latency.items():
        lines.append(f"\nWake-up latency, {SYSTEMS[system]} (create -> start, one job every 50 ms, one idle "
                     f"worker, {lat['samples']} samples): p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, "
                     f"max {lat['max_ms']:.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("child", help="(internal) a peer's worker process")
    child.add_argument("system", choices=("pgqueuer", "procrastinate"))
    child.add_argument("dsn")
    child.add_argument("--batch-size", type=int, help="PgQueuer's batch_size (default: its own)")
    parser.add_argument("--tasks", type=int, default=60_000, help="jobs per round (Trace and PgQueuer)")
    parser.add_argument("--procrastinate-tasks", type=int, default=5_000,
                        help="jobs per procrastinate round (about 15x slower; compared by tasks/s)")
    parser.add_argument("--sqs-tasks", type=int, default=2_000, help="jobs per trace-sqs round (moto is slow)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, e.g. 1,2,4")
    parser.add_argument("--systems", default="pgqueuer,trace,pgqueuer-b100,procrastinate",
                        help=f"systems in round order, among {','.join(SYSTEMS)} (trace required)")
    parser.add_argument("--rounds", type=int, default=5, help="pairs per worker count and reference")
    parser.add_argument("--latency-tasks", type=int, default=200, help="samples per system (0: skip)")
    parser.add_argument("--max-outside", type=float, default=method.Rule().max_outside_share,
                        help="exclude a round whose CPU outside the measured processes exceeds this share of the "
                             "machine (0-1)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a round may take")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.command == "child":
        target = _pgqueuer_child if args.system == "pgqueuer" else _procrastinate_child
        asyncio.run(target(args.dsn, args.batch_size))
        return
    try:
        systems, worker_counts = parse_systems(args.systems), parse_workers(args.workers)
        rule = method.Rule(args.max_outside)
    except ValueError as exc:
        parser.error(str(exc))
    for name in ("tasks", "procrastinate_tasks", "sqs_tasks", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected at least 1, got {getattr(args, name)}")
    sizes = {"procrastinate": args.procrastinate_tasks, "trace-sqs": args.sqs_tasks}

    from trace_core.lite import moto, procs

    rounds: list[method.Round] = []
    latency: dict[str, Any] = {}
    began = time.monotonic()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="trace-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "logs").mkdir()
        server = Server(workdir)
        moto_proc = None
        try:
            port = procs.free_port()
            moto_proc = moto.start(port, workdir / "logs" / "moto.log")  # returns once it answers
            with children(workdir / "logs") as spawn:
                ctx = Ctx(server, spawn, workdir, moto.url(port), moto_proc.pid, args.timeout)
                for index, workers, system in plan(args.rounds, worker_counts, systems):
                    n = sizes.get(system, args.tasks)
                    if system in ("trace", "trace-sqs"):
                        r = run_trace(ctx, index, driver="pgqueue" if system == "trace" else "sqs",
                                      workers=workers, n=n)
                    else:
                        r = run_peer(ctx, system, index, workers=workers, n=n)
                    rounds.append(r)
                    print(_line(r, rule), file=sys.stderr, flush=True)
                for system in (s for s in systems if s in ("trace", "pgqueuer", "procrastinate")):
                    if args.latency_tasks:
                        ms = (trace_latency(ctx, args.latency_tasks) if system == "trace"
                              else peer_latency(ctx, system, args.latency_tasks))
                        latency[system] = percentiles(ms)
                        print(f"latency {system}: {latency[system]}", file=sys.stderr, flush=True)
        finally:
            if moto_proc is not None:
                procs.stop(moto_proc.pid)
            server.close()
    comps = comparisons(rounds, worker_counts, [s for s in systems if s not in (SUBJECT, "trace-sqs")], rule)
    text = report(rounds, comps, latency, worker_counts)
    print(text)
    if args.out:
        args.out.write_text(json.dumps({
            "settings": {"tasks": args.tasks, "procrastinate_tasks": args.procrastinate_tasks,
                         "sqs_tasks": args.sqs_tasks, "workers": worker_counts, "systems": systems,
                         "rounds": args.rounds},
            "rule": {"max_outside_share": rule.max_outside_share}, "cpus": os.cpu_count(),
            "load_before": load_before, "load_after": os.getloadavg(),
            "bench_seconds": round(time.monotonic() - began), "comparisons": comps, "latency": latency,
            "rounds": [{**r.as_dict(), "cpu_ms_per_1k": cpu_per_1k(r)} for r in rounds], "table": text},
            indent=2))


if __name__ == "__main__":
    main()
