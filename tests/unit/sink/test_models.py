"""The queue message is a pointer: anything else is refused with the field named."""

from __future__ import annotations

import json
import uuid

import pytest
from trace_core.sink import errors, models

BATCH = "0b6f3c2e-4d1a-4c8e-9f00-5a7e1d2c3b41"


def test_a_pointer_parses():
    message = models.parse_message(json.dumps({"batch_id": BATCH, "sink": "alert_events"}))
    assert message.batch_id == uuid.UUID(BATCH) and message.sink == "alert_events"


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ("not a sink pointer", "body", '{"batch_id": "<uuid>", "sink": "<name>"}'),
        ("[1, 2]", "body", '{"batch_id": "<uuid>", "sink": "<name>"}'),
        (json.dumps({"sink": "alert_events"}), "batch_id", "UUID"),
        (json.dumps({"batch_id": "nope", "sink": "alert_events"}), "batch_id", "UUID"),
        (json.dumps({"batch_id": BATCH, "sink": "Alert Events!"}), "sink", "^[a-z][a-z0-9_]{0,62}$"),
        (json.dumps({"batch_id": BATCH, "sink": "alert_events", "records": []}), "records", "no such field"),
        (json.dumps({"batch_id": BATCH, "sink": "alert_events", "pad": "x" * 2000}), "body", "at most 1024 bytes"),
    ],
)
def test_anything_but_a_pointer_is_malformed_and_names_the_field(body, field, expected):
    with pytest.raises(errors.MalformedMessageError) as caught:
        models.parse_message(body)
    assert caught.value.field == field
    assert expected in caught.value.expected or expected in caught.value.message
    assert caught.value.message.startswith(f"{field}:")


def test_field_paths_read_like_the_json():
    assert models.field_path(("records", 3, "payload", "x")) == "records[3].payload.x"
    assert models.field_path(("event_time",), "records[0]") == "records[0].event_time"
    assert models.field_path(()) == "(root)"
