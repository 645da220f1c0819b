"""The whole path on real SQS (moto server): outbox -> drainer -> queue -> sink Lambda in the Lite host -> Postgres.

Poison messages are received exactly max-receives times, then SQS's redrive
moves them to the DLQ; good messages of the same batches land once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from trace_core.lite import host as host_mod
from trace_core.lite import provision

from tests.integration.sink.conftest import ROOT, event
from tests.integration.worker.conftest import wait_for

MAX_RECEIVES = provision.QUEUES["trace-sink"]


@pytest.fixture
def sqs(moto_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture
def sink_queue(sqs: Any) -> Iterator[tuple[str, str, str]]:
    """A queue configured like trace-sink (DLQ after the same max receives), private to this test."""
    name = f"sink-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)})})["QueueUrl"]
    try:
        yield name, url, dlq_url
    finally:
        sqs.delete_queue(QueueUrl=url)
        sqs.delete_queue(QueueUrl=dlq_url)


def depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def dead_bodies(sqs: Any, dlq_url: str) -> list[str]:
    """The DLQ's bodies (received with no visibility timeout, so they stay visible for the next look)."""
    found = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                VisibilityTimeout=0).get("Messages", [])
    return sorted(m["Body"] for m in found)


def test_poison_reaches_the_dlq_after_max_receives_while_good_batches_land_once(
    clean, publish, stage_raw, rows, batch_row, make_settings, moto_url, sqs, sink_queue
):
    name, url, dlq_url = sink_queue
    # GIVEN good batches published through the outbox, twice for the same events (a retried producer)
    for _ in range(2):
        publish("alert_events", [event("a"), event("b")], queue=name)
    publish("alert_events", [event("c")], queue=name)
    # AND a staged batch with a malformed record, and a message from a foreign producer that is no pointer
    malformed = stage_raw([event("d"), event("e", severity="urgent")], queue=name)
    sqs.send_message(QueueUrl=url, MessageBody="not a sink pointer")
    # WHEN the Lite host runs the outbox drainer and the real sink Lambda on that queue (SQS driver)
    settings = make_settings(database_url=clean, aws_endpoint_url=moto_url, queue_driver="sqs")
    spec = host_mod.HostSpec(
        functions_root=ROOT / "functions", api_function=None, workers=0,
        schedules=(host_mod.Schedule("outbox_drainer", 0.2, wake_on_outbox=True),),
        queue_triggers=(host_mod.QueueTrigger(name, "sink", batch_size=10, visibility_seconds=1),),
    )
    with host_mod.running(settings, spec) as host:
        # THEN both poison messages end in the DLQ and the queue empties
        wait_for(lambda: len(dead_bodies(sqs, dlq_url)) == 2, timeout=40, interval=0.5)
        wait_for(lambda: depth(sqs, url) == 0, timeout=10, interval=0.5)
        invocations = host.functions["sink"].invocations
    garbage, pointer = dead_bodies(sqs, dlq_url)
    assert garbage == "not a sink pointer"
    assert json.loads(pointer) == {"batch_id": str(malformed), "sink": "alert_events"}
    # AND the malformed batch was tried on each of its max receives, writing nothing
    staged = batch_row(malformed)
    assert staged["status"] == "rejected" and staged["rejections"] == MAX_RECEIVES
    assert "records[1].severity" in staged["last_error"]
    # AND every good event is stored exactly once
    assert sorted(r["dedupe_key"] for r in rows()) == ["a", "b", "c"]
    assert invocations >= MAX_RECEIVES

