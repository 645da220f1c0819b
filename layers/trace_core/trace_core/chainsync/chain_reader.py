"""What the planner needs from the chain: the safe head and block hashes (JSON-RPC adapter)."""

from __future__ import annotations

from typing import Protocol

import httpx

from trace_core import redact
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
                raise errors.ChainSyncError(
                    f"{method} failed at {redact.url(url)}: {body['error'].get('message')}", method=method)
            return body.get("result")
        raise errors.ChainSyncError(f"{method}: no RPC URL answered ({redact.text(str(last))})", method=method)

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


def check_pool(urls: list[str], chain_id: int, *, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
    """Every URL of the pool answers ``eth_chainId`` with ``chain_id``; raise naming the first that does not.

    Data from another chain would be committed under the spec's chain id, so a
    mismatch is refused before anything is written. URLs in errors are redacted.
    """
    http = client or httpx.Client(timeout=timeout)
    try:
        for index, url in enumerate(urls):
            shown = redact.url(url)
            where = f"rpc.urls[{index}] ({shown})"
            body: object = None
            try:
                response = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
                response.raise_for_status()
                body = response.json()
                answered = int(str(body["result"]), 16)  # type: ignore[index]
            except httpx.HTTPStatusError as exc:
                raise errors.RpcUnreachableError(
                    f"{where} answered HTTP {exc.response.status_code} to eth_chainId", url=shown, field="rpc.urls",
                    fix="check the URL and its API key, or remove it from rpc.urls") from exc
            except httpx.HTTPError as exc:
                raise errors.RpcUnreachableError(
                    f"{where} did not answer eth_chainId ({type(exc).__name__}: {redact.text(str(exc)) or 'no reply'})",
                    url=shown, field="rpc.urls", fix="start that node or correct the URL, then apply again") from exc
            except (ValueError, KeyError, TypeError) as exc:
                error = body.get("error") if isinstance(body, dict) else None
                said = f"error {error.get('message')!r}" if isinstance(error, dict) else "no chain id"
                raise errors.RpcUnreachableError(
                    f"{where} is not a JSON-RPC node: eth_chainId returned {said}", url=shown, field="rpc.urls",
                    fix="check that the URL is an Ethereum JSON-RPC endpoint") from exc
            if answered != chain_id:
                raise errors.ChainIdMismatchError(
                    f"chain_id: the spec says {chain_id} but {where} serves chain {answered}", field="chain_id",
                    url=shown, expected=chain_id, got=answered,
                    fix=f"set chain_id: {answered} if that chain is the one you mean, or point rpc.urls at chain "
                        f"{chain_id}")
    finally:
        if client is None:
            http.close()
