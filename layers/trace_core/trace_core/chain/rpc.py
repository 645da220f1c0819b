"""A small JSON-RPC client over httpx: one call, or many in one HTTP batch.

Errors name the method and carry the node's own message
(:class:`~trace_core.chain.errors.RpcError`), so a failure reads
"JSON-RPC eth_call at http://127.0.0.1:8545 failed: execution reverted (code 3)".
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Self

import httpx

from trace_core.chain import errors

Params = Sequence[Any]


class RpcClient:
    """JSON-RPC 2.0 over HTTP. Reuses one connection; close it (or use ``with``) when done."""

    def __init__(self, url: str, *, timeout: float = 60.0, client: httpx.Client | None = None) -> None:
        self.url = url
        self._client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None
        self._ids = itertools.count(1)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def call(self, method: str, params: Params = ()) -> Any:
        """Call ``method`` and return its ``result``; raise RpcError naming the method on any failure."""
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        body = self._post(request, method)
        if not isinstance(body, dict):
            raise errors.RpcError(method, f"expected a JSON-RPC object, got {type(body).__name__}", url=self.url)
        return self._result(body, method)

    def batch(self, calls: Sequence[tuple[str, Params]]) -> list[Any]:
        """Send ``calls`` as one JSON-RPC batch; results come back in the order of ``calls``.

        If any call fails, RpcError names the first failing method (by position),
        after the whole batch has been sent: the node may have applied the others.
        """
        if not calls:
            return []
        first_id = next(self._ids)
        self._ids = itertools.count(first_id + len(calls))
        requests = [
            {"jsonrpc": "2.0", "id": first_id + i, "method": method, "params": list(params)}
            for i, (method, params) in enumerate(calls)
        ]
        label = f"batch of {len(calls)} ({calls[0][0]}, ...)"
        body = self._post(requests, label)
        if not isinstance(body, list):
            # A node answers a whole batch with one error object when it rejects the batch itself.
            if isinstance(body, dict) and "error" in body:
                self._result(body, label)
            raise errors.RpcError(label, f"expected a JSON-RPC array, got {type(body).__name__}", url=self.url)
        by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
        results = []
        for i, (method, _) in enumerate(calls):
            item = by_id.get(first_id + i)
            if item is None:
                raise errors.RpcError(method, f"no answer for call #{i} of the batch", url=self.url)
            results.append(self._result(item, f"{method} (call #{i} of the batch)"))
        return results

    def _post(self, payload: object, method: str) -> Any:
        try:
            response = self._client.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise errors.RpcError(method, f"{type(exc).__name__}: {exc}", url=self.url) from exc
        if response.status_code != 200:
            raise errors.RpcError(
                method, f"HTTP {response.status_code}: {response.text[:300]}", url=self.url
            )
        try:
            return response.json()
        except ValueError as exc:
            raise errors.RpcError(method, f"answer is not JSON: {response.text[:300]}", url=self.url) from exc

    def _result(self, item: dict[str, Any], method: str) -> Any:
        error = item.get("error")
        if error is not None:
            if isinstance(error, dict):
                message = str(error.get("message", error))
                data = error.get("data")
                if data:
                    message += f" (data: {str(data)[:200]})"
                code = error.get("code")
                raise errors.RpcError(method, message, code=code if isinstance(code, int) else None, url=self.url)
            raise errors.RpcError(method, str(error), url=self.url)
        if "result" not in item:
            raise errors.RpcError(method, "answer has neither result nor error", url=self.url)
        return item["result"]


def to_int(value: str) -> int:
    """A JSON-RPC quantity (``"0x1a"``) as an int."""
    return int(value, 16)


def quantity(value: int) -> str:
    """An int as a JSON-RPC quantity (``26`` -> ``"0x1a"``)."""
    return hex(value)
