"""Reading wake-up bodies: only {"task_id": "<uuid>", ...} points at a task."""

from __future__ import annotations

import uuid

import pytest
from trace_core.worker import wakeups


def test_a_wakeup_round_trips():
    task_id = uuid.uuid4()
    assert wakeups.task_id_of(wakeups.body_for(task_id, 2)) == task_id


@pytest.mark.parametrize("body", [{}, {"task_id": None}, {"task_id": 7}, {"task_id": "not-a-uuid"},
                                  {"taskId": str(uuid.uuid4())}, {"task_id": ["x"]}])
def test_anything_else_is_malformed(body):
    assert wakeups.task_id_of(body) is None
