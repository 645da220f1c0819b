"""The local Lambda host in-process: the real dispatcher handlers over HTTP, schedules, SQS triggers, workers."""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from trace_core.lite import host as host_mod
from trace_core.queue import pgqueue

from tests.integration.worker.conftest import wait_for


@pytest.fixture
def clean(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE state.task_attempts, state.dead_tasks, state.outbox, state.dataset_versions, "
                     "state.tasks, state.jobs, state.queue_messages, state.queue_dead CASCADE")
    return database_url


@pytest.fixture
def lite_host(clean: str, make_settings) -> Iterator[host_mod.Host]:
    """The default host (dispatcher API, drainer, reaper, one worker) on a free port."""
    settings = make_settings(database_url=clean, host_tick_seconds=0.2, lease_seconds=2, host_workers=1)
    with host_mod.running(settings, port=0) as host:
        yield host


def _api(host: host_mod.Host) -> httpx.Client:
    return httpx.Client(base_url=host.url or "", timeout=10)


def test_a_task_created_over_http_is_run_by_the_hosts_worker(lite_host: host_mod.Host):
    with _api(lite_host) as api:
        # WHEN a noop task is created through the API
        started = time.monotonic()
        created = api.post("/v1/tasks", json={"operator": "noop", "payload": {"n": 1}})
        assert created.status_code == 201, created.text
        task_id = created.json()["task_id"]
        # THEN the host's drainer publishes its wake-up and the worker completes it, well within a tick or two
        done = wait_for(lambda: (r := api.get(f"/v1/tasks/{task_id}").json())["status"] == "completed" and r)
        assert time.monotonic() - started < 5
        assert done["outputs"] == {"noop": True, "attempt": 1}
    health = httpx.get(lite_host.url + host_mod.HEALTH_PATH).json()
    assert health["functions"]["dispatcher_api"]["invocations"] >= 2
    assert health["workers"][0]["succeeded"] == 1


def test_bad_requests_get_the_apis_error_answers(lite_host: host_mod.Host):
    with _api(lite_host) as api:
        invalid = api.post("/v1/tasks", json={"operator": "Not Valid!"})
        assert invalid.status_code == 422
        assert invalid.json()["error"]["field"] == "operator"
        assert api.get(f"/v1/tasks/{uuid.uuid4()}").status_code == 404
        assert api.get("/no/such/route").status_code == 404
        listed = api.get("/v1/tasks", params={"status": "completed", "limit": 5})
        assert listed.status_code == 200 and "tasks" in listed.json()


def test_a_dead_workers_late_completion_is_rejected_with_409(lite_host: host_mod.Host):
    # GIVEN a task on a queue no host worker serves, claimed over the API by a worker that then dies
    with _api(lite_host) as api:
        task_id = api.post("/v1/tasks", json={"operator": "noop", "queue": "nobody-listens",
                                              "backoff_base_ms": 0}).json()["task_id"]
        dead = api.post(f"/v1/tasks/{task_id}/claim", json={"worker_id": "doomed", "lease_seconds": 1}).json()
        # WHEN its lease expires, the host's reaper requeues it, and a healthy worker claims and completes it
        wait_for(lambda: api.get(f"/v1/tasks/{task_id}").json()["status"] == "queued", timeout=10)
        live = api.post(f"/v1/tasks/{task_id}/claim", json={"worker_id": "healthy", "lease_seconds": 30}).json()
        assert live["attempt"] == 2
        ok = api.post(
            f"/v1/tasks/{task_id}/complete",
            json={
                "attempt": 2,
                "lease_token": live["lease_token"],
                "result": {"outcome": "success", "outputs": {"by": "healthy"}},
            },
        )
        assert ok.status_code == 200, ok.text
        # THEN the dead worker's late completion is refused as stale, and the task keeps the winner's outputs
        late = api.post(
            f"/v1/tasks/{task_id}/complete",
            json={
                "attempt": 1,
                "lease_token": dead["lease_token"],
                "result": {"outcome": "success", "outputs": {"by": "doomed"}},
            },
        )
        assert late.status_code == 409
        assert late.json()["error"]["code"] in ("stale_attempt", "lease_expired")
        assert late.json()["error"]["current_attempt"] == 2
        assert api.get(f"/v1/tasks/{task_id}").json()["outputs"] == {"by": "healthy"}


_SQS_FUNCTION = '''
"""A test SQS consumer: Powertools batch processing; bodies with "fail" fail; "raise" fails the invocation."""
import json, os
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import SQSEvent

processor = BatchProcessor(event_type=EventType.SQS)
LOG = os.path.join(os.path.dirname(__file__), "seen.jsonl")


def record_handler(record):
    body = json.loads(record.body)
    with open(LOG, "a") as out:
        out.write(json.dumps({"body": body, "receive_count": int(record.attributes.approximate_receive_count),
                              "source": record.event_source_arn}) + "\\n")
    if body.get("fail"):
        raise ValueError("this record fails")


def lambda_handler(event, context):
    SQSEvent(event)  # the data class must accept the event as AWS shapes it
    if any(json.loads(r["body"]).get("raise") for r in event["Records"]):
        raise RuntimeError("the whole invocation fails")
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
'''


@pytest.fixture
def sqs_function(tmp_path: Path) -> tuple[Path, str, Path]:
    root = tmp_path / f"lite_fns_{uuid.uuid4().hex[:8]}"
    (root / "sqs_echo").mkdir(parents=True)
    (root / "sqs_echo" / "handler.py").write_text(textwrap.dedent(_SQS_FUNCTION))
    return root, "sqs_echo", root / "sqs_echo" / "seen.jsonl"


def _seen(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_queue_messages_become_sqs_batches_and_only_batch_item_failures_come_back(
    clean: str, make_settings, sqs_function
):
    root, name, log = sqs_function
    queue = f"sink-{uuid.uuid4().hex[:8]}"
    spec = host_mod.HostSpec(functions_root=root, api_function=None, workers=0,
                             queue_triggers=(host_mod.QueueTrigger(queue, name, batch_size=10, visibility_seconds=1),))
    producer = pgqueue.PgQueueDriver(clean, listen=False)
    try:
        with host_mod.running(make_settings(database_url=clean), spec):
            # WHEN two good records and one failing record arrive
            producer.publish(queue, [{"n": 1}, {"n": 2, "fail": True}, {"n": 3}])
            # THEN the good ones are processed once and acked; the failing one comes back after its visibility
            wait_for(lambda: any(s["body"].get("fail") and s["receive_count"] >= 2 for s in _seen(log)), timeout=10)
            seen = _seen(log)
            assert sorted(s["body"]["n"] for s in seen if not s["body"].get("fail")) == [1, 3]
            assert {s["source"] for s in seen} == {f"arn:aws:sqs:us-east-1:123456789012:{queue}"}
            assert producer.depth(queue)["visible"] + producer.depth(queue)["in_flight"] == 1

            # WHEN an invocation raises THEN nothing of its batch is acked (all of it comes back)
            other = f"{queue}-x"
            spec_x = host_mod.HostSpec(functions_root=root, api_function=None, workers=0,
                                       queue_triggers=(host_mod.QueueTrigger(other, name, visibility_seconds=30),))
            with host_mod.running(make_settings(database_url=clean), spec_x):
                producer.publish(other, [{"n": 10}, {"raise": True}])
                wait_for(lambda: producer.depth(other)["in_flight"] == 2, timeout=10)
                time.sleep(0.5)
                assert producer.depth(other) == {"visible": 0, "in_flight": 2}
    finally:
        producer.close()


def test_a_missing_function_is_named_with_the_fix(clean: str, make_settings, tmp_path: Path):
    spec = host_mod.HostSpec(functions_root=tmp_path / "nowhere", api_function="dispatcher_api", workers=0)
    settings = make_settings(database_url=clean)
    with pytest.raises(host_mod.errors.ComponentError) as caught, host_mod.running(settings, spec):
        pass
    assert "dispatcher_api has no handler at" in caught.value.message
    assert "lambda_handler" in caught.value.details["fix"]
