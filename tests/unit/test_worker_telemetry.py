"""Workers publish task outcomes as CloudWatch EMF lines when asked to (the failure-rate alarm's input)."""

from __future__ import annotations

import json

from trace_core.worker import telemetry


def test_outcomes_are_flushed_as_emf(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "worker")
    telemetry.TaskMetrics(True).record(completed=3, failed=1)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["TasksCompleted"] == [3.0] or line["TasksCompleted"] == 3.0
    assert line["TasksFailed"] in ([1.0], 1.0)
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Trace"
    assert line["service"] == "worker"


def test_nothing_is_printed_when_disabled_or_idle(capsys):
    telemetry.TaskMetrics(False).record(completed=3, failed=1)
    telemetry.TaskMetrics(True).record(completed=0, failed=0)
    assert capsys.readouterr().out == ""
