"""The sink's sample events: the same files under tests/events and events/ (`sam local invoke`), shaped as SQS sends them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from trace_core.sink import errors, models

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ("sqs_sink_batch.json", "sqs_sink_malformed.json")


@pytest.mark.parametrize("name", SAMPLES)
def test_sam_events_match_the_test_events_and_are_sqs_events(name):
    assert (ROOT / "events" / name).read_bytes() == (ROOT / "tests" / "events" / name).read_bytes()
    event = json.loads((ROOT / "tests" / "events" / name).read_text())
    parsed = SqsModel.model_validate(event)
    assert len({r.messageId for r in parsed.Records}) == len(parsed.Records)
    for record in event["Records"]:
        assert record["eventSourceARN"].endswith(":trace-sink")
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()


def test_the_batch_sample_holds_only_pointers():
    event = json.loads((ROOT / "tests" / "events" / "sqs_sink_batch.json").read_text())
    sinks = [models.parse_message(r["body"]).sink for r in event["Records"]]
    assert sinks == ["alert_events", "integrity_signals"]


def test_the_malformed_sample_has_one_good_pointer_and_each_kind_of_poison():
    event = json.loads((ROOT / "tests" / "events" / "sqs_sink_malformed.json").read_text())
    outcomes = []
    for record in event["Records"]:
        try:
            models.parse_message(record["body"])
            outcomes.append("pointer")
        except errors.MalformedMessageError as exc:
            outcomes.append(exc.field)
    # not JSON, a bad sink name; then pointers to a batch never staged and to a malformed staged batch
    assert outcomes == ["pointer", "body", "sink", "pointer", "pointer"]
