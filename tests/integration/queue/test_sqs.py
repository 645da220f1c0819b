"""SqsDriver beyond the shared contract: errors name the queue and the fix; odd bodies never crash a consumer."""

from __future__ import annotations

import uuid

import pytest
from trace_core.queue import errors, sqs

from tests.integration.queue.conftest import make_sqs_queue, sqs_client


@pytest.fixture
def client(moto_url: str):
    return sqs_client(moto_url)


def test_a_missing_queue_is_named_with_the_fix(client):
    driver = sqs.SqsDriver(client)
    with pytest.raises(errors.QueueNotFoundError) as caught:
        driver.publish("no-such-queue", [{"n": 1}])
    assert caught.value.details["queue"] == "no-such-queue"
    assert "trace-lite up" in caught.value.details["fix"]


def test_dead_letter_needs_a_redrive_policy(client):
    name = f"nodlq-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name, with_dlq=False)
    driver = sqs.SqsDriver(client)
    driver.publish(name, [{"n": 1}])
    [message] = driver.receive(name, wait_seconds=1)
    with pytest.raises(errors.QueueNotFoundError, match="has no dead-letter queue"):
        driver.dead_letter(message, "poison")


def test_a_body_that_is_not_a_json_object_arrives_empty_and_can_be_dead_lettered(client):
    name = f"raw-{uuid.uuid4().hex[:8]}"
    url = make_sqs_queue(client, name)
    client.send_message(QueueUrl=url, MessageBody="this is not json")
    client.send_message(QueueUrl=url, MessageBody="[1, 2, 3]")
    driver = sqs.SqsDriver(client, queue_urls={name: url})
    got = []
    while len(got) < 2:
        got += driver.receive(name, wait_seconds=1)
    assert [m.body for m in got] == [{}, {}]
    assert sorted(m.raw for m in got) == ["[1, 2, 3]", "this is not json"]
    for message in got:
        driver.dead_letter(message, "malformed")
    dead = client.receive_message(QueueUrl=driver.dead_letter_url(name), MaxNumberOfMessages=10,
                                  MessageAttributeNames=["All"])["Messages"]
    # THEN the DLQ keeps the text exactly as it arrived, with the reason
    assert sorted(m["Body"] for m in dead) == ["[1, 2, 3]", "this is not json"]
    assert {m["MessageAttributes"]["trace_dead_reason"]["StringValue"] for m in dead} == {"malformed"}


def test_publishing_more_than_one_batch_sends_every_body(client):
    name = f"big-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    driver.publish(name, [{"n": n} for n in range(23)])
    seen = set()
    for _ in range(10):
        got = driver.receive(name, max_messages=10, wait_seconds=0)
        seen |= {m.body["n"] for m in got}
        driver.ack(got)
    assert seen == set(range(23))
