"""Batch validation and normalisation: a batch is valid as a whole or rejected as a whole, naming the field."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_core.sink import core, errors, models

DEFINITION = "6c1f1d5e-2b8a-4f0e-9d3c-7a5b4e3f2d10"


def event(key: str = "k1", **fields: Any) -> dict[str, Any]:
    return {"dedupe_key": key, "alert_definition_id": DEFINITION, "event_time": "2026-01-01T00:00:00Z"} | fields


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def rejected(sink: str, records: Any) -> errors.InvalidBatchError:
    with pytest.raises(errors.InvalidBatchError) as caught:
        core.plan(sink, records)
    return caught.value


def test_alert_events_are_typed_and_every_other_sink_is_generic():
    assert core.target_of("alert_events") == "alert_events"
    assert core.target_of("integrity_signals") == "sink_outputs"


def test_a_valid_batch_becomes_normalised_rows():
    # GIVEN alert events with optional chain context (an upper-case hash, an offset timestamp)
    records = [event("a", severity="critical", chain_id=10143, block_number=7, tx_hash="0x" + "AB" * 32,
                     event_time="2026-01-01T02:00:00+02:00", payload={"amount": "10"}), event("b")]
    # WHEN planned THEN each is one row, hashes lower-cased, payload defaulting to an empty object
    plan = core.plan("alert_events", records)
    assert plan.target == "alert_events" and plan.collapsed == 0
    first, second = plan.rows
    assert first["tx_hash"] == "0x" + "ab" * 32 and first["payload"] == {"amount": "10"}
    assert dt.datetime.fromisoformat(first["event_time"]) == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert second["payload"] == {} and second["severity"] is None


@pytest.mark.parametrize(
    ("record", "field", "expected"),
    [
        ({"alert_definition_id": DEFINITION, "event_time": "2026-01-01T00:00:00Z"}, "records[0].dedupe_key",
         "stable across retries"),
        (event(org_id=str(uuid.uuid4())), "records[0].org_id", "payload"),
        (event(event_time="2026-01-01T00:00:00"), "records[0].event_time", "UTC offset"),
        (event(event_time=1767225600), "records[0].event_time", "RFC 3339"),
        (event(block_number="7"), "records[0].block_number", "non-negative integer"),
        (event(block_number=-1), "records[0].block_number", "non-negative integer"),
        (event(chain_id=True), "records[0].chain_id", "positive integer"),
        (event(severity="page-everyone"), "records[0].severity", "info, warning, critical"),
        (event(tx_hash="0x12"), "records[0].tx_hash", "64 hex digits"),
        (event(alert_definition_id="not-a-uuid"), "records[0].alert_definition_id", "UUID"),
        (event(payload=[1, 2]), "records[0].payload", "JSON object"),
        (event(key=""), "records[0].dedupe_key", "1 to 512 characters"),
        (event(key="line\nbreak"), "records[0].dedupe_key", "without control characters"),
        (event(payload={"note": "nul\x00byte"}), "records[0]", "U+0000"),
        (event(payload={"ratio": float("nan")}), "records[0]", "finite"),
        (event(payload={"blob": "x" * (core.MAX_RECORD_BYTES + 1)}), "records[0]", "bytes of JSON"),
        ("just a string", "records[0]", "JSON object"),
        (event(payload={"when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}), "records[0]", "JSON values only"),
        (event(payload={1: "int key"}), "records[0]", "JSON object keys"),
        (event(payload=_nested(core.MAX_DEPTH + 1)), "records[0]", f"at most {core.MAX_DEPTH} levels"),
    ],
)
def test_a_bad_record_rejects_the_batch_naming_the_field(record, field, expected):
    error = rejected("alert_events", [record])
    assert error.field == field, error.message
    assert expected in error.expected, error.expected
    assert error.message.startswith(f"{field}:")


def test_deep_but_bounded_nesting_is_fine_and_hostile_nesting_is_refused_without_recursion():
    assert core.plan("alert_events", [event(payload=_nested(core.MAX_DEPTH - 2))]).rows
    assert rejected("alert_events", [event(payload=_nested(100_000))]).field == "records[0]"


def test_every_problem_is_collected_and_the_good_records_do_not_save_the_batch():
    error = rejected("alert_events", [event("ok"), event("bad", block_number="x"), {"dedupe_key": "worse"}])
    assert [p["field"] for p in error.problems] == [
        "records[1].block_number", "records[2].alert_definition_id", "records[2].event_time"]
    assert "(and 2 more)" in error.message


@pytest.mark.parametrize(
    ("records", "expected"),
    [({"dedupe_key": "k"}, "JSON array"), ("[]", "JSON array"), ([], "1 to 1000"),
     ([event(str(i)) for i in range(core.MAX_BATCH_RECORDS + 1)], "1 to 1000")],
)
def test_the_batch_itself_must_be_a_bounded_array(records, expected):
    error = rejected("alert_events", records)
    assert error.field == "records" and expected in error.expected


def test_exact_duplicates_in_a_batch_collapse_to_one_row():
    plan = core.plan("alert_events", [event("a"), event("b"), event("a")])
    assert [row["dedupe_key"] for row in plan.rows] == ["a", "b"] and plan.collapsed == 1


def test_one_dedupe_key_with_two_contents_is_a_producer_bug_that_rejects_the_batch():
    error = rejected("alert_events", [event("a", severity="info"), event("b"), event("a", severity="critical")])
    assert error.field == "records[2].dedupe_key"
    assert "repeats records[0].dedupe_key" in error.message


def test_generic_sinks_take_a_dedupe_key_and_an_object():
    plan = core.plan("integrity_signals", [{"dedupe_key": "x", "record": {"ok": True}}])
    assert plan.target == "sink_outputs" and plan.rows == ({"dedupe_key": "x", "record": {"ok": True}},)
    error = rejected("integrity_signals", [{"dedupe_key": "x", "record": [1]}])
    assert error.field == "records[0].record" and error.expected == "a JSON object"
    assert rejected("integrity_signals", [{"dedupe_key": "x", "value": 1}]).field == "records[0].record"


@pytest.mark.parametrize("sink", ["", "Alert", "1st", "a-b", "x" * 64, None])
def test_a_bad_sink_name_is_refused(sink):
    with pytest.raises(errors.InvalidSinkInputError) as caught:
        core.plan(sink, [event()])
    assert caught.value.field == "sink" and "^[a-z][a-z0-9_]{0,62}$" in caught.value.expected


def _batch(**fields: Any) -> models.StagedBatch:
    base = {"batch_id": uuid.uuid4(), "sink": "alert_events", "org_id": None, "task_id": None, "attempt": None,
                "records": [event()], "record_count": 1, "status": "pending", "rejections": 0, "last_error": None,
                "created_at": dt.datetime.now(dt.UTC), "applied_at": None}
    return models.StagedBatch(**(base | fields))


def test_a_message_is_checked_against_its_batch():
    batch = _batch()
    message = models.SinkMessage(batch_id=batch.batch_id, sink="alert_events")
    assert core.decide(message, batch).apply is True
    assert core.decide(message, _batch(batch_id=batch.batch_id, status="rejected")).apply is True
    applied = _batch(batch_id=batch.batch_id, status="applied", applied_at=dt.datetime.now(dt.UTC))
    assert core.decide(message, applied).apply is False
    with pytest.raises(errors.BatchNotFoundError):
        core.decide(message, None)
    with pytest.raises(errors.MalformedMessageError) as caught:
        core.decide(models.SinkMessage(batch_id=batch.batch_id, sink="other"), batch)
    assert caught.value.field == "sink"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=30))
def test_a_plan_holds_each_dedupe_key_once(keys):
    # GIVEN any batch in which a key may repeat with identical content
    plan = core.plan("alert_events", [event(k, partition_key=k) for k in keys])
    # THEN it has one row per distinct key, in first-seen order, and counts the rest as collapsed
    assert [row["dedupe_key"] for row in plan.rows] == list(dict.fromkeys(keys))
    assert plan.collapsed == len(keys) - len(set(keys))
