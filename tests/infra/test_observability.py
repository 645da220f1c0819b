"""Alarms on DLQ depth, Lambda errors and throttles, task failure rate and outbox age; one dashboard."""

from __future__ import annotations

import json
from typing import Any

from trace_cdk import names

from tests.infra.conftest import Synthesized


def alarms(synth: Synthesized) -> list[dict[str, Any]]:
    return [a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()]


def _dimension(alarm: dict[str, Any], name: str) -> Any:
    return next(d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == name)


def test_every_alarm_notifies_the_alarm_topic(synthesized: Synthesized) -> None:
    topic = synthesized.logical_id(synthesized.stack.observability.topic)
    found = alarms(synthesized)
    assert found
    for alarm in found:
        assert alarm["AlarmActions"] == [{"Ref": topic}], alarm["AlarmDescription"]
        assert alarm["TreatMissingData"] == "notBreaching"
    (policy,) = synthesized.of_type("AWS::SNS::TopicPolicy").values()
    assert any(
        s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s)
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_each_dlq_alarms_on_its_first_message(synthesized: Synthesized) -> None:
    dlq_ids = {synthesized.logical_id(q) for q in synthesized.stack.queues.dlqs.values()}
    watched = {
        _dimension(a, "QueueName")["Fn::GetAtt"][0]
        for a in alarms(synthesized)
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert watched == dlq_ids
    assert all(
        a["Threshold"] == 0 and a["ComparisonOperator"] == "GreaterThanThreshold"
        for a in alarms(synthesized) if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    )


def test_each_platform_lambda_alarms_on_errors_and_throttles(synthesized: Synthesized) -> None:
    function_ids = {synthesized.logical_id(f) for f in synthesized.stack.functions.functions.values()}
    for metric in ("Errors", "Throttles"):
        watched = {
            _dimension(a, "FunctionName")["Ref"]
            for a in alarms(synthesized)
            if a.get("Namespace") == "AWS/Lambda" and a.get("MetricName") == metric
        }
        assert watched == function_ids, metric


def test_task_failure_rate_and_outbox_age_watch_the_platform_metrics(synthesized: Synthesized) -> None:
    stage = synthesized.stage
    by_id = synthesized.stack.observability.alarms
    rates = {}
    for name in ("worker", "delivery"):
        alarm = synthesized.resources[synthesized.logical_id(by_id[f"{name.title()}TaskFailureRate"])]["Properties"]
        metrics = {m["Id"]: m for m in alarm["Metrics"]}
        expression = next(m["Expression"] for m in metrics.values() if "Expression" in m)
        stats = {
            m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]["Metric"]
            for m in metrics.values()
            if "MetricStat" in m
        }
        assert set(stats) == {names.METRIC_TASKS_FAILED, names.METRIC_TASKS_COMPLETED}
        for metric in stats.values():
            assert metric["Namespace"] == names.METRICS_NAMESPACE
            assert metric["Dimensions"] == [{"Name": "service", "Value": names.service_name(name)}]
        assert "100 *" in expression and alarm["Threshold"] == stage.task_failure_rate_percent
        rates[name] = alarm
    outbox = synthesized.resources[synthesized.logical_id(by_id["OutboxAge"])]["Properties"]
    assert outbox["MetricName"] == names.METRIC_OUTBOX_OLDEST_AGE and outbox["Namespace"] == names.METRICS_NAMESPACE
    assert outbox["Dimensions"] == [{"Name": "service", "Value": names.service_name(names.OUTBOX_DRAINER)}]
    assert outbox["Threshold"] == stage.outbox_age_seconds


def test_one_dashboard_shows_every_alarm(synthesized: Synthesized) -> None:
    (dashboard,) = synthesized.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(synthesized.stack.resolve(dashboard["Properties"]["DashboardBody"]))
    for alarm in synthesized.of_type("AWS::CloudWatch::Alarm"):
        assert alarm in body
