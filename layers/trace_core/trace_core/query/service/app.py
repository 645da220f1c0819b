"""The Query Service HTTP app: ``POST /v1/query``, ``POST /v1/task-query``, ``GET /healthz``.

Handlers are thin: they read the Authorization header and the body, hand them
to :meth:`pipeline.QueryService.handle` on a worker thread, and send what it
returns. Every error becomes a JSON :class:`wire.ErrorResponse` through
:func:`statuses.classify`, the one place that maps errors to HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from trace_core import errors as trace_errors
from trace_core.query.service import pipeline, statuses, wire

logger = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="A capability token (JWT, EdDSA).")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": wire.ErrorResponse, "description": text}
    for code, text in (
        (400, "Bad request body, gate rejection (code names the reason), or the SQL failed."),
        (401, "Missing, malformed, expired, tampered, wrong-audience or unknown-key token."),
        (403, "The SQL reads a relation the token does not grant."),
        (408, "The query ran past its wall-clock limit and was stopped, or the body did not arrive in time."),
        (413, "The result is over the inline cap; ask for export."),
        (422, "The query ran past its memory (or spill-file) limit and was stopped."),
        (500, "Internal error, or granted data failed verification."),
        (502, "Writing the exported result failed."),
        (503, "Every sandbox worker stayed busy (retry), or the sandbox or signing keys are unavailable."),
    )
}
_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "model": wire.QueryResponse,
        "description": "The result: JSON rows, an Arrow IPC stream (format=arrow), or an export link.",
        "content": {wire.ARROW_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryRequest"}}},
    }
}


def error_response(exc: BaseException) -> JSONResponse:
    """The HTTP response for ``exc``."""
    status = statuses.classify(exc)
    details = dict(exc.details) if isinstance(exc, trace_errors.TraceError) else {}
    query_id = details.pop("query_id", None)
    message = str(exc) if status.http < 500 or status.code != "internal" else "internal error"
    body = wire.ErrorResponse(error=wire.ErrorDetail(
        code=status.code, message=message, query_id=query_id,
        details={k: v for k, v in details.items() if isinstance(v, (str, int, float, bool, list)) and k != "fix"},
    ))
    headers = statuses.headers(exc, status)
    return JSONResponse(body.model_dump(mode="json"), status_code=status.http, headers=headers)


async def _read_body(request: Request, timeout_s: float) -> bytes:
    # Stop reading past the cap: the pipeline refuses it, naming the limit, and audits the refusal.
    # uvicorn has no body read timeout: without one, a client that announces a body and sends none
    # holds the request open forever. What arrived goes on as an IncompleteBody, refused and audited.
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                chunks.append(chunk)
                size += len(chunk)
                if size > wire.MAX_BODY_BYTES:
                    break
    except TimeoutError:
        return wire.IncompleteBody(b"".join(chunks), announced=request.headers.get("content-length"),
                                   waited_s=timeout_s)
    except ClientDisconnect:
        return wire.IncompleteBody(b"".join(chunks), announced=request.headers.get("content-length"),
                                   waited_s=None)
    return b"".join(chunks)


def create_app(service: pipeline.QueryService | Callable[[], pipeline.QueryService], *,
               body_timeout_s: float = wire.BODY_TIMEOUT_S) -> FastAPI:
    """The ASGI app over ``service`` (or a factory called on first request, so importing costs nothing).

    A request body must arrive whole within ``body_timeout_s`` of the handler starting to read it.
    """
    get_service: Callable[[], pipeline.QueryService]
    if isinstance(service, pipeline.QueryService):
        built = service

        def get_service() -> pipeline.QueryService:
            return built
    else:
        get_service = functools.cache(service)

    app = FastAPI(
        title="Trace Query Service",
        version="1.0.0",
        description="Read-only SQL over the dataset versions a capability token grants. "
        "See docs/specs/query_service.md.",
    )

    async def answer(endpoint: pipeline.Endpoint, request: Request) -> Response:
        body = await _read_body(request, body_timeout_s)
        try:
            outcome = await run_in_threadpool(
                get_service().handle, endpoint, authorization=request.headers.get("authorization"), body=body
            )
        except Exception as exc:  # noqa: BLE001 - every error is mapped (and was audited) in one place
            response = error_response(exc)
            if isinstance(body, wire.IncompleteBody):
                response.headers["Connection"] = "close"  # the rest of the body may still come: not reusable
            return response
        return Response(outcome.body, media_type=outcome.media_type, headers=outcome.headers)

    @app.get("/healthz", summary="Liveness", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/query", summary="Query with a user Bearer token (audience trace-query)", tags=["query"],
              response_model=None, responses={**_OK, **_ERRORS}, openapi_extra=_BODY,
              dependencies=[Depends(_bearer)])
    async def query(request: Request) -> Response:
        return await answer("query", request)

    @app.post("/v1/task-query", summary="Query with a task token (audience trace-task-query)", tags=["query"],
              response_model=None, responses={**_OK, **_ERRORS}, openapi_extra=_BODY,
              dependencies=[Depends(_bearer)])
    async def task_query(request: Request) -> Response:
        return await answer("task-query", request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(exc)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description,
                                   routes=app.routes)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["QueryRequest"] = wire.QueryRequest.model_json_schema(
                ref_template="#/components/schemas/{model}")
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
