"""publish and consume on real Postgres: duplicates never add rows, a malformed batch writes nothing."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from trace_core.sink import errors, service

from tests.integration.sink.conftest import event, make_attempt, make_org, pointer


# ---------------------------------------------------------------- publish
def test_publish_stages_the_batch_and_its_pointer_in_the_callers_transaction(clean, outbox, batch_row):
    # GIVEN a producer transaction that publishes a batch and then rolls back
    with psycopg.connect(clean) as conn:
        service.publish(conn, "alert_events", [event("a")])
        conn.rollback()
    # THEN neither a batch nor a wake-up is left behind
    assert outbox() == []
    # WHEN it commits THEN the batch is staged and the outbox holds only a pointer to it
    with psycopg.connect(clean) as conn:
        batch_id = service.publish(conn, "alert_events", [event("a"), event("a")])
    assert outbox() == [{"queue": "trace-sink", "payload": {"batch_id": str(batch_id), "sink": "alert_events"}}]
    staged = batch_row(batch_id)
    assert staged["status"] == "pending" and staged["record_count"] == 1  # the exact duplicate collapsed


def test_publish_refuses_a_bad_record_before_writing_anything(publish, outbox):
    with pytest.raises(errors.InvalidBatchError) as caught:
        publish("alert_events", [event("a"), event("b", event_time="yesterday")])
    assert caught.value.field == "records[1].event_time"
    assert "RFC 3339" in caught.value.expected
    assert outbox() == []


def test_publish_names_a_producer_that_does_not_exist(publish, outbox):
    with pytest.raises(errors.InvalidSinkInputError) as caught:
        publish("alert_events", [event("a")], task_id=uuid.uuid4(), attempt=1)
    assert caught.value.field == "task_id"
    with pytest.raises(errors.InvalidSinkInputError) as caught:
        publish("alert_events", [event("a")], task_id=uuid.uuid4())
    assert caught.value.field == "attempt"
    assert outbox() == []


# ---------------------------------------------------------------- consume
def test_a_batch_lands_with_trusted_attribution_and_provenance(clean, publish, sink_store, rows, batch_row):
    # GIVEN an org's evaluation attempt that published two events
    org = make_org(clean, "acme")
    task_id, attempt = make_attempt(clean)
    batch_id = publish("alert_events", [event("a", severity="warning", block_number=7), event("b")],
                       org_id=org, task_id=task_id, attempt=attempt)
    # WHEN the sink consumes its message
    applied = service.consume(sink_store, pointer(batch_id), message_id="m-1")
    # THEN both rows are written, owned by the org, traced to the attempt and the message
    assert (applied.inserted, applied.duplicates, applied.already_applied) == (2, 0, False)
    found = rows()
    assert [r["dedupe_key"] for r in found] == ["a", "b"]
    assert {(r["org_id"], r["producer_task_id"], r["producer_attempt"], r["batch_id"], r["message_id"])
            for r in found} == {(org, task_id, attempt, batch_id, "m-1")}
    assert found[0]["severity"] == "warning" and found[0]["block_number"] == 7
    staged = batch_row(batch_id)
    assert staged["status"] == "applied" and staged["inserted"] == 2 and staged["applied_by_message"] == "m-1"


def test_a_replayed_message_is_a_no_op(publish, sink_store, rows):
    batch_id = publish("alert_events", [event("a"), event("b")])
    service.consume(sink_store, pointer(batch_id), message_id="m-1")
    # WHEN the same message arrives again (at-least-once delivery, a DLQ redrive)
    again = service.consume(sink_store, pointer(batch_id), message_id="m-2")
    # THEN nothing is written and the rows keep the first delivery's message id
    assert again.already_applied and again.inserted == 0
    assert [(r["dedupe_key"], r["message_id"]) for r in rows()] == [("a", "m-1"), ("b", "m-1")]


def test_a_retried_producer_publishing_the_same_events_adds_no_row(publish, sink_store, rows):
    # GIVEN an evaluation that ran twice (a retry) and published overlapping batches
    first = publish("alert_events", [event("a"), event("b")])
    second = publish("alert_events", [event("b"), event("c"), event("a")])
    # WHEN both are consumed
    service.consume(sink_store, pointer(first), message_id="m-1")
    applied = service.consume(sink_store, pointer(second), message_id="m-2")
    # THEN each dedupe key is stored once, the first write winning
    assert (applied.inserted, applied.duplicates) == (1, 2)
    assert sorted((r["dedupe_key"], r["batch_id"]) for r in rows()) == [("a", first), ("b", first), ("c", second)]


def test_duplicates_inside_one_staged_batch_are_one_row(stage_raw, sink_store, rows):
    # GIVEN a batch staged without the producer's collapsing, holding the same event three times
    batch_id = stage_raw([event("a"), event("b"), event("a"), event("a")])
    # WHEN it is applied THEN each dedupe key is one row
    applied = service.consume(sink_store, pointer(batch_id), message_id="m")
    assert applied.inserted == 2 and [r["dedupe_key"] for r in rows()] == ["a", "b"]


def test_concurrent_deliveries_of_one_message_write_once(publish, sink_store, rows):
    batch_id = publish("alert_events", [event(str(n)) for n in range(50)])
    barrier = threading.Barrier(4)
    results = []

    def deliver(n: int) -> None:
        barrier.wait()
        results.append(service.consume(sink_store, pointer(batch_id), message_id=f"m-{n}"))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(r.already_applied for r in results) == [False, True, True, True]
    assert len(rows()) == 50


def test_the_same_dedupe_key_in_two_orgs_is_two_events(clean, publish, sink_store, rows):
    acme, other = make_org(clean, "acme"), make_org(clean, "other")
    for org in (acme, other, acme):
        service.consume(sink_store, pointer(publish("alert_events", [event("same")], org_id=org)), message_id="m")
    assert sorted(str(r["org_id"]) for r in rows()) == sorted([str(acme), str(other)])


def test_generic_sinks_write_sink_outputs_unique_per_sink(publish, sink_store, rows):
    for sink in ("integrity_signals", "integrity_signals", "monitor_events"):
        batch_id = publish(sink, [{"dedupe_key": "k", "record": {"sink": sink}}])
        service.consume(sink_store, pointer(batch_id, sink), message_id="m")
    assert [(r["sink"], r["record"]) for r in rows("sink_outputs")] == [
        ("integrity_signals", {"sink": "integrity_signals"}), ("monitor_events", {"sink": "monitor_events"})]
    assert rows() == []


# ---------------------------------------------------------------- fail closed
def test_a_malformed_batch_writes_nothing_and_says_why(stage_raw, sink_store, rows, batch_row):
    # GIVEN a staged batch whose third record is malformed (it skipped the producer's validation)
    batch_id = stage_raw([event("a"), event("b"), event("c", block_number="seven")])
    # WHEN the sink consumes its message, twice
    for receive in (1, 2):
        with pytest.raises(errors.BatchRejectedError) as caught:
            service.consume(sink_store, pointer(batch_id), message_id=f"m-{receive}")
    # THEN no row of the batch is written, not even the good ones, and the batch records why
    assert caught.value.field == "records[2].block_number"
    assert rows() == []
    staged = batch_row(batch_id)
    assert staged["status"] == "rejected" and staged["rejections"] == 2
    assert "records[2].block_number" in staged["last_error"]


def test_a_repaired_batch_applies_when_its_message_is_redriven(clean, stage_raw, sink_store, rows):
    batch_id = stage_raw([event("a"), {"dedupe_key": "b"}])
    with pytest.raises(errors.BatchRejectedError):
        service.consume(sink_store, pointer(batch_id), message_id="m-1")
    with psycopg.connect(clean) as conn:
        conn.execute("UPDATE state.sink_batches SET records = records - 1 WHERE batch_id = %s", (batch_id,))
    applied = service.consume(sink_store, pointer(batch_id), message_id="m-redriven")
    assert applied.inserted == 1 and [r["dedupe_key"] for r in rows()] == ["a"]


@pytest.mark.parametrize(
    ("body", "error"),
    [("not a sink pointer", errors.MalformedMessageError),
     (pointer(uuid.uuid4()), errors.BatchNotFoundError),
     (pointer(uuid.uuid4(), "Bad Name"), errors.MalformedMessageError)],
)
def test_poison_messages_raise_and_write_nothing(body, error, sink_store, rows):
    with pytest.raises(error):
        service.consume(sink_store, body, message_id="m")
    assert rows() == []


def test_a_pointer_naming_another_sink_is_refused(publish, sink_store, rows):
    batch_id = publish("alert_events", [event("a")])
    with pytest.raises(errors.MalformedMessageError) as caught:
        service.consume(sink_store, pointer(batch_id, "monitor_events"), message_id="m")
    assert caught.value.field == "sink"
    assert rows() == [] and rows("sink_outputs") == []
