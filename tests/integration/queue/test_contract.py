"""The QueueDriver contract: one suite, run against memory, pgqueue (real Postgres) and SQS (moto server).

What consumers rely on: bodies round-trip, long polls wake on publish and give
up on time, a delivery is invisible to others until its visibility runs out,
ack/extend act on the current delivery only (a stale receipt is never an
error), and a message received max-receives times goes to the dead store
without blocking anything else.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from trace_core.queue import errors

from tests.integration.queue.conftest import MAX_RECEIVES, Backend


def test_published_bodies_come_back_exactly_with_first_receive_count(backend: Backend):
    # GIVEN two bodies, one nested with unicode
    bodies = [{"task_id": "a", "attempt": 0}, {"nested": {"list": [1, 2.5, None, True]}, "text": "Ωμέγα ✓"}]
    # WHEN they are published and received
    backend.driver.publish(backend.queue, bodies)
    got = _receive_all(backend, expected=2)
    # THEN each body comes back as sent, first delivery, with distinct ids and receipts
    assert sorted((m.body for m in got), key=_canonical) == sorted(bodies, key=_canonical)
    assert {m.receive_count for m in got} == {1}
    assert {m.queue for m in got} == {backend.queue}
    assert len({m.message_id for m in got}) == 2
    assert len({m.receipt for m in got}) == 2


def test_receive_on_an_empty_queue_gives_up_after_the_wait(backend: Backend):
    started = time.monotonic()
    got = backend.driver.receive(backend.queue, wait_seconds=1)
    elapsed = time.monotonic() - started
    assert got == []
    assert 0.8 <= elapsed < 3.0


def test_a_long_poll_wakes_when_a_message_is_published(backend: Backend):
    # GIVEN a receiver waiting up to 10 s
    timer = threading.Timer(0.3, backend.driver.publish, args=(backend.queue, [{"n": 1}]))
    started = time.monotonic()
    timer.start()
    try:
        # WHEN a message is published 0.3 s later
        got = backend.driver.receive(backend.queue, wait_seconds=10)
    finally:
        timer.cancel()
    # THEN the receive returns it promptly, long before the wait ends
    assert [m.body for m in got] == [{"n": 1}]
    assert time.monotonic() - started < 2.5


def test_a_delivery_is_invisible_until_its_visibility_runs_out_then_redelivered(backend: Backend):
    backend.driver.publish(backend.queue, [{"n": 1}])
    first = _receive_all(backend, expected=1, visibility_seconds=2)[0]
    # WHILE it is in flight nobody else receives it
    assert backend.driver.receive(backend.queue, wait_seconds=0, visibility_seconds=2) == []
    # AFTER the visibility timeout it comes back, as a new delivery
    time.sleep(2.2)
    again = _receive_all(backend, expected=1)[0]
    assert again.message_id == first.message_id
    assert again.body == first.body
    assert again.receive_count == 2
    assert again.receipt != first.receipt


def test_an_acked_message_is_never_delivered_again(backend: Backend):
    backend.driver.publish(backend.queue, [{"n": 1}, {"n": 2}])
    got = _receive_all(backend, expected=2, visibility_seconds=1)
    backend.driver.ack(got)
    time.sleep(1.2)
    assert backend.driver.receive(backend.queue, wait_seconds=0) == []


def test_a_stale_receipt_is_not_an_error_and_the_current_delivery_stays_usable(backend: Backend):
    # GIVEN a message delivered twice (the first delivery's visibility ran out)
    backend.driver.publish(backend.queue, [{"n": 1}])
    stale = _receive_all(backend, expected=1, visibility_seconds=0)[0]
    current = _receive_all(backend, expected=1, visibility_seconds=30)[0]
    # WHEN the old delivery is extended and acked THEN nothing raises
    backend.driver.extend(stale, 60)
    backend.driver.ack([stale])
    # AND the current delivery can still be acked, after which the queue is empty
    backend.driver.ack([current])
    assert backend.driver.receive(backend.queue, wait_seconds=0, visibility_seconds=0) == []


def test_extend_keeps_a_message_invisible_past_its_first_visibility(backend: Backend):
    backend.driver.publish(backend.queue, [{"n": 1}])
    message = _receive_all(backend, expected=1, visibility_seconds=1)[0]
    # WHEN a heartbeat extends it to 4 s
    backend.driver.extend(message, 4)
    time.sleep(1.5)
    # THEN it is still invisible after the first second
    assert backend.driver.receive(backend.queue, wait_seconds=0) == []
    # AND extend(0) hands it back at once (a negative acknowledgement)
    backend.driver.extend(message, 0)
    assert [m.body for m in _receive_all(backend, expected=1)] == [{"n": 1}]


def test_a_poison_message_goes_to_the_dead_store_after_max_receives_and_blocks_nothing(backend: Backend):
    # GIVEN a poison message that no consumer ever acks
    backend.driver.publish(backend.queue, [{"poison": True}])
    for attempt in range(1, MAX_RECEIVES + 1):
        got = _receive_all(backend, expected=1, visibility_seconds=0)
        assert got[0].receive_count == attempt
    # AND a good message published behind it
    backend.driver.publish(backend.queue, [{"good": True}])
    # WHEN the next receive runs
    got = _receive_all(backend, expected=1)
    # THEN the good message is delivered and the poison one is dead, never delivered again
    assert [m.body for m in got] == [{"good": True}]
    backend.driver.ack(got)
    assert backend.driver.receive(backend.queue, wait_seconds=0, visibility_seconds=0) == []
    assert backend.dead_bodies() == [{"poison": True}]


def test_dead_letter_moves_a_delivery_to_the_dead_store_at_once(backend: Backend):
    backend.driver.publish(backend.queue, [{"task_id": "not-a-uuid"}])
    message = _receive_all(backend, expected=1, visibility_seconds=0)[0]
    backend.driver.dead_letter(message, "malformed wake-up: task_id is not a UUID")
    assert backend.driver.receive(backend.queue, wait_seconds=0, visibility_seconds=0) == []
    assert backend.dead_bodies() == [{"task_id": "not-a-uuid"}]


def test_batches_are_bounded_and_every_message_arrives_once(backend: Backend):
    backend.driver.publish(backend.queue, [{"n": n} for n in range(25)])
    seen: list[int] = []
    for _ in range(20):
        got = backend.driver.receive(backend.queue, max_messages=10, wait_seconds=0.5)
        assert len(got) <= 10
        seen.extend(m.body["n"] for m in got)
        backend.driver.ack(got)
        if len(seen) >= 25:
            break
    assert sorted(seen) == list(range(25))


def test_concurrent_receivers_never_share_a_delivery(backend: Backend):
    backend.driver.publish(backend.queue, [{"n": n} for n in range(40)])
    seen: list[int] = []
    lock = threading.Lock()

    def consume() -> None:
        idle = 0
        while idle < 2:
            got = backend.driver.receive(backend.queue, max_messages=5, wait_seconds=0, visibility_seconds=60)
            idle = 0 if got else idle + 1
            with lock:
                seen.extend(m.body["n"] for m in got)

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(seen) == list(range(40))  # all of them, none twice


def test_bad_receive_arguments_name_the_field(backend: Backend):
    with pytest.raises(errors.QueueError) as caught:
        backend.driver.receive(backend.queue, max_messages=0)
    assert caught.value.details["field"] == "max_messages"


def _receive_all(backend: Backend, *, expected: int, visibility_seconds: int = 30) -> list:
    """Receive until ``expected`` messages arrived (SQS may return fewer than asked per call)."""
    got: list = []
    deadline = time.monotonic() + 10
    while len(got) < expected and time.monotonic() < deadline:
        got.extend(
            backend.driver.receive(
                backend.queue, max_messages=expected - len(got), wait_seconds=1, visibility_seconds=visibility_seconds
            )
        )
    assert len(got) == expected, f"{backend.name}: expected {expected} messages, got {len(got)}"
    return got


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True)
