"""The Lite host's table is generated from the platform declaration (trace_core.platform)."""

from __future__ import annotations

import pytest
from trace_core import errors, platform, settings
from trace_core.lite import host

PLATFORM = platform.PLATFORM


@pytest.fixture
def lite_settings() -> settings.Settings:
    return settings.load({
        "TRACE_DATABASE_URL": "postgresql://trace@127.0.0.1:5432/trace", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "TRACE_HOST_TICK_SECONDS": "2",
    })


def test_every_declared_function_is_hosted_with_its_trigger(lite_settings):
    spec = host.default_spec(lite_settings)
    assert spec.function_names == ["dispatcher_api", "outbox_drainer", "lease_reaper", "chain_sync_planner", "sink"]
    assert set(spec.function_names) == set(PLATFORM.functions)
    assert spec.api_function == "dispatcher_api"
    # schedules tick on Lite's clock, never faster than their floor; the drainer also wakes on outbox commits
    assert {s.function: (s.every_seconds, s.wake_on_outbox) for s in spec.schedules} == {
        "outbox_drainer": (2.0, True), "lease_reaper": (2.0, False), "chain_sync_planner": (5.0, False),
    }
    assert [(t.queue, t.function, t.batch_size) for t in spec.queue_triggers] == [(platform.SINK_QUEUE, "sink", 10)]
    assert spec.timeouts == {name: float(f.timeout_seconds) for name, f in PLATFORM.functions.items()}


def test_each_function_gets_its_own_settings_from_its_own_environment(lite_settings):
    spec = host.default_spec(lite_settings)
    for name, own in spec.settings.items():
        assert own.deployable == name
        assert own.database_url == lite_settings.database_url, name
        assert own.aws_endpoint_url == lite_settings.aws_endpoint_url, name
    # a setting the function does not declare is not passed: it keeps its default
    assert "queue_driver" in PLATFORM.functions["outbox_drainer"].settings
    assert "queue_driver" not in PLATFORM.functions["sink"].settings
    sqs = host.default_spec(settings.load({"TRACE_DATABASE_URL": "postgresql://x", "TRACE_QUEUE_DRIVER": "sqs"}))
    assert (sqs.settings["outbox_drainer"].queue_driver, sqs.settings["sink"].queue_driver) == ("sqs", "pgqueue")


def test_a_new_function_is_one_entry_and_the_host_runs_it(lite_settings):
    # GIVEN the declaration with one more queue and a function it feeds, and one more scheduled function
    grown = PLATFORM.extended(
        queues=[platform.Queue("trace-alerts")],
        functions=[
            platform.Function("alerts", "alerts", 30, platform.QueueSource("trace-alerts", batch_size=3),
                              ("database_url",)),
            platform.Function("tip", "tip", 20, platform.Schedule(local_floor_seconds=3.0), ("database_url",)),
        ],
    )
    # WHEN the host's table is generated from it
    spec = host.default_spec(lite_settings, grown)
    # THEN the host feeds and ticks them, each with its own settings and timeout
    assert len(spec.function_names) == len(PLATFORM.functions) + 2
    assert ("trace-alerts", "alerts", 3) in [(t.queue, t.function, t.batch_size) for t in spec.queue_triggers]
    assert ("tip", 3.0) in [(s.function, s.every_seconds) for s in spec.schedules]
    assert spec.settings["alerts"].deployable == "alerts" and spec.timeouts["tip"] == 20.0


def test_a_second_http_function_is_refused(lite_settings):
    grown = PLATFORM.extended(functions=[
        platform.Function("users", "users", 10, platform.Http((platform.HttpRoute("ANY", "/v1/users"),)), ()),
    ])
    with pytest.raises(errors.ComponentError) as caught:
        host.default_spec(lite_settings, grown)
    assert "dispatcher_api, users" in str(caught.value)
