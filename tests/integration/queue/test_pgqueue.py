"""pgqueue beyond the shared contract: LISTEN/NOTIFY wake-ups, and no silent delay when the listener dies."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from trace_core.queue import pgqueue


@pytest.fixture
def queue() -> str:
    return f"pg-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_driver(database_url: str) -> Iterator:
    made: list[pgqueue.PgQueueDriver] = []

    def make(driver_class: type = pgqueue.PgQueueDriver, **kwargs) -> pgqueue.PgQueueDriver:
        driver = driver_class(database_url, **kwargs)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.close()


class _BlockableListener(pgqueue.PgQueueDriver):
    """A driver whose listener cannot reconnect while ``blocked`` is set (the database refuses it)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.blocked = threading.Event()

    def _listener_connection(self):
        if self.blocked.is_set():
            raise psycopg.OperationalError("connection refused (blocked by the test)")
        return super()._listener_connection()


def _listening(driver: pgqueue.PgQueueDriver, queue: str) -> int:
    """Start the listener (any receive does) and wait until it is up; returns its backend pid."""
    driver.receive(queue, wait_seconds=0)
    deadline = time.monotonic() + 10
    while driver.listener_pid is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert driver.listener_pid is not None
    return driver.listener_pid


def _receive_after_publish(consumer, producer, queue: str, delay: float) -> tuple[list, float]:
    """Publish from ``producer`` ``delay`` s after ``consumer`` starts a long poll; returns (messages, latency)."""
    published_at: list[float] = []

    def publish() -> None:
        published_at.append(time.monotonic())
        producer.publish(queue, [{"n": 1}])

    timer = threading.Timer(delay, publish)
    timer.start()
    try:
        got = consumer.receive(queue, wait_seconds=20)
        received_at = time.monotonic()
    finally:
        timer.cancel()
    return got, received_at - published_at[0]


def test_a_notification_from_another_process_wakes_the_receiver_long_before_the_poll_interval(make_driver, queue):
    # GIVEN a consumer polling only every 10 s, and a producer with its own connections
    consumer = make_driver(poll_interval=10.0)
    producer = make_driver(listen=False)
    _listening(consumer, queue)
    # WHEN the producer publishes while the consumer waits
    got, latency = _receive_after_publish(consumer, producer, queue, delay=0.3)
    # THEN NOTIFY delivered the wake-up: pickup in far less than the poll interval
    assert [m.body for m in got] == [{"n": 1}]
    assert latency < 2.0


def test_a_killed_listener_never_delays_pickup_beyond_the_poll_interval_and_reconnects(
    make_driver, queue, database_url
):
    # GIVEN a consumer whose LISTEN connection is up, polling every 0.5 s as a fallback
    consumer = make_driver(poll_interval=0.5, driver_class=_BlockableListener)
    producer = make_driver(listen=False)
    old_pid = _listening(consumer, queue)
    # WHEN its listener's backend is terminated (the pg-boss #850 failure) and cannot reconnect for now
    consumer.blocked.set()
    with psycopg.connect(database_url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (old_pid,)).fetchone()[0] is True
    deadline = time.monotonic() + 5
    while consumer.listening and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not consumer.listening
    # AND a message is published while no notification can arrive
    got, latency = _receive_after_publish(consumer, producer, queue, delay=0.05)
    # THEN the bounded poll still picks it up within the poll interval
    assert [m.body for m in got] == [{"n": 1}]
    assert latency < 0.5 + 1.0  # slack for a loaded machine; without the bounded poll it is 20 s
    assert not consumer.listening  # it really was the poll, not a notification
    # AND once the database lets it, the listener comes back on a new backend
    consumer.blocked.clear()
    deadline = time.monotonic() + 10
    while (consumer.listener_pid in (None, old_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert consumer.listener_pid not in (None, old_pid)
    with psycopg.connect(database_url) as conn:
        apps = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND pid = %s",
            (pgqueue.LISTENER_APPLICATION, consumer.listener_pid),
        ).fetchone()[0]
    assert apps == 1


def test_without_listen_receives_poll_at_the_interval(make_driver, queue):
    consumer = make_driver(listen=False, poll_interval=0.3)
    producer = make_driver(listen=False)
    got, latency = _receive_after_publish(consumer, producer, queue, delay=0.1)
    assert [m.body for m in got] == [{"n": 1}]
    assert latency < 0.3 + 1.0
    assert consumer.listener_pid is None


def test_max_receives_can_differ_per_queue(make_driver, queue):
    strict, lenient = f"{queue}-strict", f"{queue}-lenient"
    driver = make_driver(max_receives={strict: 1, lenient: 4}, listen=False)
    driver.publish(strict, [{"q": "strict"}])
    driver.publish(lenient, [{"q": "lenient"}])
    assert len(driver.receive(strict, wait_seconds=0, visibility_seconds=0)) == 1
    assert driver.receive(strict, wait_seconds=0, visibility_seconds=0) == []
    for _ in range(4):
        assert len(driver.receive(lenient, wait_seconds=0, visibility_seconds=0)) == 1
    assert [d["body"] for d in driver.dead(strict)] == [{"q": "strict"}]
    assert driver.dead(lenient) == []


def test_depth_counts_waiting_and_in_flight_messages(make_driver, queue):
    driver = make_driver(listen=False)
    driver.publish(queue, [{"n": n} for n in range(3)])
    driver.receive(queue, max_messages=1, wait_seconds=0)
    assert driver.depth(queue) == {"visible": 2, "in_flight": 1}


def test_close_releases_a_waiting_receiver(make_driver, queue):
    driver = make_driver(poll_interval=30)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(driver.receive(queue, wait_seconds=30)))
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    driver.close()
    thread.join(timeout=5)
    assert result == [[]]
    assert time.monotonic() - started < 2
