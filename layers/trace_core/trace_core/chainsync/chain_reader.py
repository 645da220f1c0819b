"""What the planner needs from the chain: the safe head and block hashes (JSON-RPC adapter)."""

from __future__ import annotations

from typing import Protocol

import httpx

from trace_core.chainsync import errors


class ChainReader(Protocol):
    def safe_head(self, *, confirmations: int, use_finalized_tag: bool) -> int:
        """The highest block the planner may schedule (inclusive)."""

    def block_hash(self, number: int) -> str | None:
        """The canonical hash of block ``number`` now, or None if the node has no such block."""


class RpcChainReader:
    """JSON-RPC over HTTP; the first URL of the pool that answers."""

    def __init__(self, urls: list[str], *, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self._urls = urls
        self._client = client or httpx.Client(timeout=timeout)

    def _call(self, method: str, params: list[object]) -> object:
        last: Exception | None = None
        for url in self._urls:
            try:
                response = self._client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                body = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                last = exc
                continue
            if "error" in body:
                raise errors.ChainSyncError(f"{method} failed at {url}: {body['error'].get('message')}", method=method)
            return body.get("result")
        raise errors.ChainSyncError(f"{method}: no RPC URL answered ({last})", method=method)

    def safe_head(self, *, confirmations: int, use_finalized_tag: bool) -> int:
        if use_finalized_tag:
            try:
                block = self._call("eth_getBlockByNumber", ["finalized", False])
                if isinstance(block, dict) and block.get("number"):
                    return int(block["number"], 16)
            except errors.ChainSyncError:
                pass  # the node has no finalized tag: fall back to head minus confirmations
        head = int(str(self._call("eth_blockNumber", [])), 16)
        return max(-1, head - confirmations)

    def block_hash(self, number: int) -> str | None:
        block = self._call("eth_getBlockByNumber", [hex(number), False])
        return str(block["hash"]) if isinstance(block, dict) else None
