"""Lite: the host's default spec drains trace-sink through the sink Lambda; on pgqueue, poison ends in queue_dead."""

from __future__ import annotations

import dataclasses

import psycopg
from psycopg.rows import dict_row
from trace_core.lite import host as host_mod
from trace_core.lite import provision

from tests.integration.sink.conftest import event
from tests.integration.worker.conftest import wait_for


def test_the_default_host_sinks_published_batches_and_buries_poison_on_pgqueue(
    clean, publish, stage_raw, rows, batch_row, make_settings
):
    settings = make_settings(database_url=clean, host_tick_seconds=0.2, host_workers=0)
    spec = host_mod.default_spec(settings)
    # GIVEN the Lite host as `trace-lite up` runs it: the sink function on trace-sink, like the CDK's event source
    (trigger,) = [t for t in spec.queue_triggers if t.function == "sink"]
    assert (trigger.queue, trigger.batch_size) == ("trace-sink", 10)
    # (a one-second visibility only so that the poison's receives take seconds, not minutes)
    spec = dataclasses.replace(spec, queue_triggers=(dataclasses.replace(trigger, visibility_seconds=1),))
    with host_mod.running(settings, spec, port=0):
        # WHEN a producer publishes twice the same events, and a malformed batch is staged with its pointer
        publish("alert_events", [event("a"), event("b")])
        publish("alert_events", [event("b"), event("c")])
        malformed = stage_raw([event("x", payload="not an object")], queue="trace-sink")
        # THEN the events land once each, through the outbox, pgqueue and the sink Lambda
        wait_for(lambda: len(rows()) == 3, timeout=15)
        # AND the malformed batch's message is buried after its max receives, having written nothing
        with psycopg.connect(clean, row_factory=dict_row) as conn:
            dead = wait_for(lambda: conn.execute(
                "SELECT body, receive_count FROM state.queue_dead WHERE queue = 'trace-sink'").fetchall(), timeout=30)
    assert sorted(r["dedupe_key"] for r in rows()) == ["a", "b", "c"]
    assert dead == [{"body": {"batch_id": str(malformed), "sink": "alert_events"},
                     "receive_count": provision.QUEUES["trace-sink"]}]
    assert batch_row(malformed)["rejections"] == provision.QUEUES["trace-sink"]
