"""The outbox drainer: nothing lost across crashes, failing queues isolated, real pgqueue end to end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from psycopg.types.json import Jsonb
from trace_core.dispatcher import models, outbox, tasks
from trace_core.queue import pgqueue, sqs

from tests.integration.dispatcher import conftest as helpers
from tests.integration.queue.conftest import SqsCalls, drain_sqs, make_sqs_queue, sqs_client


def _pending(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM state.outbox WHERE published_at IS NULL").fetchone()["n"]


def test_state_committed_but_never_drained_is_published_later(conn, driver):
    """A crash between the state change and the publish: the wake-up waits in the outbox."""
    # GIVEN tasks created (committed) and a process that died before any drain
    made = tasks.create_many(conn, [models.CreateTask(operator="noop") for _ in range(3)])
    assert _pending(conn) == 3
    # WHEN a drainer runs after the restart THEN every wake-up goes out, once marked
    assert outbox.drain(conn, driver) == 3
    assert sorted(b["task_id"] for b in driver.bodies()) == sorted(str(t.task_id) for t in made)
    assert _pending(conn) == 0
    assert outbox.drain(conn, driver) == 0


def test_an_exception_mid_batch_leaves_the_batch_pending(conn, driver):
    # GIVEN a driver that dies on the second queue of a batch in a way the drainer cannot catch
    tasks.create(conn, models.CreateTask(operator="noop", queue="qa"))
    tasks.create(conn, models.CreateTask(operator="noop", queue="qb"))

    class Dying(helpers.RecordingDriver):
        def publish(self, queue, bodies):
            super().publish(queue, bodies)
            if queue == "qb":
                raise KeyboardInterrupt  # not an Exception: the transaction rolls back

    dying = Dying()
    with contextlib.suppress(KeyboardInterrupt):
        outbox.drain(conn, dying)
    assert len(dying.bodies()) == 2 and _pending(conn) == 2
    # WHEN the next drain runs THEN both are published again (at least once) and marked
    assert outbox.drain(conn, driver) == 2
    assert _pending(conn) == 0


def test_a_drainer_killed_mid_batch_loses_nothing(conn, database_url, tmp_path: Path, driver):
    """SIGKILL between publish and commit: the rows' locks die with the connection; the next drain
    publishes them again."""
    # GIVEN wake-ups for two queues and a drainer process that hangs after publishing the first queue
    made = [tasks.create(conn, models.CreateTask(operator="noop", queue=q)) for q in ("qa", "qa", "qb")]
    log = tmp_path / "published.log"
    script = textwrap.dedent(f"""
        import json, time, psycopg
        from psycopg.rows import dict_row
        from trace_core.dispatcher import outbox

        class Hanging:
            def publish(self, queue, bodies):
                with open({str(log)!r}, "a") as f:
                    for b in bodies:
                        f.write(json.dumps(b) + "\\n")
                time.sleep(600)

        with psycopg.connect({database_url!r}, row_factory=dict_row) as conn:
            outbox.drain(conn, Hanging())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.exists(), "the drainer never published"
    finally:
        # WHEN it is killed mid-batch
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # THEN nothing was marked, and the next drain publishes all three
    assert _pending(conn) == 3
    assert outbox.drain(conn, driver) == 3
    assert sorted(b["task_id"] for b in driver.bodies()) == sorted(str(t.task_id) for t in made)


def test_a_failing_queue_does_not_block_the_others(conn):
    # GIVEN wake-ups for a healthy and an unreachable queue
    tasks.create(conn, models.CreateTask(operator="noop", queue="down"))
    ok = tasks.create(conn, models.CreateTask(operator="noop", queue="up"))
    driver = helpers.RecordingDriver(fail_queues=["down"])
    # WHEN the drainer runs THEN the healthy one is published and the other kept with its error
    assert outbox.drain(conn, driver) == 1
    assert driver.bodies("up") == [{"task_id": str(ok.task_id), "attempt": 0}]
    row = conn.execute("SELECT publish_attempts, last_error, not_before > now() AS later FROM state.outbox "
                       "WHERE queue = 'down'").fetchone()
    assert row["publish_attempts"] == 1 and "unreachable" in row["last_error"] and row["later"]
    # AND once the queue is back and the delay passed, it goes out
    helpers.advance(conn, 2)
    assert outbox.drain(conn, helpers.RecordingDriver()) == 1


def test_drain_all_empties_a_backlog_in_batches(conn, driver):
    tasks.create_many(conn, [models.CreateTask(operator="noop") for _ in range(25)])
    assert outbox.drain_all(conn, driver, batch_size=10) == 25
    assert len(driver.bodies()) == 25


def test_drain_all_stops_at_its_deadline_after_one_batch(conn, driver):
    # GIVEN a backlog of three batches and a deadline already passed
    tasks.create_many(conn, [models.CreateTask(operator="noop") for _ in range(30)])
    # WHEN the drainer runs THEN it still publishes one batch, then leaves the rest for the next run
    assert outbox.drain_all(conn, driver, batch_size=10, until=time.monotonic()) == 10
    assert _pending(conn) == 20
    # AND with time left it goes on until the backlog is empty, past any small batch count
    assert outbox.drain_all(conn, driver, batch_size=10, max_batches=1000, until=time.monotonic() + 60) == 20


def test_drainer_publishes_to_real_pgqueue(conn, database_url):
    """The drainer against the real Postgres queue driver: a wake-up arrives as a receivable message."""
    driver = pgqueue.PgQueueDriver(database_url, listen=False, poll_interval=0.2)
    try:
        task = tasks.create(conn, models.CreateTask(operator="noop", queue="dispatch-test"))
        assert outbox.drain(conn, driver) == 1
        [message] = driver.receive("dispatch-test", wait_seconds=2)
        assert message.body == {"task_id": str(task.task_id), "attempt": 0}
        # AND the woken worker can claim it
        assert tasks.claim(conn, task.task_id, worker_id="w").attempt == 1
        driver.ack([message])
    finally:
        driver.close()


def test_oldest_pending_age_is_what_the_outbox_age_alarm_watches(conn, driver):
    assert outbox.oldest_pending_age_seconds(conn) == 0.0
    tasks.create(conn, models.CreateTask(operator="noop"))
    conn.execute("UPDATE state.outbox SET created_at = now() - interval '90 seconds'")
    conn.commit()
    assert 89 <= outbox.oldest_pending_age_seconds(conn) < 120
    outbox.drain(conn, driver)
    assert outbox.oldest_pending_age_seconds(conn) == 0.0


def test_drainer_publishes_a_backlog_to_sqs_several_batches_at_once(conn, moto_url):
    """The drainer against SQS (moto server over HTTP): batches of 10 go out concurrently, every row is marked."""
    # GIVEN 1,000 pending wake-ups for an SQS queue
    client = sqs_client(moto_url)
    queue = f"drain-{uuid.uuid4().hex[:8]}"
    url = make_sqs_queue(client, queue)
    made = tasks.create_many(conn, [models.CreateTask(operator="noop", queue=queue) for _ in range(1000)])
    driver = sqs.SqsDriver(client, queue_urls={queue: url})
    calls = SqsCalls(client)
    try:
        # WHEN one drain publishes them
        assert outbox.drain(conn, driver, batch_size=1000) == 1000
    finally:
        driver.close()
    # THEN 10 full batches were sent (10 messages of 10 wake-ups each), several in flight at once, and
    # every row is marked published
    assert calls.made == {"SendMessageBatch": 10} and calls.max_in_flight > 1
    assert _pending(conn) == 0
    assert sorted(b["task_id"] for b in drain_sqs(client, url)) == sorted(str(t.task_id) for t in made)


def test_rows_sqs_rejects_stay_pending_and_the_rest_are_marked(conn, moto_url):
    # GIVEN 40 outbox rows whose last two are too large to pack and together more than SQS takes in one call
    client = sqs_client(moto_url)
    queue = f"reject-{uuid.uuid4().hex[:8]}"
    url = make_sqs_queue(client, queue)
    for n in range(40):
        conn.execute("INSERT INTO state.outbox (queue, payload) VALUES (%s, %s)",
                     (queue, Jsonb({"n": n, "pad": "x" * (600_000 if n in (38, 39) else 0)})))
    conn.commit()
    driver = sqs.SqsDriver(client, queue_urls={queue: url})
    try:
        # WHEN the drainer runs
        assert outbox.drain(conn, driver) == 38
    finally:
        driver.close()
    # THEN the accepted batch is marked, the rejected one stays pending with its error, for a later retry
    rows = conn.execute("SELECT payload->>'n' AS n, published_at IS NOT NULL AS done, last_error "
                        "FROM state.outbox ORDER BY outbox_id").fetchall()
    assert [r["done"] for r in rows] == [True] * 38 + [False] * 2
    assert all("PublishError" in r["last_error"] for r in rows[38:])
    assert sorted(b["n"] for b in drain_sqs(client, url)) == list(range(38))
