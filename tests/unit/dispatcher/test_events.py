"""The dispatcher's sample events under tests/events/: the files the tests and `sam local invoke` use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "tests" / "events"
SAMPLES = sorted(p.name for p in EVENTS.glob("*.json") if p.name.startswith(("apigw_", "eventbridge_")))


def test_there_is_a_sample_for_every_dispatcher_route_and_the_schedule():
    assert {"apigw_create_task.json", "apigw_claim_task.json", "apigw_heartbeat_task.json",
            "apigw_complete_task_success.json", "apigw_get_task.json", "apigw_list_tasks.json",
            "eventbridge_scheduled.json"} <= set(SAMPLES)


def test_there_is_one_copy_of_the_samples():
    assert not (ROOT / "events").exists(), "the sample events live in tests/events/ only: keep no second copy"


@pytest.mark.parametrize("name", SAMPLES)
def test_the_samples_have_the_shapes_aws_sends(name):
    event = json.loads((EVENTS / name).read_text())
    if name.startswith("apigw_"):
        assert event["version"] == "2.0" and event["rawPath"].startswith("/v1/")
    else:
        assert event["detail-type"] == "Scheduled Event"
