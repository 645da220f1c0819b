"""Drive the Dispatcher API as the Lite host does: HTTP bytes -> HTTP API (2.0) event -> ``api.resolve`` -> bytes.

``send`` is one request; ``wsgi_app`` is the same path as a WSGI application
(for schemathesis). Both run in the test's process against the injected deps.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

from trace_core import settings as settings_mod
from trace_core.db import pool as pool_mod
from trace_core.dispatcher import api, deps
from trace_core.lite import host_events

from tests.integration.dispatcher import conftest as helpers

JSON = (("content-type", "application/json"),)


@contextlib.contextmanager
def serving(database_url: str) -> Iterator[None]:
    """Serve every request inside the block from the database at ``database_url``."""
    injected = deps.Deps(settings_mod.load({}, database_url=database_url), pool_mod.get(database_url),
                         driver=helpers.RecordingDriver())
    with deps.injected(injected):
        yield


def respond(method: str, path: str, body: bytes, *, query: str = "",
            headers: Iterable[tuple[str, str]] = JSON) -> host_events.HttpResponse:
    event = host_events.http_api_event(method=method, raw_path=path, raw_query=query, headers=list(headers), body=body)
    return host_events.http_response(api.resolve(event, None))


def send(method: str, path: str, body: bytes | str | Any = b"", **options: Any) -> tuple[int, Any]:
    """Status and JSON answer for one request; ``body`` as bytes, text, or a value sent as JSON."""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode()
    response = respond(method, path, body, **options)
    return response.status, json.loads(response.body)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The API as a WSGI application (request headers and body passed through unchanged)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = [(name[5:].replace("_", "-").lower(), value) for name, value in environ.items()
               if name.startswith("HTTP_")]
    headers += [(name.replace("_", "-").lower(), environ[name]) for name in ("CONTENT_TYPE",) if environ.get(name)]
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
    response = respond(environ["REQUEST_METHOD"], path, body, query=environ.get("QUERY_STRING", ""),
                       headers=headers)
    start_response(f"{response.status} {HTTPStatus(response.status).phrase}", response.headers)
    return [response.body]
