"""The local Monad-like chain: contracts, deterministic activity, seeding, caching (docs/chain.md).

Public API:

- :func:`seed` (``seeder.seed``): seed a fresh anvil at an RPC URL; returns :class:`ChainInfo`.
- :func:`read_info` / :func:`write_info`: ``<TRACE_HOME>/chain.json``.
- an anvil of our own already seeded from the cache: ``trace_core.lite.seeded_node.start_seeded`` (it runs a
  local process, so it belongs to the Lite shell).
- :class:`RpcClient` (``rpc.RpcClient``): a small JSON-RPC client (call, batch) others can reuse.
"""

from __future__ import annotations

from trace_core.chain.info import ChainInfo
from trace_core.chain.info import read as read_info
from trace_core.chain.info import write as write_info
from trace_core.chain.rpc import RpcClient
from trace_core.chain.seeder import seed

__all__ = ["ChainInfo", "RpcClient", "read_info", "seed", "write_info"]
