"""The sample events under tests/events are the same files `sam local invoke` uses under events/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted(p.name for p in (ROOT / "tests" / "events").glob("*.json")
                 if p.name.startswith(("apigw_", "eventbridge_")))


def test_there_is_a_sample_for_every_dispatcher_route_and_the_schedule():
    assert {"apigw_create_task.json", "apigw_claim_task.json", "apigw_heartbeat_task.json",
            "apigw_complete_task_success.json", "apigw_get_task.json", "apigw_list_tasks.json",
            "eventbridge_scheduled.json"} <= set(SAMPLES)


@pytest.mark.parametrize("name", SAMPLES)
def test_sam_events_match_the_test_events(name):
    assert (ROOT / "events" / name).read_bytes() == (ROOT / "tests" / "events" / name).read_bytes()
    event = json.loads((ROOT / "events" / name).read_text())
    if name.startswith("apigw_"):
        assert event["version"] == "2.0" and event["rawPath"].startswith("/v1/")
    else:
        assert event["detail-type"] == "Scheduled Event"
