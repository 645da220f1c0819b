"""SqsDriver beyond the shared contract: errors name the queue and the fix; odd bodies never crash a consumer."""

from __future__ import annotations

import uuid

import pytest
from trace_core.queue import errors, sqs

from tests.integration.queue.conftest import SqsCalls, drain_sqs, make_sqs_queue, sqs_client


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


def test_a_large_publish_sends_several_batches_at_once(client):
    # GIVEN 300 wake-ups for one queue (30 SendMessageBatch calls of 10)
    name = f"wide-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    driver.url(name)
    calls = SqsCalls(client)
    try:
        # WHEN they are published
        driver.publish(name, [{"n": n} for n in range(300)])
    finally:
        driver.close()
    # THEN every batch is full and several were in flight at once (not one round trip after another)
    assert calls.made == {"SendMessageBatch": 30}
    assert calls.max_in_flight > 1
    assert calls.max_in_flight <= sqs.MAX_IN_FLIGHT
    # AND every body arrived
    assert sorted(b["n"] for b in drain_sqs(client, driver.url(name))) == list(range(300))


def test_receive_and_ack_go_ten_at_a_time(client):
    # GIVEN 30 messages waiting
    name = f"tens-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    driver.publish(name, [{"n": n} for n in range(30)])
    calls = SqsCalls(client)
    # WHEN a consumer asks for 30 and acks them in one call
    got = driver.receive(name, max_messages=30, wait_seconds=0)
    driver.ack(got)
    driver.close()
    # THEN it got all 30 from three full receives and deleted them in three batches, never one by one
    assert sorted(m.body["n"] for m in got) == list(range(30))
    assert calls.made == {"ReceiveMessage": 3, "DeleteMessageBatch": 3}
    assert drain_sqs(client, driver.url(name)) == []


def test_asking_for_more_than_ten_on_a_quiet_queue_long_polls_once(client):
    # GIVEN an empty queue
    name = f"quiet-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    driver.url(name)
    calls = SqsCalls(client)
    # WHEN a consumer asks for up to 100 with a short wait THEN it makes one call, not ten
    assert driver.receive(name, max_messages=100, wait_seconds=0.2) == []
    assert calls.made == {"ReceiveMessage": 1}
    # AND a partly filled queue is drained by one full receive and concurrent top-ups
    driver.publish(name, [{"n": n} for n in range(15)])
    got = driver.receive(name, max_messages=100, wait_seconds=0)
    driver.close()
    assert sorted(m.body["n"] for m in got) == list(range(15))


def test_a_rejected_batch_is_reported_by_index_and_the_others_go_out(client):
    # GIVEN 20 bodies whose second batch of 10 is over what SQS takes per call (1 MiB)
    name = f"part-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    bodies = [{"n": n, "pad": "x" * (600_000 if n in (12, 13) else 0)} for n in range(20)]
    # WHEN they are published
    with pytest.raises(errors.PublishError) as caught:
        driver.publish(name, bodies)
    driver.close()
    # THEN the error names exactly the rejected ones, and the first batch arrived
    assert caught.value.details["indexes"] == list(range(10, 20))
    assert caught.value.details["queue"] == name
    assert sorted(b["n"] for b in drain_sqs(client, driver.url(name))) == list(range(10))
