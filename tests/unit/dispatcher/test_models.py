"""Domain models: bad input names its field; payloads stay small."""

from __future__ import annotations

import pytest
from trace_core.dispatcher import errors, models


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "operator"),
        ({"operator": "Bad Name"}, "operator"),
        ({"operator": "noop", "max_attempts": 101}, "max_attempts"),
        ({"operator": "noop", "backoff_base_ms": -1}, "backoff_base_ms"),
        ({"operator": "noop", "queue": "no spaces"}, "queue"),
        ({"operator": "noop", "idempotency_key": ""}, "idempotency_key"),
        ({"operator": "noop", "payload": {"x": "y" * models.MAX_PAYLOAD_BYTES}}, "payload"),
        ({"operator": "noop", "extra": 1}, "extra"),
    ],
)
def test_create_task_rejects_bad_fields_by_name(data, field):
    with pytest.raises(errors.InvalidTaskError) as info:
        models.parse(models.CreateTask, data)
    assert info.value.field == field
    assert field in str(info.value)


def test_defaults():
    request = models.parse(models.CreateTask, {"operator": "noop"})
    assert (request.max_attempts, request.backoff_base_ms, request.queue, request.payload) == (
        3, 1000, "trace-tasks", {})
