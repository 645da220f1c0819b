"""One parametrized queue backend for the contract suite: memory, pgqueue (test Postgres), sqs (moto server)."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import psycopg
import pytest
from trace_core.queue import base, memory, pgqueue, sqs

MAX_RECEIVES = 3


@dataclasses.dataclass
class Backend:
    name: str
    driver: base.QueueDriver
    queue: str
    dead_bodies: Callable[[], list[dict[str, Any]]]


def sqs_client(moto_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1")


def make_sqs_queue(client: Any, name: str, *, max_receives: int = MAX_RECEIVES, with_dlq: bool = True) -> str:
    """Create ``name`` (and ``name-dlq`` with a redrive policy); returns the queue URL."""
    attributes = {"VisibilityTimeout": "30"}
    if with_dlq:
        dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})
    return client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def drain_sqs(client: Any, url: str) -> list[dict[str, Any]]:
    """Every body left on the queue (those of packed messages one by one), read with the plain client."""
    bodies = []
    while True:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            body = json.loads(message["Body"])
            bodies.extend(body[sqs.PACK_KEY] if list(body) == [sqs.PACK_KEY] else [body])


class SqsCalls:
    """Counts SQS API calls made through ``client`` (botocore event hooks), and the most in flight at once."""

    def __init__(self, client) -> None:
        self.made: Counter[str] = Counter()
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-call.sqs", self._before)
        client.meta.events.register("after-call.sqs", self._after)
        client.meta.events.register("after-call-error.sqs", self._after)

    def _before(self, model, **_) -> None:
        with self._lock:
            self.made[model.name] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _after(self, **_) -> None:
        with self._lock:
            self.in_flight -= 1


@pytest.fixture(params=["memory", "pgqueue", "sqs"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    queue = f"t-{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        driver = memory.MemoryQueueDriver(max_receives=MAX_RECEIVES)
        yield Backend("memory", driver, queue, lambda: [body for body, _ in driver.dead.get(queue, [])])
        return
    if request.param == "pgqueue":
        url = request.getfixturevalue("database_url")
        pg = pgqueue.PgQueueDriver(url, max_receives=MAX_RECEIVES, poll_interval=0.2)

        def pg_dead() -> list[dict[str, Any]]:
            with psycopg.connect(url) as conn:
                rows = conn.execute(
                    "SELECT body FROM state.queue_dead WHERE queue = %s ORDER BY message_id", (queue,)
                ).fetchall()
            return [row[0] for row in rows]

        try:
            yield Backend("pgqueue", pg, queue, pg_dead)
        finally:
            pg.close()
        return
    client = sqs_client(request.getfixturevalue("moto_url"))
    make_sqs_queue(client, queue)
    driver_sqs = sqs.SqsDriver(client)
    try:
        yield Backend("sqs", driver_sqs, queue, lambda: drain_sqs(client, driver_sqs.url(f"{queue}-dlq")))
    finally:
        for name in (queue, f"{queue}-dlq"):
            client.delete_queue(QueueUrl=client.get_queue_url(QueueName=name)["QueueUrl"])
