"""A Postgres restart costs no failed request: pooled connections the restart killed are never handed out.

Each test runs its own embedded Postgres (so it can restart it) and stops it at the end.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from trace_core.db import migrate
from trace_core.db import pool as db_pool
from trace_core.lite import postgres, procs
from trace_core.queue import pgqueue


class Server:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.url = postgres.url(port)

    def restart(self, down_for: float = 1.0) -> None:
        postgres.stop(self.data_dir)
        time.sleep(down_for)
        postgres.start(self.data_dir, self.port, fast=True)


@pytest.fixture
def server() -> Iterator[Server]:
    base = Path(tempfile.mkdtemp(prefix="trace-test-pg-restart-"))
    port = procs.free_port()
    postgres.start(base / "data", port, fast=True)
    try:
        yield Server(base / "data", port)
    finally:
        db_pool.close_all()
        postgres.destroy(base / "data")
        shutil.rmtree(base, ignore_errors=True)


def _hold(pool, n: int) -> None:
    """Grow the pool to ``n`` connections, all idle again afterwards."""
    barrier = threading.Barrier(n)

    def use() -> None:
        with pool.connection() as conn:
            conn.execute("select 1")
            barrier.wait(timeout=10)

    threads = [threading.Thread(target=use) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_the_first_queries_after_a_restart_succeed_promptly(server: Server) -> None:
    # GIVEN a process pool with four idle connections to the server
    pool = db_pool.get(server.url, max_size=4)
    _hold(pool, 4)
    assert pool.get_stats()["pool_size"] == 4
    # WHEN the server restarts (every pooled connection is now dead)
    server.restart()
    # THEN every request after it succeeds, the first one within a couple of seconds, none waiting 30 s
    started = time.monotonic()
    with pool.connection() as conn:
        assert conn.execute("select 41 + 1 as n").fetchone() == {"n": 42}
    first = time.monotonic() - started
    for _ in range(8):  # the other dead connections are never handed out either
        with pool.connection() as conn:
            conn.execute("select 1")
    assert first < 3.0, f"first query after the restart took {first:.1f} s"
    assert time.monotonic() - started < 5.0


def test_the_queue_driver_publishes_and_receives_across_a_restart(server: Server) -> None:
    # GIVEN the Postgres queue driver with its own pool, used once
    migrate.apply(server.url)
    driver = pgqueue.PgQueueDriver(server.url, poll_interval=0.2, listen=False)
    try:
        driver.publish("q", [{"n": 1}])
        assert [m.body for m in driver.receive("q", max_messages=10, wait_seconds=1.0)] == [{"n": 1}]
        # WHEN the server restarts
        server.restart()
        # THEN the next publish and receive succeed at once (no failed call, no 30 s pool wait)
        started = time.monotonic()
        driver.publish("q", [{"n": 2}])
        got = driver.receive("q", max_messages=10, wait_seconds=1.0)
        assert [m.body for m in got] == [{"n": 2}]
        assert time.monotonic() - started < 5.0
    finally:
        driver.close()

