"""The Rust template crate (runtimes/rust-bootstrap) builds offline and speaks the Lambda Runtime API.

The built ``bootstrap`` runs against Trace's own server (:class:`RuntimeApiServer`, over a Unix
socket, as in the sandbox) and against a small TCP server here that answers in chunks, as a real
Lambda may (the ``AWS_LAMBDA_RUNTIME_API`` path).
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from trace_core.udf.runtime_api import Invocation, InvocationResult, RuntimeApiServer

CRATE = Path(__file__).resolve().parents[3] / "runtimes" / "rust-bootstrap"
ARN = "arn:aws:lambda:eu-west-1:000000000000:function:rust-template"
WAIT = 20.0


def _cargo(tmp: Path, *args: str) -> None:
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.skip("cargo is not on PATH: the Rust template cannot be built here")
    env = {**os.environ, "CARGO_TARGET_DIR": str(tmp / "target")}
    done = subprocess.run([cargo, *args, "--offline", "--locked"], check=False, cwd=CRATE,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"cargo {' '.join(args)} failed:\n{done.stderr}"


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template built with the release profile (a cold build takes about a second here)."""
    tmp = tmp_path_factory.mktemp("rust-bootstrap")
    _cargo(tmp, "build", "--release")
    binary = tmp / "target" / "release" / "bootstrap"
    assert binary.is_file() and os.access(binary, os.X_OK)
    return binary


def _start(binary: Path, tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp / "bootstrap.stderr"
    with log.open("wb") as stderr:
        process = subprocess.Popen([str(binary)], env={"PATH": "/usr/bin:/bin", **env},
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    return process, log


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


@pytest.fixture
def served(bootstrap: Path, tmp_path: Path) -> Iterator[tuple[RuntimeApiServer, subprocess.Popen[bytes]]]:
    """The bootstrap serving Trace's Runtime API over a Unix socket, as the sandbox runs it."""
    server = RuntimeApiServer(tmp_path / "runtime.sock", function_arn=ARN)
    process, _ = _start(bootstrap, tmp_path, {"TRACE_RUNTIME_SOCKET": str(server.socket_path),
                                              "AWS_LAMBDA_FUNCTION_NAME": "rust-template"})
    try:
        yield server, process
    finally:
        _stop(process)
        server.close()


def _invoke(server: RuntimeApiServer, event: bytes, timeout: float = 30.0) -> tuple[Invocation, InvocationResult]:
    invocation = server.submit(event, timeout=timeout)
    assert invocation.done.wait(WAIT), "the bootstrap did not answer"
    assert invocation.outcome is not None
    return invocation, invocation.outcome


def test_invocations_are_answered_with_their_request_id_and_event(
        served: tuple[RuntimeApiServer, subprocess.Popen[bytes]]) -> None:
    server, process = served
    events = [b'{"rows": [1, 2, 3], "params": {}, "context": {}}', '{"params": {"name": "\u00e9t\u00e9"}}'.encode()]
    seen = set()
    for event in events:
        invocation, outcome = _invoke(server, event)
        assert outcome.ok, outcome
        assert outcome.result["requestId"] == invocation.request_id
        assert outcome.result["eventLength"] == len(event)  # bytes, not characters
        assert outcome.result["functionName"] == "rust-template"
        assert 0 < outcome.result["remainingMs"] <= 30_000  # from Lambda-Runtime-Deadline-Ms
        seen.add(invocation.request_id)
    assert len(seen) == 2
    assert process.poll() is None


def test_a_handler_error_fails_the_invocation_and_the_instance_keeps_serving(
        served: tuple[RuntimeApiServer, subprocess.Popen[bytes]]) -> None:
    server, process = served
    _, failed = _invoke(server, b'{"fail": true}')
    assert not failed.ok
    assert failed.error_type == "TemplateError"
    assert failed.error_message == "the event asked to fail"

    invocation, outcome = _invoke(server, b'{"fail": false}')
    assert outcome.ok, outcome
    assert outcome.result["requestId"] == invocation.request_id
    assert process.poll() is None


def test_the_bootstrap_exits_when_the_runtime_api_closes(bootstrap: Path, tmp_path: Path) -> None:
    server = RuntimeApiServer(tmp_path / "runtime.sock", function_arn=ARN)
    process, log = _start(bootstrap, tmp_path, {"TRACE_RUNTIME_SOCKET": str(server.socket_path)})
    try:
        _, outcome = _invoke(server, b"{}")
        assert outcome.ok, outcome
        server.close()  # /next now answers 503
        assert process.wait(timeout=WAIT) == 1
        assert "getting the next invocation" in log.read_text()
    finally:
        _stop(process)
        server.close()


def test_the_bootstrap_refuses_to_start_without_a_runtime_api(bootstrap: Path, tmp_path: Path) -> None:
    process, log = _start(bootstrap, tmp_path, {})
    try:
        assert process.wait(timeout=WAIT) == 1
        assert "neither TRACE_RUNTIME_SOCKET nor AWS_LAMBDA_RUNTIME_API is set" in log.read_text()
    finally:
        _stop(process)


class _ChunkedLambda(http.server.BaseHTTPRequestHandler):
    """A stand-in for Lambda's own Runtime API on TCP that sends ``/next`` bodies in chunks."""

    protocol_version = "HTTP/1.1"
    server: _ChunkedLambdaServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        try:
            request_id, event = self.server.events.get(timeout=WAIT)
        except queue.Empty:  # the test is over
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", "99999999999999")
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", ARN)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(event), 7):
            piece = event[start:start + 7]
            self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\nX-Trailer: done\r\n\r\n")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.put((self.path, self.headers.get("Lambda-Runtime-Function-Error-Type"), body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _ChunkedLambdaServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ChunkedLambda)
        self.events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.posts: queue.Queue[tuple[str, str | None, bytes]] = queue.Queue()


def test_on_aws_it_speaks_tcp_and_reads_chunked_events(bootstrap: Path, tmp_path: Path) -> None:
    server = _ChunkedLambdaServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    process, _ = _start(bootstrap, tmp_path, {"AWS_LAMBDA_RUNTIME_API": f"{host}:{port}"})
    try:
        event = json.dumps({"rows": list(range(50)), "params": {}}).encode()
        server.events.put(("aws-req-1", event))
        path, error_type, body = server.posts.get(timeout=WAIT)
        assert path == "/2018-06-01/runtime/invocation/aws-req-1/response"
        assert error_type is None
        assert json.loads(body)["requestId"] == "aws-req-1"
        assert json.loads(body)["eventLength"] == len(event)

        server.events.put(("aws-req-2", b'{"fail":\n true}'))
        path, error_type, body = server.posts.get(timeout=WAIT)
        assert path == "/2018-06-01/runtime/invocation/aws-req-2/error"
        assert error_type == "TemplateError"
        assert json.loads(body) == {"errorType": "TemplateError", "errorMessage": "the event asked to fail"}
        assert process.poll() is None
    finally:
        _stop(process)
        server.shutdown()
        server.server_close()


def test_the_crate_unit_tests_pass(tmp_path: Path) -> None:
    """The client's own tests: HTTP framing (chunked, Content-Length, none) and JSON escaping."""
    _cargo(tmp_path, "test")
