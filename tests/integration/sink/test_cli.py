"""`trace-lite sink publish | status | replay` against the test database."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from trace_core.cli import main
from trace_core.sink import errors, service
from typer.testing import CliRunner

from tests.integration.sink.conftest import event, pointer


@pytest.fixture
def cli(monkeypatch, clean, tmp_path) -> CliRunner:
    monkeypatch.setenv("TRACE_DATABASE_URL", clean)
    monkeypatch.setenv("TRACE_HOME", str(tmp_path / "home"))
    return CliRunner()


def test_publish_names_bad_records_and_stages_good_ones(cli, tmp_path, outbox):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(event("a")) + "\n" + json.dumps(event("b", severity="loud")) + "\n")
    refused = cli.invoke(main.app, ["sink", "publish", "--sink", "alert_events", "--file", str(bad)])
    assert refused.exit_code == 2 and "records[1].severity" in refused.output
    assert outbox() == []

    good = tmp_path / "good.json"
    good.write_text(json.dumps([event("a"), event("b")]))
    published = cli.invoke(main.app, ["sink", "publish", "--sink", "alert_events", "--file", str(good)])
    assert published.exit_code == 0, published.output
    assert "2 records staged" in published.output and len(outbox()) == 1


def test_status_shows_rejections_and_replay_requeues_only_unapplied_batches(
    cli, clean, publish, stage_raw, sink_store, outbox
):
    # GIVEN an applied batch and a rejected one
    applied = publish("alert_events", [event("a")])
    service.consume(sink_store, pointer(applied), message_id="m")
    rejected = stage_raw([{"dedupe_key": "x"}])
    with pytest.raises(errors.BatchRejectedError):
        service.consume(sink_store, pointer(rejected), message_id="m")
    with psycopg.connect(clean) as conn:
        conn.execute("DELETE FROM state.outbox")
    # WHEN the status is asked for THEN it counts both and says why one was refused
    shown = cli.invoke(main.app, ["sink", "status", "--json"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert {(r["status"], r["batches"]) for r in report["batches"]} == {("applied", 1), ("rejected", 1)}
    assert "records[0].alert_definition_id" in report["rejected"][0]["last_error"]
    # WHEN all three ids are replayed THEN only the rejected batch gets a new wake-up
    unknown = uuid.uuid4()
    replayed = cli.invoke(main.app, ["sink", "replay", str(applied), str(rejected), str(unknown)])
    assert replayed.exit_code == 0, replayed.output
    assert "requeued 1 batch" in replayed.output and str(unknown) in replayed.output
    assert outbox() == [{"queue": "trace-sink", "payload": {"batch_id": str(rejected), "sink": "alert_events"}}]
