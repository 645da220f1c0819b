"""The sink's sample events (tests/events/, which `sam local invoke` reads too), shaped as SQS sends them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from trace_core.sink import errors, models

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES = ("sqs_sink_batch.json", "sqs_sink_malformed.json")


@pytest.mark.parametrize("name", SAMPLES)
def test_the_samples_are_sqs_events_from_the_sink_queue(name):
    event = json.loads((EVENTS / name).read_text())
    parsed = SqsModel.model_validate(event)
    assert len({r.messageId for r in parsed.Records}) == len(parsed.Records)
    for record in event["Records"]:
        assert record["eventSourceARN"].endswith(":trace-sink")
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()


def test_the_batch_sample_holds_only_pointers():
    event = json.loads((EVENTS / "sqs_sink_batch.json").read_text())
    sinks = [models.parse_message(r["body"]).sink for r in event["Records"]]
    assert sinks == ["alert_events", "integrity_signals"]


def test_the_malformed_sample_has_one_good_pointer_and_each_kind_of_poison():
    event = json.loads((EVENTS / "sqs_sink_malformed.json").read_text())
    outcomes = []
    for record in event["Records"]:
        try:
            models.parse_message(record["body"])
            outcomes.append("pointer")
        except errors.MalformedMessageError as exc:
            outcomes.append(exc.field)
    # not JSON, a bad sink name; then pointers to a batch never staged and to a malformed staged batch
    assert outcomes == ["pointer", "body", "sink", "pointer", "pointer"]
