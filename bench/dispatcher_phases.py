"""Where Postgres spends its CPU on Trace's job path: create, drain, claim, complete, per 1,000 jobs.

A diagnostic beside ``bench.dispatcher_throughput`` (not a comparison): one connection runs each phase of
the path over N no-op tasks in turn, in a fresh database, and the CPU of its backend (``/proc/<pid>/stat``)
is read before and after each phase. What it leaves out: the WAL writer, the checkpointer, autovacuum and
the workers' and drainer's processes. Use it to see which statement a change moves.

    .venv/bin/python -m bench.dispatcher_phases postgresql://postgres@127.0.0.1:5432/postgres --tasks 20000
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from trace_core.db import migrate
from trace_core.dispatcher import models, outbox, tasks
from trace_core.queue import pgqueue

QUEUE = "bench-phases"
CLAIM_BATCH = 128  # a worker's claim and completion batches at its defaults (32 operators + 96 prefetched)


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url: str, n: int, *, signals: bool) -> dict[str, tuple[float, float]]:
    """Per phase: (ms of backend CPU per 1,000 tasks, seconds)."""
    conn = psycopg.connect(url, row_factory=dict_row, autocommit=True)
    pid = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]  # type: ignore[index]
    driver = pgqueue.PgQueueDriver(url, signal_queues={QUEUE} if signals else ())
    leases: list[models.Lease] = []

    def create() -> None:
        for start in range(0, n, 1000):
            tasks.create_many(conn, [models.CreateTask(operator="noop", queue=QUEUE, payload={"i": i})
                                     for i in range(start, min(n, start + 1000))])

    def drain() -> None:
        while outbox.drain(conn, driver, batch_size=1000):
            pass

    def claim() -> None:
        while got := tasks.claim_next(conn, worker_id="bench", operators=["noop"], queue=QUEUE, limit=CLAIM_BATCH):
            leases.extend(got)

    def complete() -> None:
        for start in range(0, len(leases), CLAIM_BATCH):
            tasks.complete_many(conn, [
                models.Completion(task_id=lease.task.task_id, attempt=lease.attempt, lease_token=lease.lease_token,
                                  result=models.Success(outputs={"noop": True}))
                for lease in leases[start:start + CLAIM_BATCH]
            ])

    phases: dict[str, Callable[[], Any]] = {"create": create, "drain": drain, "claim": claim, "complete": complete}
    found: dict[str, tuple[float, float]] = {}
    try:
        for name, phase in phases.items():
            cpu, wall = backend_cpu(pid), time.perf_counter()
            phase()
            found[name] = ((backend_cpu(pid) - cpu) * 1000 / (n / 1000), time.perf_counter() - wall)
    finally:
        driver.close()
        conn.close()
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("admin_url", help="a Postgres URL allowed to create and drop a database")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--messages", action="store_true", help="wake-ups as queue messages (default: signals)")
    args = parser.parse_args(argv)
    name = f"bench_phases_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = psycopg.conninfo.make_conninfo(args.admin_url, dbname=name)
    try:
        migrate.apply(url)
        found = run(url, args.tasks, signals=not args.messages)
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    print(f"{args.tasks} tasks, Postgres backend CPU per 1,000 tasks (wall seconds):")
    for phase, (ms, seconds) in found.items():
        print(f"  {phase:<9} {ms:6.1f} ms  ({seconds:.1f} s)")
    print(f"  {'total':<9} {sum(ms for ms, _ in found.values()):6.1f} ms")


if __name__ == "__main__":
    main()
