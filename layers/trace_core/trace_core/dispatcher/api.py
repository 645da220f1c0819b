"""The Dispatcher API: Powertools HTTP resolver routes over the core, and the one place errors map to HTTP.

``resolve(event, context)`` serves API Gateway HTTP API (payload v2) events;
``functions/dispatcher_api/handler.py`` adds logging, metrics and tracing. The
OpenAPI document is generated from these routes and committed as
docs/openapi/dispatcher.json (regenerate: ``python -m trace_core.dispatcher.api``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Annotated, Any, TypeVar
from uuid import UUID

import psycopg
import psycopg_pool
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from trace_core.dispatcher import body as body_mod
from trace_core.dispatcher import deps, errors, models, tasks, wire

log = logging.getLogger(__name__)

TITLE = "Trace Dispatcher API"
VERSION = "1.0.0"

F = TypeVar("F", bound=Callable[..., Any])
_ROUTES: list[tuple[str, str, Callable[..., Any], dict[str, Any]]] = []


def _route(method: str, rule: str, **options: Any) -> Callable[[F], F]:
    """Record a route; :func:`build` registers every recorded route on a new resolver."""

    def record(func: F) -> F:
        _ROUTES.append((method, rule, func, options))
        return func

    return record


def _body(description: str, model: type[Any]) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


def _error(description: str) -> OpenAPIResponse:
    return _body(description, wire.ErrorResponse)


def _ok(model: type[Any], description: str, status: int = 200) -> dict[int, OpenAPIResponse]:
    return {status: _body(description, model)}


_INVALID = {422: _error("A field is invalid; `error.field` names it.")}
# Every route with a body (all POSTs) reads it with trace_core.dispatcher.body first.
_BAD_BODY = {
    400: _error("The body is not a JSON object in UTF-8: malformed, NaN or Infinity, duplicate keys, "
                f"or nested deeper than {body_mod.MAX_DEPTH} levels."),
    413: _error(f"The body is larger than {body_mod.MAX_BODY_BYTES} bytes."),
    415: _error("The body is declared as something other than application/json."),
    **_INVALID,
}
_NOT_FOUND = {404: _error("No task has this id.")}
_CONFLICT = {409: _error("Stale attempt, lost or expired lease, or not claimable; `error.current_attempt` "
                         "is the task's live attempt.")}


@contextlib.contextmanager
def _connection() -> Iterator[psycopg.Connection[Any]]:
    with deps.get().pool.connection() as conn:
        yield conn


# ------------------------------------------------------------------ routes
@_route("POST", "/v1/tasks", status_code=201, operation_id="createTask", tags=["tasks"],
          summary="Create a task (idempotent on idempotency_key)",
          responses={**_ok(wire.TaskResponse, "The task (the existing one for a repeated idempotency key).", 201),
                     **_BAD_BODY})
def create_task(body: Annotated[wire.CreateTaskRequest, Body()]) -> wire.TaskResponse:
    with _connection() as conn:
        return wire.task_response(tasks.create(conn, wire.to_create(body)))


@_route("GET", "/v1/tasks", operation_id="listTasks", tags=["tasks"], summary="List tasks, newest first",
         responses={**_ok(wire.TaskListResponse, "The tasks."), **_INVALID})
def list_tasks(
    status: Annotated[models.Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> wire.TaskListResponse:
    with _connection() as conn:
        return wire.TaskListResponse(
            tasks=[wire.task_response(t) for t in tasks.list_tasks(conn, status=status, limit=limit)]
        )


@_route("GET", "/v1/tasks/<task_id>", operation_id="getTask", tags=["tasks"], summary="Get a task",
         responses={**_ok(wire.TaskResponse, "The task."), **_NOT_FOUND, **_INVALID})
def get_task(task_id: UUID) -> wire.TaskResponse:
    with _connection() as conn:
        return wire.task_response(tasks.get(conn, task_id))


@_route("POST", "/v1/tasks/<task_id>/claim", operation_id="claimTask", tags=["leases"],
          summary="Lease a queued, due task (a new attempt)",
          responses={**_ok(wire.LeaseResponse, "The lease."), **_NOT_FOUND, **_CONFLICT, **_BAD_BODY})
def claim_task(task_id: UUID, body: Annotated[wire.ClaimRequest, Body()]) -> wire.LeaseResponse:
    with _connection() as conn:
        lease = tasks.claim(conn, task_id, worker_id=body.worker_id, lease_seconds=body.lease_seconds)
    return wire.lease_response(lease)


@_route("POST", "/v1/claims", operation_id="claimNext", tags=["leases"],
          summary="Lease up to `limit` due tasks (polling)",
          responses={**_ok(wire.LeaseListResponse, "The leases (maybe none)."), **_BAD_BODY})
def claim_next(body: Annotated[wire.ClaimNextRequest, Body()]) -> wire.LeaseListResponse:
    with _connection() as conn:
        leases = tasks.claim_next(conn, worker_id=body.worker_id, operators=body.operators, queue=body.queue,
                                  lease_seconds=body.lease_seconds, limit=body.limit)
    return wire.LeaseListResponse(leases=[wire.lease_response(lease) for lease in leases])


@_route("POST", "/v1/tasks/<task_id>/heartbeat", operation_id="heartbeatTask", tags=["leases"],
          summary="Extend the live attempt's lease",
          responses={**_ok(wire.LeaseResponse, "The extended lease."), **_NOT_FOUND, **_CONFLICT, **_BAD_BODY})
def heartbeat_task(task_id: UUID, body: Annotated[wire.HeartbeatRequest, Body()]) -> wire.LeaseResponse:
    with _connection() as conn:
        lease = tasks.heartbeat(conn, task_id, attempt=body.attempt, lease_token=body.lease_token,
                                lease_seconds=body.lease_seconds)
    return wire.lease_response(lease)


@_route("POST", "/v1/tasks/<task_id>/complete", operation_id="completeTask", tags=["leases"],
          summary="Finish the live attempt with success or failure (fenced)",
          responses={**_ok(wire.TaskResponse, "The task after the completion."), **_NOT_FOUND, **_CONFLICT,
                     **_BAD_BODY})
def complete_task(task_id: UUID, body: Annotated[wire.CompleteRequest, Body()]) -> wire.TaskResponse:
    with _connection() as conn:
        task = tasks.complete(conn, task_id, attempt=body.attempt, lease_token=body.lease_token,
                              result=wire.to_result(body.result))
    return wire.task_response(task)


@_route("POST", "/v1/tasks/<task_id>/abandon", operation_id="abandonTask", tags=["leases"],
          summary="Give the lease back (worker shutdown)",
          responses={**_ok(wire.TaskResponse, "The task, queued again or dead."), **_NOT_FOUND, **_CONFLICT,
                     **_BAD_BODY})
def abandon_task(task_id: UUID, body: Annotated[wire.AbandonRequest, Body()]) -> wire.TaskResponse:
    with _connection() as conn:
        task = tasks.abandon(conn, task_id, attempt=body.attempt, lease_token=body.lease_token, reason=body.reason)
    return wire.task_response(task)


# ------------------------------------------------------------------ errors -> HTTP (the one place)
_CODES: tuple[tuple[type[errors.DispatcherError], HTTPStatus, str], ...] = (
    (errors.TaskNotFoundError, HTTPStatus.NOT_FOUND, "task_not_found"),
    (errors.NotClaimableError, HTTPStatus.CONFLICT, "not_claimable"),
    (errors.StaleAttemptError, HTTPStatus.CONFLICT, "stale_attempt"),
    (errors.LeaseExpiredError, HTTPStatus.CONFLICT, "lease_expired"),
    (errors.InvalidTaskError, HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_request"),
    (errors.MalformedBodyError, HTTPStatus.BAD_REQUEST, "malformed_body"),
    (errors.BodyTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body_too_large"),
    (errors.UnsupportedMediaTypeError, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
)


def _respond(status: HTTPStatus, body: wire.ErrorBody) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=wire.ErrorResponse(error=body).model_dump(mode="json", exclude_none=True),
    )


def http_error(exc: Exception) -> Response[Any]:
    """The HTTP answer for an error raised while serving a request."""
    if isinstance(exc, errors.DispatcherError):
        for kind, status, code in _CODES:
            if isinstance(exc, kind):
                return _respond(status, wire.ErrorBody(
                    code=code,
                    message=exc.message,
                    field=exc.details.get("field"),
                    current_attempt=exc.details.get("current_attempt"),
                    status=exc.details.get("status"),
                ))
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0]
        # Drop the location prefix ("body", "path", "query"): the field is what the caller named.
        loc = [str(part) for part in first.get("loc", ())]
        field = ".".join(loc[1:] if len(loc) > 1 and loc[0] in ("body", "path", "query") else loc) or "body"
        return _respond(HTTPStatus.UNPROCESSABLE_ENTITY, wire.ErrorBody(
            code="invalid_request", message=f"{field}: {first.get('msg', 'invalid')}", field=field))
    if isinstance(exc, NotFoundError):
        return _respond(HTTPStatus.NOT_FOUND, wire.ErrorBody(code="not_found", message="no such route"))
    if isinstance(exc, (psycopg.OperationalError, psycopg_pool.PoolTimeout)):
        log.warning("state database unavailable: %s", exc)
        return _respond(HTTPStatus.SERVICE_UNAVAILABLE, wire.ErrorBody(
            code="unavailable", message="the state database is unavailable; retry"))
    raise exc


class _Request(APIGatewayProxyEventV2):
    """The event as the routes see it, its body read by :mod:`trace_core.dispatcher.body`, never leniently.

    Powertools would parse a form or multipart body itself; the declared content
    type is kept here instead, so every body goes through :attr:`json_body`.
    """

    def __init__(self, data: dict[str, Any], json_deserializer: Callable[..., Any] | None = None) -> None:
        headers = data.get("headers") or {}
        declared = [name for name in headers if name.lower() == "content-type"]
        self.content_type: str | None = headers[declared[0]] if declared else None
        if declared:
            data = {**data, "headers": {k: v for k, v in headers.items() if k not in declared}}
        super().__init__(data, json_deserializer)

    @functools.cached_property
    def json_body(self) -> Any:
        body_mod.check_content_type(self.content_type)
        return body_mod.parse(self.body, base64_encoded=bool(self.is_base64_encoded))


class _Resolver(APIGatewayHttpResolver):
    """Powertools' HTTP API resolver, serving :class:`_Request` events.

    ``_to_proxy_event`` is where Powertools (3.x) wraps the event; the tests of
    trace_core.dispatcher.body's refusals (test_api_strict.py) fail if an upgrade bypasses it.
    """

    def _to_proxy_event(self, event: dict[str, Any]) -> BaseProxyEvent:
        return _Request(event, self._json_body_deserializer)


def build() -> APIGatewayHttpResolver:
    """A new resolver with every route and the error mapping registered."""
    resolver = _Resolver(enable_validation=True)
    for method, rule, func, options in _ROUTES:
        resolver.route(rule, method, **options)(func)
    resolver.exception_handler([errors.DispatcherError, RequestValidationError, NotFoundError,
                                psycopg.OperationalError, psycopg_pool.PoolTimeout])(http_error)
    return resolver


app = build()
# Powertools keeps the current event on a class attribute (BaseRouter.current_event),
# shared by every resolver in the process, so requests must not overlap.
_serving = threading.Lock()


def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Serve one API Gateway HTTP API event (one at a time per process: the Lite host uses threads)."""
    with _serving:
        return app.resolve(event, context)


def openapi_json() -> str:
    """The OpenAPI document of this API (committed as docs/openapi/dispatcher.json)."""
    return app.get_openapi_json_schema(title=TITLE, version=VERSION,
                                       description="Create, lease, heartbeat and complete tasks (attempt fenced).")


if __name__ == "__main__":
    print(openapi_json())
