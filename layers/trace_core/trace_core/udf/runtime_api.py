"""The AWS Lambda Runtime API, served by Trace to one sandboxed instance over a Unix socket.

The runtime inside the sandbox (our bootstraps, or a Rust ``bootstrap``) loops on
``GET /2018-06-01/runtime/invocation/next`` and answers with ``POST .../{request_id}/response``
or ``.../error``; a runtime that cannot start posts ``/runtime/init/error``. The contract is
AWS's (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html); only what a bundle
needs is implemented. The socket is bind-mounted into the sandbox, which has no network.

Bodies are counted while they are read and refused past 6 MB. A request id that is not the
one in flight (forged, or answered already) gets a 4xx and changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import os
import queue
import socketserver
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

API_PREFIX = "/2018-06-01/runtime"
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation limit, each way
_CHUNK = 64 * 1024
_POLL_SECONDS = 0.05


@dataclasses.dataclass(frozen=True)
class InvocationResult:
    """The outcome of one invocation: ``ok`` with ``result`` (any JSON value), or an error type and message."""

    ok: bool
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None

    @classmethod
    def failed(cls, error_type: str, error_message: str) -> InvocationResult:
        return cls(ok=False, error_type=error_type, error_message=error_message)


@dataclasses.dataclass
class Invocation:
    """One queued or running invocation. ``outcome`` is set once, by the first valid answer."""

    request_id: str
    event: bytes
    timeout: float
    deadline_ms: int = 0
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    outcome: InvocationResult | None = None


class _PayloadTooLargeError(Exception):
    pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False
    api: RuntimeApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # the sandboxed peer went away (killed, timed out, hung up): nothing to report
        if not isinstance(sys.exc_info()[1], ConnectionError | OSError):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    # --- plumbing

    def address_string(self) -> str:  # a Unix socket has no peer address
        return "sandbox"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
               raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        """The request body, counted while read; raises :class:`_PayloadTooLargeError` past the cap."""
        limit = self.server.api.max_payload
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > limit:
                    self.close_connection = True
                    raise _PayloadTooLargeError
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            self.close_connection = True  # the rest of the body is never read
            raise _PayloadTooLargeError
        chunks: list[bytes] = []
        remaining = length
        while remaining:
            chunk = self.rfile.read(min(_CHUNK, remaining))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    # --- routes

    def do_GET(self) -> None:
        if self.path != f"{API_PREFIX}/invocation/next":
            self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
            return
        invocation = self.server.api._next()
        if invocation is None:  # shutting down
            self._reply(503, {"errorType": "ServiceUnavailable", "errorMessage": "the runtime API is closing"})
            self.close_connection = True
            return
        api = self.server.api
        self._reply(200, raw=invocation.event, headers={
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{invocation.request_id.replace('-', '')[:24]}",
        })

    def do_POST(self) -> None:
        api = self.server.api
        parts = self.path.removeprefix(API_PREFIX).strip("/").split("/")
        try:
            body = self._read_body()
        except _PayloadTooLargeError:
            if len(parts) == 3 and parts[0] == "invocation" and parts[2] == "response":
                api._answer(parts[1], InvocationResult.failed(
                    "Function.ResponseSizeTooLarge",
                    f"the response is larger than the limit of {api.max_payload} bytes"))
            self._reply(413, {"errorType": "RequestEntityTooLarge",
                              "errorMessage": f"the body is larger than {api.max_payload} bytes"})
            return
        except ValueError:
            self._reply(400, {"errorType": "InvalidRequest", "errorMessage": "malformed body framing"})
            return
        if parts == ["init", "error"]:
            api._init_failed(_error_of(body, self.headers.get("Lambda-Runtime-Function-Error-Type")))
            self._reply(202, {"status": "OK"})
            return
        if len(parts) != 3 or parts[0] != "invocation" or parts[2] not in ("response", "error"):
            self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
            return
        request_id, kind = parts[1], parts[2]
        if kind == "response":
            try:
                outcome = InvocationResult(ok=True, result=json.loads(body))
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                outcome = InvocationResult.failed("Runtime.InvalidResponse", f"the response is not JSON: {exc}")
        else:
            outcome = _error_of(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
        if api._answer(request_id, outcome):
            self._reply(202, {"status": "OK"})
        else:
            self._reply(400, {"errorType": "InvalidRequestID",
                              "errorMessage": "no invocation with this request id awaits an answer"})


def _error_of(body: bytes, header: str | None) -> InvocationResult:
    """A failed invocation from an error body ``{errorType, errorMessage, stackTrace}``."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return InvocationResult.failed(header or "Runtime.Unknown", body[:1024].decode("utf-8", "replace"))
    error_type = doc.get("errorType") or header or "Runtime.Unknown"
    message = doc.get("errorMessage")
    return InvocationResult.failed(str(error_type)[:256], str(message if message is not None else "")[:8192])


class RuntimeApiServer:
    """Serves the Runtime API for one instance on ``socket_path``; :meth:`submit` queues an invocation.

    Threaded: ``/next`` blocks its connection's thread until an invocation is queued.
    """

    def __init__(self, socket_path: Path, *, function_arn: str, max_payload: int = MAX_PAYLOAD_BYTES) -> None:
        self.socket_path = socket_path
        self.function_arn = function_arn
        self.max_payload = max_payload
        self._queue: queue.Queue[Invocation] = queue.Queue()
        self._lock = threading.Lock()
        self._in_flight: dict[str, Invocation] = {}
        self._closing = threading.Event()
        self.init_error: InvocationResult | None = None
        self.init_failed = threading.Event()
        self._server = _Server(str(socket_path), _Handler, bind_and_activate=True)
        self._server.api = self
        # the sandboxed runtime runs as another uid: it must be able to connect (its directory is private)
        os.chmod(socket_path, 0o666)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": _POLL_SECONDS},
                                        name=f"runtime-api:{socket_path.name}", daemon=True)
        self._thread.start()

    def submit(self, event: bytes, timeout: float) -> Invocation:
        """Queue ``event`` (refused past the payload cap with ``ValueError``) for the next ``/next``."""
        if len(event) > self.max_payload:
            raise ValueError(f"the event is {len(event)} bytes, more than {self.max_payload}")
        invocation = Invocation(request_id=str(uuid.uuid4()), event=event, timeout=timeout)
        self._queue.put(invocation)
        return invocation

    def abandon(self, invocation: Invocation) -> None:
        """Forget ``invocation`` (timed out or its instance died): later answers to it are refused."""
        with self._lock:
            self._in_flight.pop(invocation.request_id, None)
            invocation.done.set()

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    # --- called by the handler threads

    def _next(self) -> Invocation | None:
        while not self._closing.is_set():
            try:
                invocation = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            with self._lock:
                if invocation.done.is_set():  # abandoned while queued
                    continue
                invocation.deadline_ms = int((time.time() + invocation.timeout) * 1000)
                self._in_flight[invocation.request_id] = invocation
            return invocation
        return None

    def _answer(self, request_id: str, outcome: InvocationResult) -> bool:
        with self._lock:
            invocation = self._in_flight.pop(request_id, None)
            if invocation is None or invocation.done.is_set():
                return False
            invocation.outcome = outcome
            invocation.done.set()
            return True

    def _init_failed(self, outcome: InvocationResult) -> None:
        with self._lock:
            if self.init_error is None:
                self.init_error = outcome
            self.init_failed.set()
