"""The worker over SQS (moto server): the same lifecycle, and heartbeats extend the message's visibility."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from trace_core.dispatcher import models, tasks
from trace_core.queue import sqs

from tests.integration.queue.conftest import SqsCalls, make_sqs_queue, sqs_client
from tests.integration.worker.conftest import events, wait_for

pytestmark = pytest.mark.usefixtures("dispatcher_loop")


@pytest.fixture
def client(moto_url: str) -> Any:
    return sqs_client(moto_url)


@pytest.fixture
def driver(client: Any, queue_name: str) -> Iterator[sqs.SqsDriver]:
    """Overrides the pgqueue driver: this module's workers and drainer use SQS."""
    make_sqs_queue(client, queue_name)
    yield sqs.SqsDriver(client)
    for name in (queue_name, f"{queue_name}-dlq"):
        client.delete_queue(QueueUrl=client.get_queue_url(QueueName=name)["QueueUrl"])


def _counts(client: Any, driver: sqs.SqsDriver, queue: str) -> tuple[int, int]:
    attributes = client.get_queue_attributes(
        QueueUrl=driver.url(queue),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_noop_over_sqs_completes_and_its_message_is_deleted(create, get_task, start_worker, client, driver,
                                                           queue_name):
    start_worker()
    task = create("noop")
    wait_for(lambda: get_task(task.task_id).status == "completed")
    wait_for(lambda: _counts(client, driver, queue_name) == (0, 0))


def test_a_long_task_keeps_its_message_in_flight_with_heartbeats(create, get_task, attempts, start_worker, client,
                                                                 driver, queue_name, tmp_path: Path):
    # GIVEN a 2 s lease: messages are received with 2 s visibility, heartbeats every ~0.7 s
    log = tmp_path / "runs.jsonl"
    worker = start_worker(lease_seconds=2, poll_seconds=60)
    # WHEN a task runs for 5 s (2.5 visibility timeouts)
    task = create("sleep", {"seconds": 5, "log": str(log)})
    wait_for(lambda: events(log))
    # THEN its message stays invisible the whole time (extended), so it is never redelivered
    while get_task(task.task_id).status == "running":
        visible, in_flight = _counts(client, driver, queue_name)
        assert visible == 0 and in_flight <= 1
        time.sleep(0.5)
    wait_for(lambda: get_task(task.task_id).status == "completed", timeout=10)
    assert worker.stats["ignored"] == 0
    assert [a["outcome"] for a in attempts(task.task_id)] == ["succeeded"]
    wait_for(lambda: _counts(client, driver, queue_name) == (0, 0))


def test_a_backlog_travels_packed_and_every_task_completes_once(db_pool, get_task, attempts, start_worker,
                                                                 client, driver, queue_name):
    # GIVEN SQS calls counted from the start, a worker, and 300 tasks created at once
    calls = SqsCalls(client)
    worker = start_worker()
    with db_pool.connection() as conn:
        made = tasks.create_many(conn, [models.CreateTask(operator="noop", queue=queue_name) for _ in range(300)])
    # WHEN they drain (the outbox publishes 100 rows at a time: 10 messages of 10 wake-ups)
    wait_for(lambda: all(get_task(t.task_id).status == "completed" for t in made), timeout=60)
    # THEN each ran once, and the queue is left empty
    assert all([a["outcome"] for a in attempts(t.task_id)] == ["succeeded"] for t in made)
    assert worker.stats["succeeded"] == 300
    wait_for(lambda: _counts(client, driver, queue_name) == (0, 0))
    # AND SQS carried them in a few calls: unpacked, 300 wake-ups take 30 sends and 30 deletes
    assert calls.made["SendMessageBatch"] <= 10
    assert calls.made["DeleteMessageBatch"] <= 12
