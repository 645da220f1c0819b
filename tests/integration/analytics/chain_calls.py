"""What the chain itself says, by eth_call at historical blocks (batched): the ground truth of the tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trace_core.chain import abi, rpc

BATCH = 250


def uint_calls(url: str, calls: Sequence[tuple[str, str, Sequence[Any], int]]) -> list[int]:
    """``[(contract, signature, args, block)]`` -> each call's uint256 result at that block (0 before deployment)."""
    out: list[int] = []
    with rpc.RpcClient(url) as client:
        for i in range(0, len(calls), BATCH):
            chunk = calls[i : i + BATCH]
            answers = client.batch([
                ("eth_call", [{"to": to, "data": abi.encode_call(signature, *args)}, rpc.quantity(block)])
                for to, signature, args, block in chunk
            ])
            # No code at the address yet (a block before deployment) answers "0x": nothing exists, so 0.
            out.extend(abi.decode(["uint256"], a)[0] if a not in ("0x", "") else 0 for a in answers)
    return out
