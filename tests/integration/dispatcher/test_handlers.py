"""The three Lambda handlers driven by the sample events in tests/events, against real Postgres."""

from __future__ import annotations

import dataclasses
import importlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from trace_core import settings as settings_mod
from trace_core.db import pool as pool_mod
from trace_core.dispatcher import deps, models, tasks

from tests.integration.dispatcher import conftest as helpers

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_TASK = "0b3f6c1e-8d2a-4c1e-9f3a-2d5e7a9b1c40"


@dataclasses.dataclass
class Context:
    function_name: str = "trace-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:trace-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def event(name: str, task_id: object = None, body: Any = None, **changes: Any) -> dict[str, Any]:
    """A sample event, with the task id in its path replaced and its JSON body replaced or changed."""
    e = json.loads((EVENTS / f"{name}.json").read_text())
    if task_id is not None:
        for holder in (e, e["requestContext"]["http"]):
            key = "rawPath" if holder is e else "path"
            holder[key] = holder[key].replace(SAMPLE_TASK, str(task_id))
    if body is not None:
        e["body"] = body if isinstance(body, str) else json.dumps(body)
    elif changes:
        e["body"] = json.dumps({**json.loads(e["body"]), **changes})
    return e


@pytest.fixture
def call(conn, database_url: str) -> Iterator[Callable[..., dict[str, Any]]]:
    """Call a handler (by function folder name) with its dependencies pointed at the test database."""
    driver = helpers.RecordingDriver()
    injected = deps.Deps(settings_mod.load({}, database_url=database_url), pool_mod.get(database_url), driver=driver)

    def invoke(function: str, e: dict[str, Any]) -> dict[str, Any]:
        handler = importlib.import_module(f"functions.{function}.handler")
        return handler.lambda_handler(e, Context())

    invoke.driver = driver  # type: ignore[attr-defined]
    with deps.injected(injected):
        yield invoke


def api(call, e: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = call("dispatcher_api", e)
    return response["statusCode"], json.loads(response["body"])


def test_the_api_runs_a_task_through_its_life(call):
    # WHEN a task is created THEN 201 with the queued task; a repeat returns the same task
    status, task = api(call, event("apigw_create_task"))
    assert status == 201 and task["status"] == "queued" and task["operator"] == "noop"
    assert api(call, event("apigw_create_task"))[1]["task_id"] == task["task_id"]
    task_id = task["task_id"]
    # WHEN a worker claims it THEN a lease for attempt 1
    status, lease = api(call, event("apigw_claim_task", task_id))
    assert status == 200 and lease["attempt"] == 1 and lease["task"]["status"] == "running"
    token = lease["lease_token"]
    # WHEN it heartbeats and completes THEN the task is completed with its outputs
    status, beat = api(call, event("apigw_heartbeat_task", task_id, lease_token=token))
    assert status == 200 and beat["lease_token"] == token
    status, done = api(call, event("apigw_complete_task_success", task_id, lease_token=token))
    assert status == 200 and (done["status"], done["outputs"]) == ("completed", {"rows": 42})
    # AND a retried identical completion answers the same
    assert api(call, event("apigw_complete_task_success", task_id, lease_token=token)) == (200, done)
    assert api(call, event("apigw_get_task", task_id)) == (200, done)
    status, listed = api(call, event("apigw_list_tasks"))
    assert status == 200 and listed == {"tasks": []}  # the sample lists queued tasks only


def test_claim_next_failure_and_abandon_routes(call, conn):
    made = tasks.create(conn, models.CreateTask(operator="noop", backoff_base_ms=0))
    status, body = api(call, event("apigw_claim_next"))
    assert status == 200 and [lease["task"]["task_id"] for lease in body["leases"]] == [str(made.task_id)]
    token = body["leases"][0]["lease_token"]
    status, failed = api(call, event("apigw_complete_task_failure", made.task_id, lease_token=token))
    assert status == 200 and (failed["status"], failed["last_error"]) == ("queued", "rpc timeout")
    lease = tasks.claim(conn, made.task_id, worker_id="w")
    status, given_back = api(call, event("apigw_abandon_task", made.task_id, attempt=2,
                                         lease_token=str(lease.lease_token)))
    assert status == 200 and given_back["status"] == "queued"


def test_conflicts_say_409_with_the_current_attempt(call, conn):
    made = tasks.create(conn, models.CreateTask(operator="noop"))
    lease = tasks.claim(conn, made.task_id, worker_id="w")
    # WHEN a second worker claims a running task THEN 409 not_claimable with status and attempt
    status, body = api(call, event("apigw_claim_task", made.task_id))
    assert status == 409
    assert body["error"]["code"] == "not_claimable"
    assert (body["error"]["status"], body["error"]["current_attempt"]) == ("running", 1)
    # WHEN a stale token completes THEN 409 stale_attempt with the current attempt
    status, body = api(call, event("apigw_complete_task_success", made.task_id, lease_token=str(uuid.uuid4())))
    assert (status, body["error"]["code"], body["error"]["current_attempt"]) == (409, "stale_attempt", 1)
    # WHEN the lease ran out THEN 409 lease_expired
    helpers.advance(conn, 31)
    status, body = api(call, event("apigw_heartbeat_task", made.task_id, lease_token=str(lease.lease_token)))
    assert (status, body["error"]["code"], body["error"]["current_attempt"]) == (409, "lease_expired", 1)


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("apigw_claim_task", {"worker_id": "w", "lease_seconds": 0}, "lease_seconds"),
        ("apigw_claim_task", {"worker_id": "w", "lease_seconds": "long"}, "lease_seconds"),
        ("apigw_claim_task", {"lease_seconds": 30}, "worker_id"),
        ("apigw_create_task", {"payload": {}}, "operator"),
        ("apigw_create_task", {"operator": "noop", "max_attempts": "three"}, "max_attempts"),
        ("apigw_create_task", {"operator": "noop", "surprise": 1}, "surprise"),
        ("apigw_create_task", {"operator": "Not An Operator"}, "operator"),
        ("apigw_heartbeat_task", {"attempt": 1, "lease_token": "not-a-uuid"}, "lease_token"),
        ("apigw_complete_task_success", {"attempt": 1, "lease_token": SAMPLE_TASK, "result": {"outcome": "maybe"}},
         "result"),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(call, name, body, field):
    status, answer = api(call, event(name, body=body))
    assert status == 422
    assert answer["error"]["code"] == "invalid_request"
    assert answer["error"]["field"].split(".")[0] == field, answer


def test_bad_ids_and_unknown_tasks(call):
    status, body = api(call, event("apigw_get_task", "not-a-uuid"))
    assert (status, body["error"]["field"]) == (422, "task_id")
    status, body = api(call, event("apigw_get_task", uuid.uuid4()))
    assert (status, body["error"]["code"]) == (404, "task_not_found")
    status, body = api(call, event("apigw_claim_task", uuid.uuid4()))
    assert status == 404
    e = event("apigw_list_tasks")
    e["rawQueryString"], e["queryStringParameters"] = "status=sleeping", {"status": "sleeping"}
    status, body = api(call, e)
    assert (status, body["error"]["field"]) == (422, "status")
    e = event("apigw_get_task")
    e["rawPath"] = e["requestContext"]["http"]["path"] = "/v2/nothing"
    assert api(call, e)[0] == 404


def test_an_unreachable_database_is_503(database_url):
    # GIVEN a pool whose server never answers
    dead = ConnectionPool("postgresql://127.0.0.1:1/none?connect_timeout=1", min_size=0, max_size=1, timeout=1,
                          kwargs={"row_factory": dict_row}, open=True)
    try:
        with deps.injected(deps.Deps(settings_mod.load({}, database_url=database_url), dead)):
            handler = importlib.import_module("functions.dispatcher_api.handler")
            response = handler.lambda_handler(event("apigw_get_task"), Context())
    finally:
        dead.close()
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "unavailable"


def test_drainer_and_reaper_handlers_on_a_schedule(call, conn):
    # GIVEN two created tasks, one of them leased and expired
    a = tasks.create(conn, models.CreateTask(operator="noop", backoff_base_ms=0))
    tasks.create(conn, models.CreateTask(operator="noop"))
    tasks.claim(conn, a.task_id, worker_id="w")
    helpers.advance(conn, 31)
    # WHEN the scheduled reaper runs THEN it reaps the one lease
    assert call("lease_reaper", event("eventbridge_scheduled")) == {"reaped": 1}
    # WHEN the scheduled drainer runs THEN the two creations and the retry are published
    assert call("outbox_drainer", event("eventbridge_scheduled")) == {"published": 3}
    assert sorted(b["attempt"] for b in call.driver.bodies()) == [0, 0, 1]
    assert call("outbox_drainer", event("eventbridge_scheduled")) == {"published": 0}


def test_concurrent_requests_from_threads_each_get_their_own_answer(call):
    """The Lite host serves requests from several threads; a shared resolver would mix up events."""
    import threading

    answers: dict[int, tuple[int, dict[str, Any]]] = {}

    def one(i: int) -> None:
        answers[i] = api(call, event("apigw_create_task", body={"operator": "noop", "payload": {"i": i}}))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert {i: (status, body["payload"]["i"]) for i, (status, body) in answers.items()} == {
        i: (201, i) for i in range(8)}
