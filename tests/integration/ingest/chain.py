"""A small chain for ingest tests: anvil with value transfers and ERC-20-style Transfer logs.

A hand-assembled contract at a fixed address emits ``Transfer(caller, to, value)``
(LOG3, the ERC-20 event) with ``to`` and ``value`` taken from calldata, so the
chain has logs and erc20_transfers without a compiler. A proxy in front of a
node can play a Monad node: no ``trace_*`` methods and a cap on the blocks one
``eth_getLogs`` may span.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
from trace_core.lite import anvil, procs

TRANSFER_TOPIC = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
TOKEN = "0x00000000000000000000000000000000000f0001"
# value = calldata[32:64]; mem[0:32] = value; LOG3(0, 32, Transfer, caller, calldata[0:32]); STOP
TOKEN_RUNTIME = "0x602035600052600035337f" + TRANSFER_TOPIC + "60206000a300"


_client = httpx.Client(timeout=30)  # one keep-alive connection per node: seeding makes hundreds of calls


def call(url: str, method: str, params: list[Any]) -> Any:
    body = _client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


@dataclasses.dataclass(frozen=True)
class Chain:
    url: str
    head: int

    def block(self, number: int, full: bool = False) -> dict[str, Any]:
        return call(self.url, "eth_getBlockByNumber", [hex(number), full])

    def logs(self, start: int, end: int) -> list[dict[str, Any]]:
        """Logs of blocks [start, end) as the node reports them."""
        return call(self.url, "eth_getLogs", [{"fromBlock": hex(start), "toBlock": hex(end - 1)}])


def seed(url: str, blocks: int) -> int:
    """Mine ``blocks`` blocks with a mix of transfers and token logs; returns the head."""
    accounts = call(url, "eth_accounts", [])
    call(url, "anvil_setCode", [TOKEN, TOKEN_RUNTIME])
    call(url, "evm_setAutomine", [False])
    for number in range(blocks):
        for i in range(number % 4):  # 0-3 value transfers per block
            call(url, "eth_sendTransaction", [{"from": accounts[i], "to": accounts[i + 5], "gas": hex(21_000),
                                               "value": hex(10**15 * (number + 1))}])
        if number % 3 == 1:  # a token transfer every third block (one log each)
            data = "0x" + accounts[7][2:].rjust(64, "0") + hex(1000 + number)[2:].rjust(64, "0")
            call(url, "eth_sendTransaction", [{"from": accounts[8], "to": TOKEN, "data": data, "gas": hex(100_000)}])
        call(url, "evm_mine", [])
    call(url, "evm_setAutomine", [True])
    return int(call(url, "eth_blockNumber", []), 16)


def start_seeded(log_dir: Path, blocks: int) -> Iterator[Chain]:
    port = procs.free_port()
    proc = anvil.start(port, log_dir / "anvil.log")
    try:
        url = anvil.url(port)
        yield Chain(url=url, head=seed(url, blocks))
    finally:
        procs.stop(proc.pid)
        proc.wait(timeout=10)


def rpc_error(item: dict[str, Any], code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": item.get("id"), "error": {"code": code, "message": message}}


def forward(upstream: str, item: dict[str, Any]) -> dict[str, Any]:
    return _client.post(upstream, json=item).json()


class _RpcFront(http.server.BaseHTTPRequestHandler):
    """Answers each JSON-RPC call (single or batch) with ``answer(call)``."""

    # Keep-alive, and no Nagle delay between the header and body writes (40 ms per call otherwise).
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    answer: ClassVar[Callable[[dict[str, Any]], dict[str, Any]]]

    def log_message(self, *_: object) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer = type(self).answer
        data = json.dumps([answer(i) for i in body] if isinstance(body, list) else answer(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def rpc_front(answer: Callable[[dict[str, Any]], dict[str, Any]]) -> Iterator[str]:
    """A JSON-RPC server on 127.0.0.1 answering with ``answer``; yields its URL and stops on exit."""
    handler = type("Handler", (_RpcFront,), {"answer": staticmethod(answer)})
    server = http.server.ThreadingHTTPServer((procs.HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{procs.HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclasses.dataclass
class Proxy:
    url: str
    seen: list[str]


def monad_proxy(upstream: str, *, max_log_blocks: int) -> Iterator[Proxy]:
    """A node without trace_* whose eth_getLogs spans at most ``max_log_blocks`` blocks."""
    seen: list[str] = []

    def answer(item: dict[str, Any]) -> dict[str, Any]:
        method = item.get("method", "")
        seen.append(method)
        if method.startswith("trace_"):
            return rpc_error(item, -32601, f"the method {method} does not exist/is not available")
        if method == "eth_getLogs":
            query = item["params"][0]
            if int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1 > max_log_blocks:
                return rpc_error(item, -32614, f"eth_getLogs is limited to {max_log_blocks} blocks")
        return forward(upstream, item)

    with rpc_front(answer) as url:
        yield Proxy(url=url, seen=seen)
