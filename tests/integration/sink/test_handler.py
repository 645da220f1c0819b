"""functions/sink/handler.py on the sample events: the partial batch response names exactly the failed messages."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from trace_core.dispatcher import deps
from trace_core.lite import host_events, host_functions

from tests.integration.sink.conftest import ROOT, event

GOOD_ALERTS = uuid.UUID("0b6f3c2e-4d1a-4c8e-9f00-5a7e1d2c3b41")
GOOD_SIGNALS = uuid.UUID("7d2e9a10-3b5c-4f6d-8e71-2c9b0a4d5e62")
MALFORMED = uuid.UUID("c3d2e1f0-9a8b-4c7d-a6e5-f4d3c2b1a098")


def sample(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "tests" / "events" / name).read_text())


@pytest.fixture
def sink(pool, make_settings) -> Iterator[host_functions.Function]:
    """The real handler, loaded as the Lite host loads it, with the test database injected."""
    with deps.injected(deps.Deps(make_settings(), pool)):
        yield host_functions.load(ROOT / "functions", "sink")


def invoke(function: host_functions.Function, event: dict[str, Any]) -> set[str] | None:
    result = function.invoke(event)
    return host_events.batch_failures(result, [r["messageId"] for r in event["Records"]])


def publish_as(clean: str, batch_id: uuid.UUID, sink: str, records: list[dict[str, Any]], publish) -> None:
    """Publish through the producer path, then give the batch the id the sample event points at."""
    staged = publish(sink, records)
    with psycopg.connect(clean) as conn:
        conn.execute("UPDATE state.sink_batches SET batch_id = %s WHERE batch_id = %s", (batch_id, staged))


def test_the_batch_sample_lands_and_its_replay_adds_nothing(clean, publish, sink, rows):
    # GIVEN the two batches the sample's messages point at
    publish_as(clean, GOOD_ALERTS, "alert_events", [event("a"), event("b")], publish)
    publish_as(clean, GOOD_SIGNALS, "integrity_signals", [{"dedupe_key": "s", "record": {"ok": True}}], publish)
    event_ = sample("sqs_sink_batch.json")
    # WHEN the handler gets the sample THEN no item fails and the rows are there
    assert invoke(sink, event_) == set()
    assert [r["dedupe_key"] for r in rows()] == ["a", "b"]
    assert [r["record"] for r in rows("sink_outputs")] == [{"ok": True}]
    # WHEN the same event is delivered again THEN it still succeeds and writes nothing more
    assert invoke(sink, event_) == set()
    assert len(rows()) == 2 and len(rows("sink_outputs")) == 1


def test_the_malformed_sample_fails_exactly_its_poison_messages(clean, publish, stage_raw, sink, rows, batch_row):
    # GIVEN the good batch, and a staged batch with one malformed record among good ones
    publish_as(clean, GOOD_ALERTS, "alert_events", [event("a")], publish)
    stage_raw([event("x"), event("y", event_time="not a time")], batch_id=MALFORMED)
    event_ = sample("sqs_sink_malformed.json")
    # WHEN the handler gets the sample
    failed = invoke(sink, event_)
    # THEN every message but the good pointer is reported failed (so SQS retries, then dead-letters, them)
    assert failed == {r["messageId"] for r in event_["Records"][1:]}
    # AND the good batch landed while the malformed one wrote nothing and says why
    assert [r["dedupe_key"] for r in rows()] == ["a"]
    assert batch_row(MALFORMED)["status"] == "rejected"
    assert "records[1].event_time" in batch_row(MALFORMED)["last_error"]


def test_a_batch_of_only_poison_is_a_partial_response_not_a_crash(sink):
    event_ = sample("sqs_sink_malformed.json")
    event_["Records"] = event_["Records"][1:3]
    assert invoke(sink, event_) == {r["messageId"] for r in event_["Records"]}
