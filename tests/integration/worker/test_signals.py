"""A worker pool's queue on pgqueue carries signals, not messages (decision 2302).

The wake-up of a task on such a queue is a NOTIFY only: no ``state.queue_messages`` row is written,
received or acked, and the worker claims what is due from ``state.tasks`` itself. These tests run the
real dispatcher core, outbox drainer, reaper and worker against real Postgres with the driver Lite
builds (``queue.factory``), and prove the lifecycle the message path proves: every task runs once,
retries and abandoned leases come back, and a lost signal costs a bounded wait, never a task.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool
from trace_core import platform
from trace_core.dispatcher import models, tasks
from trace_core.queue import base, errors, factory, pgqueue

from tests.integration.worker.conftest import wait_for

pytestmark = pytest.mark.usefixtures("dispatcher_loop")


@pytest.fixture
def driver(db_pool: ConnectionPool, queue_name: str) -> Iterator[pgqueue.PgQueueDriver]:
    """This test's queue as a signal queue (what the factory makes of a worker pool's queue)."""
    d = pgqueue.PgQueueDriver(db_pool, max_receives=3, poll_interval=0.2, signal_queues={queue_name})
    yield d
    d.close()


def _messages(db_pool: ConnectionPool, queue: str) -> int:
    with db_pool.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM state.queue_messages WHERE queue = %s", (queue,)).fetchone()
    assert row is not None
    return int(row["n"])


def test_lite_makes_every_worker_pools_queue_a_signal_queue_and_keeps_messages_elsewhere(make_settings,
                                                                                       database_url):
    driver = factory.driver_for(make_settings(database_url=database_url, queue_driver="pgqueue",
                                             task_queue="bench-tasks"))
    try:
        assert isinstance(driver, base.Signals)
        for worker_pool in platform.PLATFORM.worker_pools.values():
            assert driver.signal_only(worker_pool.queue), worker_pool.name
        assert driver.signal_only("bench-tasks")  # the configured task queue (TRACE_TASK_QUEUE)
        # The sink's queue feeds a function with what its messages carry: it keeps them.
        assert not driver.signal_only(platform.SINK_QUEUE)
    finally:
        driver.close()


def test_a_task_runs_its_whole_lifecycle_without_a_queue_message(create, get_task, attempts, start_worker,
                                                                  db_pool, queue_name):
    worker = start_worker()
    task = create("noop")
    done = wait_for(lambda: (t := get_task(task.task_id)).status == "completed" and t)
    assert done.outputs == {"noop": True, "attempt": 1}
    assert [a["outcome"] for a in attempts(task.task_id)] == ["succeeded"]

    # The drainer publishes the outbox row (as a signal: the worker may have claimed the task before) ...
    def published() -> bool:
        with db_pool.connection() as conn:
            row = conn.execute("SELECT count(*) FILTER (WHERE published_at IS NULL) AS pending, count(*) AS n "
                               "FROM state.outbox WHERE queue = %s", (queue_name,)).fetchone()
        return row is not None and row["n"] == 1 and row["pending"] == 0

    wait_for(published)
    # ... and no message row was ever written for it.
    assert _messages(db_pool, queue_name) == 0
    assert worker.stats["succeeded"] == 1 and worker.stats["malformed"] == 0


def test_a_burst_larger_than_a_claim_batch_runs_every_task_exactly_once(get_task, attempts, start_worker,
                                                                          db_pool, queue_name):
    # One signal for 600 tasks: the worker keeps claiming while its batches come back full.
    start_worker(), start_worker()
    with db_pool.connection() as conn:
        created = tasks.create_many(conn, [models.CreateTask(operator="noop", queue=queue_name)] * 600)
    ids = [t.task_id for t in created]

    def all_done() -> bool:
        with db_pool.connection() as conn:
            row = conn.execute("SELECT count(*) AS n FROM state.tasks WHERE task_id = ANY(%s) "
                               "AND status = 'completed'", (ids,)).fetchone()
        return row is not None and row["n"] == len(ids)

    wait_for(all_done, timeout=60)
    with db_pool.connection() as conn:
        rows = conn.execute("SELECT task_id, count(*) AS n FROM state.task_attempts WHERE task_id = ANY(%s) "
                            "GROUP BY task_id", (ids,)).fetchall()
    assert len(rows) == len(ids) and {r["n"] for r in rows} == {1}
    assert _messages(db_pool, queue_name) == 0


def test_a_lost_signal_costs_a_bounded_wait_not_the_task(db_pool, queue_name, get_task, start_worker):
    # GIVEN an idle worker whose waits are bounded by half a second
    start_worker(receive_wait_seconds=0.5)
    # WHEN a task becomes due without any signal (its outbox row is gone before the drainer saw it)
    with db_pool.connection() as conn, conn.transaction():
        [task] = tasks.create_many(conn, [models.CreateTask(operator="noop", queue=queue_name)])
        conn.execute("DELETE FROM state.outbox WHERE queue = %s", (queue_name,))
    # THEN the worker still claims it within a few of its waits
    wait_for(lambda: get_task(task.task_id).status == "completed", timeout=5)


def test_a_retry_comes_back_on_a_signal_queue(create, get_task, attempts, start_worker):
    start_worker(poll_seconds=60)
    flaky = create("flaky", {"succeed_on": 2}, backoff_base_ms=0)
    wait_for(lambda: get_task(flaky.task_id).status == "completed")
    assert [a["outcome"] for a in attempts(flaky.task_id)] == ["failed", "succeeded"]


def test_an_abandoned_lease_is_taken_at_once_by_another_worker(create, get_task, attempts, start_worker,
                                                               tmp_path: Path):
    first = start_worker(poll_seconds=60)
    slow = create("sleep", {"seconds": 30, "log": str(tmp_path / "runs.jsonl")})
    wait_for(lambda: first.in_flight == 1)
    first.request_stop("abandon")
    wait_for(lambda: [a["outcome"] for a in attempts(slow.task_id)] == ["abandoned"], timeout=5)
    start_worker()
    wait_for(lambda: len(attempts(slow.task_id)) == 2, timeout=5)


def test_receiving_from_a_signal_queue_is_refused_naming_the_queue(driver, queue_name):
    with pytest.raises(errors.QueueError, match=f"queue {queue_name} carries signals, not messages"):
        driver.receive(queue_name, wait_seconds=0)
