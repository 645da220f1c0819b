"""The local Lambda host's HTTP front: API Gateway's part, over uvicorn (h11) on 127.0.0.1.

A request becomes an HTTP API (payload 2.0) event for the API function and its
result the response (:mod:`trace_core.lite.host_events`); ``HEALTH_PATH`` is the
host's own. The framing is h11's, as the Query Service's: a malformed request
line, header or ``Content-Length`` gets ``400`` with a status line, and the
connection closes. Limits, enforced while reading, never after:

- a body is at most ``MAX_BODY_BYTES``, 10 MiB: API Gateway's HTTP API payload
  quota, the limit in front of the function in AWS. A function with a smaller
  limit of its own answers it itself, as it does behind API Gateway (the
  dispatcher's is 1 MiB: a 413 naming the body), and Lambda's 6 MB invocation
  quota is not imitated. A larger ``Content-Length`` is refused with ``413``
  before any of the body is read; a chunked body is counted as it arrives and
  refused as soon as it passes the limit;
- the body must arrive whole within ``BODY_TIMEOUT_S`` of the request head, and
  a request head within ``HEAD_TIMEOUT_S`` of the connection opening (or of the
  previous response): otherwise ``408``. Idle keep-alive connections close after
  ``KEEP_ALIVE_S``.

Refusals close the connection (the rest of the body may still be on its way). The
function runs in a thread, so a slow invocation holds no other connection.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from trace_core import errors
from trace_core.lite import host_events, host_process, procs

HEALTH_PATH = host_process.HEALTH_PATH
MAX_BODY_BYTES = 10 * 1024 * 1024
BODY_TIMEOUT_S = 5.0
HEAD_TIMEOUT_S = 5.0
KEEP_ALIVE_S = 5
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Invoke = Callable[[dict[str, Any]], host_events.HttpResponse]

_JSON = [("content-type", "application/json")]


def _message(status: int, message: str) -> host_events.HttpResponse:
    """A gateway-level answer in API Gateway's shape (``{"message": ...}``)."""
    return host_events.HttpResponse(status, list(_JSON), json.dumps({"message": message}).encode())


def too_large(limit: int) -> host_events.HttpResponse:
    return _message(413, f"Request Entity Too Large: the body is over {limit} bytes (API Gateway's payload limit)")


def timed_out(part: str, seconds: float) -> host_events.HttpResponse:
    return _message(408, f"Request Timeout: the request {part} did not arrive within {seconds:g}s")


class App:
    """The ASGI app: health, else read the body (within the limits) and invoke the API function in a thread."""

    def __init__(self, *, invoke: Invoke, health: Callable[[], dict[str, Any]], on_write: Callable[[], None],
                 region: str, domain: str, max_body_bytes: int = MAX_BODY_BYTES,
                 body_timeout_s: float = BODY_TIMEOUT_S) -> None:
        self._invoke = invoke
        self._health = health
        self._on_write = on_write
        self._region = region
        self._domain = domain
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw_path = scope["raw_path"].decode("latin-1")
        if raw_path == HEALTH_PATH:
            await _send(send, host_events.HttpResponse(200, list(_JSON), json.dumps(self._health()).encode()))
            return
        body = await self._read_body(scope, receive)
        if body is None:
            return  # the client went away: nobody to answer
        if isinstance(body, host_events.HttpResponse):
            await _send(send, body, close=True)
            return
        event = host_events.http_api_event(
            method=scope["method"], raw_path=raw_path, raw_query=scope["query_string"].decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=body, source_ip=(scope.get("client") or (procs.HOST, 0))[0], region=self._region,
            domain=self._domain,
        )
        try:
            response = await asyncio.to_thread(self._invoke, event)
        except Exception:  # noqa: BLE001 - logged by the invocation; what API Gateway answers when the Lambda fails
            response = _message(500, "Internal Server Error")
        await _send(send, response)
        if scope["method"] in WRITES and response.status < 300:
            self._on_write()  # a write may have queued a wake-up: publish it now

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | host_events.HttpResponse | None:
        """The whole body; a 413/408 answer when it is too large or too slow; None if the client left."""
        announced = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if announced is not None and int(announced) > self.max_body_bytes:  # h11 checked it is digits
            return too_large(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        return too_large(self.max_body_bytes)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            return timed_out("body", self.body_timeout_s)


async def _send(send: Send, response: host_events.HttpResponse, *, close: bool = False) -> None:
    # The framing is ours to set, as API Gateway's is: a handler's own length or encoding header is dropped.
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
               if k.lower() not in ("content-length", "transfer-encoding", "connection")]
    headers.append((b"content-length", str(len(response.body)).encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on the request head, which uvicorn does not have.

    Armed when the connection opens and after each response; when it passes with
    no request head parsed, a half-sent head gets ``408``, and the connection closes.
    """

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_deadline_passed)

    def _head_deadline_passed(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return  # closed, or a request is under way (its body has its own deadline)
        if self.conn.trailing_data[0]:
            response = timed_out("head", HEAD_TIMEOUT_S)
            head = (f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(response.body)}\r\nconnection: close\r\n\r\n").encode()
            self.transport.write(head + response.body)
        self.transport.close()


class Server:
    """uvicorn serving ``app`` on 127.0.0.1:``port`` (0: a free one) in a thread; ``stop()`` ends it."""

    def __init__(self, port: int) -> None:
        # Bound here, so a busy port fails start() with the OSError instead of ending uvicorn's thread.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((procs.HOST, port))
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, app: App, *, timeout: float = 10.0) -> None:
        config = uvicorn.Config(
            app, http=_Protocol, lifespan="off", log_config=None, access_log=False,
            timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="host-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            raise errors.ComponentError(f"host: the HTTP server on port {self.port} did not start",
                                        component="host", fix="see the host log for uvicorn's error")

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (5 s grace), close the socket."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
        self._socket.close()
