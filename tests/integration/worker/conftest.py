"""Worker tests: real Postgres, pgqueue, the real dispatcher core; a drain+reap loop stands in for the host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from trace_core.db import pool as pool_mod
from trace_core.dispatcher import models, outbox, reaper, tasks
from trace_core.queue import pgqueue
from trace_core.worker import config as worker_config
from trace_core.worker import direct, registry, runner

from tests.fixtures import processes

PLUGIN = "tests.integration.worker.operators_plugin"
REPO = Path(__file__).resolve().parents[3]


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def events(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def max_concurrency(log: Path) -> int:
    """The most executions that were between 'start' and their end at once."""
    running, peak = 0, 0
    for event in sorted(events(log), key=lambda e: e["t"]):
        running += 1 if event["event"] == "start" else -1 if event["event"] in ("end", "cancelled") else 0
        peak = max(peak, running)
    return peak


@pytest.fixture
def db_pool(database_url: str) -> ConnectionPool:
    pool = pool_mod.get(database_url)
    with pool.connection() as conn:
        conn.execute("TRUNCATE state.task_attempts, state.dead_tasks, state.outbox, state.dataset_versions, "
                     "state.tasks, state.jobs, state.queue_messages, state.queue_dead CASCADE")
        conn.execute("DELETE FROM state.audit_log WHERE principal = 'test'")
    return pool


@pytest.fixture
def queue_name() -> str:
    return f"wq-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def driver(db_pool: ConnectionPool) -> Iterator[pgqueue.PgQueueDriver]:
    d = pgqueue.PgQueueDriver(db_pool, max_receives=3, poll_interval=0.2)
    yield d
    d.close()


@pytest.fixture
def create(db_pool: ConnectionPool, queue_name: str) -> Callable[..., models.Task]:
    def make(operator: str = "noop", payload: dict[str, Any] | None = None, **kwargs: Any) -> models.Task:
        with db_pool.connection() as conn:
            return tasks.create(conn, models.CreateTask(operator=operator, payload=payload or {}, queue=queue_name,
                                                        **kwargs))
    return make


@pytest.fixture
def get_task(db_pool: ConnectionPool) -> Callable[[Any], models.Task]:
    def get(task_id: Any) -> models.Task:
        with db_pool.connection() as conn:
            return tasks.get(conn, task_id)
    return get


@pytest.fixture
def attempts(db_pool: ConnectionPool) -> Callable[[Any], list[dict[str, Any]]]:
    def get(task_id: Any) -> list[dict[str, Any]]:
        with db_pool.connection() as conn:
            return tasks.attempts(conn, task_id)
    return get


@pytest.fixture
def dispatcher_loop(database_url: str, db_pool: ConnectionPool, driver: pgqueue.PgQueueDriver) -> Iterator[None]:
    """What the Lite host does on its timers: drain the outbox and reap expired leases (every 0.1 s).

    It takes db_pool so that the tables are truncated before the loop starts: a TRUNCATE while the loop drains
    can deadlock with it (a module's own driver fixture, e.g. SQS's, does not depend on db_pool)."""
    stop = threading.Event()

    def loop() -> None:
        with psycopg.connect(database_url, row_factory=dict_row) as conn:
            while not stop.is_set():
                try:
                    outbox.drain_all(conn, driver)
                    reaper.reap_all(conn)
                except psycopg.Error:  # e.g. a serialization failure: the host retries too
                    conn.rollback()
                stop.wait(0.1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


@pytest.fixture
def start_worker(db_pool: ConnectionPool, driver: pgqueue.PgQueueDriver, queue_name: str, make_settings,
                 ) -> Iterator[Callable[..., runner.Worker]]:
    """Factory: an in-process Worker on this test's queue, running in a thread (stopped after the test)."""
    started: list[tuple[runner.Worker, threading.Thread]] = []

    def start(operators: registry.Registry | None = None, **config: Any) -> runner.Worker:
        """A worker running ``operators`` (default: the platform's and the test operators of PLUGIN)."""
        defaults: dict[str, Any] = {"queue": queue_name, "lease_seconds": 5, "poll_seconds": 1.0,
                                    "receive_wait_seconds": 0.5, "grace_seconds": 5.0}
        worker = runner.Worker(direct.for_driver(db_pool, driver), driver, make_settings(),
                               worker_config.WorkerConfig(**{**defaults, **config}),
                               operators or registry.for_pool(extra_modules=PLUGIN))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        started.append((worker, thread))
        return worker

    yield start
    for worker, _ in started:
        worker.request_stop("abandon")
    for _, thread in started:
        thread.join(timeout=15)


@pytest.fixture
def spawn_worker(database_url: str, queue_name: str,
                 tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Factory: a real `trace-lite worker` process on this test's queue (killed after the test)."""
    with processes.started(tmp_path) as started:

        def spawn(*args: str, lease_seconds: int = 5, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
            env = {**os.environ, "TRACE_DATABASE_URL": database_url, "TRACE_OPERATOR_MODULES": PLUGIN,
                   "TRACE_HOME": str(tmp_path / "home"), "TRACE_LEASE_SECONDS": str(lease_seconds), **(env or {})}
            proc = started.start([sys.executable, "-m", "trace_core.cli", "worker", "--queue", queue_name, *args],
                                 env=env, cwd=REPO)
            log: Path = proc.log  # type: ignore[attr-defined]
            wait_for(lambda: "ready" in log.read_text() or proc.poll() is not None, timeout=30)
            assert proc.poll() is None, log.read_text()
            return proc

        yield spawn
