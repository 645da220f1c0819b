"""Errors of the local chain package: RPC failures, compile failures, seeding failures."""

from __future__ import annotations

from trace_core import errors


class ChainError(errors.TraceError):
    """Something about the local chain went wrong; ``fix`` says what to do when we know."""


class RpcError(ChainError):
    """A JSON-RPC call failed. ``method`` names the call; ``code`` and ``rpc_message`` are the node's answer.

    ``code`` is None when the node never answered (connection refused, timeout,
    a body that is not JSON-RPC).
    """

    def __init__(self, method: str, rpc_message: str, *, code: int | None = None, url: str = "") -> None:
        where = f" at {url}" if url else ""
        super().__init__(
            f"JSON-RPC {method}{where} failed: {rpc_message}" + (f" (code {code})" if code is not None else ""),
            method=method,
            code=code,
            rpc_message=rpc_message,
            url=url,
        )
        self.method = method
        self.code = code
        self.rpc_message = rpc_message


class CompileError(ChainError):
    """solcjs failed or is missing; ``fix`` says how to get it."""


class SeedError(ChainError):
    """The chain cannot be seeded as asked (bad argument, node not fresh, a transaction failed)."""
