"""Every bad request to the Dispatcher API gets a 4xx naming the field, and changes nothing (issue 15, items 2-3).

Requests go the way the Lite host sends them (HTTP bytes -> HTTP API event ->
``api.resolve``) against real Postgres.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from trace_core.dispatcher import models, tasks, wire

from tests.integration.dispatcher import http_api
from tests.integration.dispatcher.http_api import send

TASK = str(uuid.uuid4())
TOKEN = str(uuid.uuid4())
# One valid body per POST route (the task id in the path need not exist: the body is read first).
ROUTES: dict[str, dict[str, Any]] = {
    "/v1/tasks": {"operator": "noop"},
    "/v1/claims": {"worker_id": "w"},
    f"/v1/tasks/{TASK}/claim": {"worker_id": "w"},
    f"/v1/tasks/{TASK}/heartbeat": {"attempt": 1, "lease_token": TOKEN},
    f"/v1/tasks/{TASK}/complete": {"attempt": 1, "lease_token": TOKEN, "result": {"outcome": "success"}},
    f"/v1/tasks/{TASK}/abandon": {"attempt": 1, "lease_token": TOKEN, "reason": "shutdown"},
}


@pytest.fixture(autouse=True)
def _served(conn, database_url: str) -> Iterator[None]:
    with http_api.serving(database_url):
        yield


def task_count(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM state.tasks").fetchone()["n"]


def refused(answer: tuple[int, Any], status: int, field: str) -> str:
    """The error message, after checking the status and the field the error names."""
    code, body = answer
    assert (code, body["error"]["field"]) == (status, field), body
    return str(body["error"]["message"])


# ------------------------------------------------------------------ item 2: the body is exactly one object
def test_a_json_array_body_creates_nothing(conn):
    # GIVEN two valid task requests sent as a JSON array
    answer = send("POST", "/v1/tasks", [{"operator": "noop", "idempotency_key": "a"},
                                        {"operator": "noop", "idempotency_key": "b"}])
    # THEN 422 naming the body, and no task is created (the first element was once taken as the body)
    assert "must be a JSON object" in refused(answer, 422, "body")
    assert task_count(conn) == 0


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize("body", [[{}], "[]", "null", '"text"', "7", "true"], ids=repr)
def test_every_post_route_takes_only_an_object(path, body):
    sent = [ROUTES[path]] if body == [{}] else body
    assert "must be a JSON object" in refused(send("POST", path, sent), 422, "body")


@pytest.mark.parametrize("path", list(ROUTES))
def test_every_post_route_refuses_duplicate_keys(path):
    first, *_ = ROUTES[path]
    text = json.dumps(ROUTES[path])[:-1] + f", {json.dumps(first)}: {json.dumps(ROUTES[path][first])}}}"
    assert f"key {first!r} appears more than once" in refused(send("POST", path, text), 400, "body")


# ------------------------------------------------------------------ item 3: malformed bodies are 400, not 500
def test_invalid_utf8_is_400(conn):
    body = b'{"operator": "noop", "payload": {"name": "caf\xe9"}}'  # latin-1, not UTF-8
    assert "not valid UTF-8" in refused(send("POST", "/v1/tasks", body), 400, "body")
    assert task_count(conn) == 0


@pytest.mark.parametrize("where", ["top", "payload"])
def test_a_body_nested_100k_levels_is_400(conn, where):
    deep = "[" * 100_000 + "]" * 100_000
    body = deep if where == "top" else f'{{"operator": "noop", "payload": {{"a": {deep}}}}}'
    assert "nested deeper than" in refused(send("POST", "/v1/tasks", body), 400, "body")
    assert task_count(conn) == 0


def test_payloads_nest_up_to_the_stored_limit(conn):
    def nested(levels: int) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for _ in range(levels - 1):
            value = {"a": value}
        return value

    status, task = send("POST", "/v1/tasks", {"operator": "noop", "payload": nested(models.MAX_JSON_DEPTH)})
    assert status == 201 and task["payload"] == nested(models.MAX_JSON_DEPTH)
    message = refused(send("POST", "/v1/tasks", {"operator": "noop", "payload": nested(models.MAX_JSON_DEPTH + 1)}),
                      422, "payload")
    assert f"nested deeper than {models.MAX_JSON_DEPTH} levels" in message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_400(conn, literal):
    body = f'{{"operator": "noop", "payload": {{"x": {literal}}}}}'
    assert literal.lstrip("-") in refused(send("POST", "/v1/tasks", body), 400, "body")
    assert task_count(conn) == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/tasks", {"operator": "noop", "payload": {"note": "a\u0000b"}}, "payload.note"),
        ("/v1/tasks", {"operator": "noop", "payload": {"list": ["ok", "\ud800"]}}, "payload.list.1"),
        ("/v1/tasks", {"operator": "noop", "payload": {"bad\u0000key": 1}}, "payload"),
        ("/v1/tasks", {"operator": "noop", "idempotency_key": "k\u0000"}, "idempotency_key"),
        ("/v1/tasks", {"operator": "noop", "idempotency_key": "\udfff"}, "idempotency_key"),
        ("/v1/claims", {"worker_id": "w\u0000"}, "worker_id"),
        (f"/v1/tasks/{TASK}/claim", {"worker_id": "\ud83d"}, "worker_id"),
        (f"/v1/tasks/{TASK}/abandon", {"attempt": 1, "lease_token": TOKEN, "reason": "\u0000"}, "reason"),
        (f"/v1/tasks/{TASK}/complete",
         {"attempt": 1, "lease_token": TOKEN, "result": {"outcome": "failure", "error": "boom\ud800"}}, "result.error"),
    ],
)
def test_nul_and_lone_surrogates_are_422_naming_the_field(conn, path, body, field):
    # json.dumps escapes them (\u0000, \ud800): valid JSON, but not text Postgres can store
    message = refused(send("POST", path, body), 422, field)
    assert "NUL" in message or "lone surrogate" in message
    assert task_count(conn) == 0


@pytest.mark.parametrize("verb", ["heartbeat", "complete", "abandon"])
@pytest.mark.parametrize("attempt", [2**63, 2**31, wire.MAX_ATTEMPT + 1, -1, 0])
def test_attempts_are_bounded_integers(verb, attempt):
    path = f"/v1/tasks/{TASK}/{verb}"
    refused(send("POST", path, {**ROUTES[path], "attempt": attempt}), 422, "attempt")


def test_the_largest_attempt_is_read_and_fenced(conn):
    made = tasks.create(conn, models.CreateTask(operator="noop"))
    lease = tasks.claim(conn, made.task_id, worker_id="w")
    status, body = send("POST", f"/v1/tasks/{made.task_id}/heartbeat",
                        {"attempt": wire.MAX_ATTEMPT, "lease_token": str(lease.lease_token)})
    assert (status, body["error"]["code"], body["error"]["current_attempt"]) == (409, "stale_attempt", 1)


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("/v1/tasks", {"max_attempts": "3"}),
        ("/v1/tasks", {"max_attempts": True}),
        ("/v1/tasks", {"max_attempts": 3.0}),
        ("/v1/tasks", {"backoff_base_ms": "1000"}),
        ("/v1/claims", {"limit": "2"}),
        ("/v1/claims", {"lease_seconds": False}),
        (f"/v1/tasks/{TASK}/claim", {"lease_seconds": "30"}),
        (f"/v1/tasks/{TASK}/heartbeat", {"attempt": "1"}),
        (f"/v1/tasks/{TASK}/heartbeat", {"attempt": True}),
        (f"/v1/tasks/{TASK}/complete", {"result": {"outcome": "failure", "error": "e", "retryable": "false"}}),
        (f"/v1/tasks/{TASK}/complete", {"result": {"outcome": "failure", "error": "e", "retryable": 0}}),
        (f"/v1/tasks/{TASK}/abandon", {"reason": 7}),
    ],
    ids=repr,
)
def test_types_are_strict(conn, path, change):
    (field, value), = change.items()
    if field == "result":
        field, value = "result.failure.retryable", value["retryable"]
    message = refused(send("POST", path, {**ROUTES[path], **change}), 422, field)
    assert "should be a valid" in message, message
    assert task_count(conn) == 0


def test_unknown_fields_are_refused_at_every_level():
    path = f"/v1/tasks/{TASK}/complete"
    refused(send("POST", path, {**ROUTES[path], "extra": 1}), 422, "extra")
    body = {**ROUTES[path], "result": {"outcome": "success", "extra": 1}}
    refused(send("POST", path, body), 422, "result.success.extra")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data", "multipart/form-data; boundary=x"])
def test_bodies_declared_as_anything_but_json_are_415(conn, content_type):
    answer = send("POST", "/v1/tasks", b"operator=noop", headers=[("content-type", content_type)])
    refused(answer, 415, "content-type")
    assert task_count(conn) == 0


def test_json_with_a_charset_and_no_content_type_are_read(conn):
    for headers in ([("content-type", "application/json; charset=utf-8")], []):
        status, _ = send("POST", "/v1/tasks", {"operator": "noop"}, headers=headers)
        assert status == 201
    assert task_count(conn) == 2


@pytest.mark.parametrize(("body", "status"), [(b"", 400), (b"   ", 400), (b"{not json", 400),
                                              (b'{"operator": "noop", "payload": {"n": 1' + b"0" * 5000 + b"}}", 400),
                                              (b'{"operator": "noop", "payload": {"s": "' + b"x" * 1_100_000 + b'"}}',
                                               413)])
def test_empty_malformed_and_oversized_bodies(conn, body, status):
    message = refused(send("POST", "/v1/tasks", body), status, "body")
    assert "Traceback" not in message and "sys." not in message
    assert task_count(conn) == 0
