"""The Lite host speaks HTTP correctly: raw sockets against a real host (the dispatcher API, no workers).

Bad framing gets a 400 with a status line, a body that does not arrive gets a 408
within the deadline, and an oversized body is refused with 413 while it is still
being sent; the host keeps serving throughout.
"""

from __future__ import annotations

import json
import select
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from trace_core.lite import host as host_mod
from trace_core.lite import host_http

MB = 1024 * 1024


@pytest.fixture
def lite_host(database_url: str, make_settings) -> Iterator[host_mod.Host]:
    settings = make_settings(database_url=database_url, host_tick_seconds=0.5, host_workers=0)
    with host_mod.running(settings, port=0) as host:
        yield host


def _connect(host: host_mod.Host) -> socket.socket:
    assert host.port is not None
    return socket.create_connection(("127.0.0.1", host.port), timeout=15)


def _read_response(sock: socket.socket) -> bytes:
    """One response (head and Content-Length body), or what arrived before the server closed or reset."""
    data = b""
    try:
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(body) >= length:
                    return data
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data


def _status(response: bytes) -> str:
    return response.split(b"\r\n", 1)[0].decode()


def _body(response: bytes) -> dict:
    return json.loads(response.partition(b"\r\n\r\n")[2])


def _request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: lite\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{headers}\r\n").encode() + body


def _answers(host: host_mod.Host) -> bool:
    return httpx.get(f"{host.url}/v1/tasks", params={"limit": 1}, timeout=5).status_code == 200


def test_a_normal_request_is_served_and_the_connection_kept_alive(lite_host: host_mod.Host):
    with _connect(lite_host) as sock:
        sock.sendall(_request("POST", "/v1/tasks", json.dumps({"operator": "noop", "queue": "nobody"}).encode()))
        created = _read_response(sock)
        assert _status(created) == "HTTP/1.1 201 Created", created
        task_id = _body(created)["task_id"]
        # the same connection serves the next request
        sock.sendall(_request("GET", f"/v1/tasks/{task_id}"))
        fetched = _read_response(sock)
        assert _status(fetched) == "HTTP/1.1 200 OK"
        assert _body(fetched)["task_id"] == task_id


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", ""])
def test_a_malformed_content_length_gets_400(lite_host: host_mod.Host, length: str):
    with _connect(lite_host) as sock:
        sock.sendall(f"POST /v1/tasks HTTP/1.1\r\nHost: lite\r\nContent-Length: {length}\r\n\r\n{{}}".encode())
        response = _read_response(sock)
    assert response.startswith(b"HTTP/1.1 400 "), response
    assert _answers(lite_host)


@pytest.mark.parametrize(
    "line", [b"GARBAGE\r\n\r\n", b"GET /v1/tasks\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n"]
)
def test_a_garbage_request_line_gets_a_400_status_line(lite_host: host_mod.Host, line: bytes):
    with _connect(lite_host) as sock:
        sock.sendall(line)
        response = _read_response(sock)
    assert response.startswith(b"HTTP/1.1 400 "), response
    assert _answers(lite_host)


def test_a_body_shorter_than_announced_gets_408_in_time_and_holds_nothing(lite_host: host_mod.Host):
    with _connect(lite_host) as sock:
        # WHEN a request announces 100 bytes and sends 10
        started = time.monotonic()
        sock.sendall(b"POST /v1/tasks HTTP/1.1\r\nHost: lite\r\nContent-Length: 100\r\n\r\n" + b'{"operato')
        # THEN others are served meanwhile, and it gets 408 once the body deadline passes, then the connection closes
        assert _answers(lite_host)
        response = _read_response(sock)
        elapsed = time.monotonic() - started
        assert _status(response) == "HTTP/1.1 408 Request Timeout", response
        assert "body" in _body(response)["message"]
        assert host_http.BODY_TIMEOUT_S - 0.5 <= elapsed < host_http.BODY_TIMEOUT_S + 3
        assert sock.recv(1) == b""
    assert _answers(lite_host)


def test_a_half_sent_request_head_gets_408_in_time(lite_host: host_mod.Host):
    with _connect(lite_host) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /v1/tasks HTTP/1.1\r\nHost: lite\r\n")
        response = _read_response(sock)
        elapsed = time.monotonic() - started
    assert _status(response) == "HTTP/1.1 408 Request Timeout", response
    assert host_http.HEAD_TIMEOUT_S - 0.5 <= elapsed < host_http.HEAD_TIMEOUT_S + 3
    assert _answers(lite_host)


def _send_until_answered(sock: socket.socket, head: bytes, chunks: Iterator[bytes], *, timeout: float = 60) -> int:
    """Send ``head`` then ``chunks`` until the server answers or closes; returns the body bytes sent."""
    sock.sendall(head)
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + timeout
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                readable, writable, _ = select.select([sock], [sock], [], 1)
                if readable:
                    return sent
                assert time.monotonic() < deadline, f"no answer after {sent} bytes"
                if writable:
                    n = sock.send(view)
                    sent += n
                    view = view[n:]
    except (BrokenPipeError, ConnectionResetError):
        return sent
    finally:
        sock.setblocking(True)
    return sent


def test_an_announced_60mb_body_is_refused_with_413_before_it_is_sent(lite_host: host_mod.Host):
    total = 60 * MB
    chunk = b"x" * (256 * 1024)
    with _connect(lite_host) as sock:
        head = f"POST /v1/tasks HTTP/1.1\r\nHost: lite\r\nContent-Length: {total}\r\n\r\n".encode()
        sent = _send_until_answered(sock, head, iter([chunk] * (total // len(chunk))))
        response = _read_response(sock)
    assert _status(response) == "HTTP/1.1 413 Request Entity Too Large", response
    assert str(host_http.MAX_BODY_BYTES) in _body(response)["message"]
    assert sent < total // 4, f"the client sent {sent} of {total} bytes before the answer"
    assert _answers(lite_host)


def test_a_chunked_60mb_body_is_refused_with_413_once_past_the_limit(lite_host: host_mod.Host):
    total = 60 * MB
    piece = b"x" * (256 * 1024)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    with _connect(lite_host) as sock:
        head = b"POST /v1/tasks HTTP/1.1\r\nHost: lite\r\nTransfer-Encoding: chunked\r\n\r\n"
        sent = _send_until_answered(sock, head, iter([chunk] * (total // len(piece))))
        response = _read_response(sock)
    assert _status(response) == "HTTP/1.1 413 Request Entity Too Large", response
    assert host_http.MAX_BODY_BYTES < sent < total // 3, f"the client sent {sent} of {total} bytes before the answer"
    assert _answers(lite_host)


_ECHO_FUNCTION = """
import base64, json


def lambda_handler(event, context):
    body = event.get("body") or ""
    size = len(base64.b64decode(body)) if event["isBase64Encoded"] else len(body.encode())
    method = event["requestContext"]["http"]["method"]
    return {"statusCode": 200, "body": json.dumps({"length": size, "method": method})}
"""


@pytest.fixture
def echo_host(database_url: str, make_settings, tmp_path: Path) -> Iterator[host_mod.Host]:
    """A host whose API function answers with the length of the body it got."""
    root = tmp_path / f"lite_fns_{uuid.uuid4().hex[:8]}"
    (root / "echo").mkdir(parents=True)
    (root / "echo" / "handler.py").write_text(_ECHO_FUNCTION)
    spec = host_mod.HostSpec(functions_root=root, api_function="echo", workers=0)
    with host_mod.running(make_settings(database_url=database_url), spec, port=0) as host:
        yield host


def test_a_body_up_to_the_limit_reaches_the_function_whole(echo_host: host_mod.Host):
    for size in (host_http.MAX_BODY_BYTES, 9 * MB + 1):
        with _connect(echo_host) as sock:
            sock.sendall(_request("PUT", "/anything", b"x" * size))
            response = _read_response(sock)
        assert _status(response) == "HTTP/1.1 200 OK", response[:300]
        assert _body(response) == {"length": size, "method": "PUT"}
    with _connect(echo_host) as sock:
        over = host_http.MAX_BODY_BYTES + 1
        _send_until_answered(sock, _request("PUT", "/anything", b"x" * over)[:-over], iter([b"x" * over]))
        assert _status(_read_response(sock)) == "HTTP/1.1 413 Request Entity Too Large"
