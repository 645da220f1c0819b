"""SqsDriver beyond the shared contract: errors name the queue and the fix; odd bodies never crash a consumer."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from trace_core import platform
from trace_core.queue import errors, factory, sqs

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


def test_a_large_publish_packs_ten_bodies_a_message_and_sends_several_batches_at_once(client):
    # GIVEN 1,000 wake-ups for one queue (what one drain locks)
    name = f"wide-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    driver.url(name)
    calls = SqsCalls(client)
    try:
        # WHEN they are published
        driver.publish(name, [{"n": n} for n in range(1000)])
    finally:
        driver.close()
    # THEN they went as 100 messages of 10 bodies in 10 full batches, several in flight at once
    assert calls.made == {"SendMessageBatch": 10}
    assert calls.max_in_flight > 1
    assert calls.max_in_flight <= sqs.MAX_IN_FLIGHT
    raw = _raw_bodies(client, driver.url(name))
    assert len(raw) == 100 and {len(body[sqs.PACK_KEY]) for body in raw} == {10}
    # AND every body is in one of them, once
    assert sorted(b["n"] for body in raw for b in body[sqs.PACK_KEY]) == list(range(1000))


def test_a_small_publish_sends_one_message_per_body(client):
    # GIVEN 7 bodies (one batch's worth): idle consumers should be able to share them
    name = f"small-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    driver.publish(name, [{"n": n} for n in range(7)])
    # THEN each is a message of its own, as sent
    assert sorted(b["n"] for b in _raw_bodies(client, driver.url(name))) == list(range(7))


def test_receive_and_ack_of_packed_messages_take_one_call_each(client):
    # GIVEN 100 bodies waiting (10 messages of 10)
    name = f"tens-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    driver.publish(name, [{"n": n} for n in range(100)])
    calls = SqsCalls(client)
    # WHEN a consumer asks for 100 and acks them
    got = driver.receive(name, max_messages=100, wait_seconds=0)
    driver.ack(got)
    driver.close()
    # THEN it got each body as a message of its own from one receive, deleted in one batch
    assert sorted(m.body["n"] for m in got) == list(range(100))
    assert len({m.message_id for m in got}) == 100
    assert len({m.receipt for m in got}) == 10
    assert calls.made == {"ReceiveMessage": 1, "DeleteMessageBatch": 1}
    assert drain_sqs(client, driver.url(name)) == []


def test_a_packed_message_is_deleted_only_once_every_body_is_acked(client):
    # GIVEN 20 bodies received as packed messages (10 messages of 2)
    name = f"partial-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    driver.publish(name, [{"n": n} for n in range(20)])
    got = driver.receive(name, max_messages=20, wait_seconds=0, visibility_seconds=1)
    assert sorted(m.body["n"] for m in got) == list(range(20))
    # WHEN all but one body are acked (say a task still running when its worker died)
    kept = got[0]
    driver.ack([m for m in got if m is not kept])
    # THEN after the visibility the message holding that body comes back whole, and only it
    time.sleep(1.2)
    again = driver.receive(name, max_messages=20, wait_seconds=0)
    siblings = [m for m in got if m.receipt == kept.receipt]
    assert sorted(m.body["n"] for m in again) == sorted(m.body["n"] for m in siblings)
    assert {m.receive_count for m in again} == {2}
    # AND once those are acked the queue is empty (the other message went at the first ack)
    driver.ack(again)
    driver.close()
    assert drain_sqs(client, driver.url(name)) == []


def test_acking_a_body_of_an_expired_packed_delivery_deletes_nothing(client):
    # GIVEN a packed message whose visibility ran out while one of its bodies was still being worked on,
    # and which another consumer received meanwhile
    name = f"expired-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver, other = sqs.SqsDriver(client), sqs.SqsDriver(client)
    driver.publish(name, [{"n": n} for n in range(20)])
    got = driver.receive(name, max_messages=20, wait_seconds=0, visibility_seconds=1)
    late = got[0]
    driver.ack([m for m in got if m is not late])
    time.sleep(1.2)
    again = other.receive(name, max_messages=20, wait_seconds=0, visibility_seconds=30)
    assert sorted(m.body["n"] for m in again) == sorted(m.body["n"] for m in got if m.receipt == late.receipt)
    assert driver.receive(name, wait_seconds=0) == []  # its next receive forgets the expired delivery
    # WHEN the late body is acked
    calls = SqsCalls(client)
    driver.ack([late])
    # THEN nothing is deleted (that ack cannot know what the other consumer still holds)
    assert calls.made == {}
    # AND the other consumer's delivery stays usable: its acks empty the queue
    other.ack(again)
    driver.close()
    other.close()
    assert drain_sqs(client, driver.url(name)) == []


def test_bodies_received_over_max_messages_are_given_back_once(client):
    # GIVEN 100 bodies in packed messages of 10
    name = f"surplus-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    driver.publish(name, [{"n": n} for n in range(100)])
    # WHEN consumers take 3 at a time, acking nothing until the end
    seen: list = []
    for _ in range(100):
        got = driver.receive(name, max_messages=3, wait_seconds=0, visibility_seconds=60)
        assert len(got) <= 3
        seen += got
        if len(seen) >= 100:
            break
    # THEN every body was handed out exactly once, and acking them empties the queue
    assert sorted(m.body["n"] for m in seen) == list(range(100))
    driver.ack(seen)
    driver.close()
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
    # GIVEN 40 bodies whose last two are too large to pack (each travels alone) and together over
    # what SQS takes per call (1 MiB): they make the second batch
    name = f"part-{uuid.uuid4().hex[:8]}"
    make_sqs_queue(client, name)
    driver = sqs.SqsDriver(client)
    bodies = [{"n": n, "pad": "x" * (600_000 if n in (38, 39) else 0)} for n in range(40)]
    # WHEN they are published
    with pytest.raises(errors.PublishError) as caught:
        driver.publish(name, bodies)
    driver.close()
    # THEN the error names exactly the rejected ones, and the first batch arrived
    assert caught.value.details["indexes"] == [38, 39]
    assert caught.value.details["queue"] == name
    assert sorted(b["n"] for b in drain_sqs(client, driver.url(name))) == list(range(38))


def _raw_bodies(client, url: str) -> list:
    """The SQS messages' bodies as stored (packed ones not unpacked)."""
    bodies = []
    while got := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in got]
    return bodies


def test_a_queue_that_feeds_a_function_gets_one_message_per_body(client, moto_url, make_settings):
    # GIVEN the configured driver, and the sink queue (its Lambda reads SQS's records, not this driver)
    driver = factory.driver_for(make_settings(queue_driver="sqs", aws_endpoint_url=moto_url))
    url = make_sqs_queue(client, platform.SINK_QUEUE)
    client.purge_queue(QueueUrl=url)
    marker = uuid.uuid4().hex
    try:
        # WHEN a backlog of pointers is published to it
        driver.publish(platform.SINK_QUEUE, [{"batch_id": f"{marker}-{n}"} for n in range(30)])
    finally:
        driver.close()
    # THEN each pointer is an SQS message of its own, as the function expects
    raw = _raw_bodies(client, url)
    assert sorted(body["batch_id"] for body in raw) == sorted(f"{marker}-{n}" for n in range(30))
