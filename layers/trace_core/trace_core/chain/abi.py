"""ABI helpers for the local chain: selectors, event topics, calldata, addresses. Pure (no I/O).

Addresses are lowercase ``0x`` hex strings throughout, as JSON-RPC returns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import eth_abi.abi
from eth_hash.auto import keccak

STAKING_ADDRESS = "0x0000000000000000000000000000000000001000"
"""Monad's staking precompile address, where the stand-in contract is placed."""

SYSTEM_ADDRESS = "0xfffffffffffffffffffffffffffffffffffffffe"
"""The sender of system calls (``syscallOnEpochChange``); impersonated on anvil."""

ZERO_ADDRESS = "0x" + "00" * 20

# Monad's staking events, exactly as docs.monad.xyz (staking precompile reference) spells them.
STAKING_EVENTS: dict[str, str] = {
    "ValidatorCreated": "ValidatorCreated(uint64,address,uint256)",
    "Delegate": "Delegate(uint64,address,uint256,uint64)",
    "Undelegate": "Undelegate(uint64,address,uint8,uint256,uint64)",
    "Withdraw": "Withdraw(uint64,address,uint8,uint256,uint64)",
    "ClaimRewards": "ClaimRewards(uint64,address,uint256,uint64)",
    "ValidatorRewarded": "ValidatorRewarded(uint64,address,uint256,uint64)",
    "EpochChanged": "EpochChanged(uint64,uint64)",
}

TOKEN_EVENTS: dict[str, str] = {
    "Transfer": "Transfer(address,address,uint256)",
    "Approval": "Approval(address,address,uint256)",
}


def keccak_hex(data: bytes) -> str:
    return "0x" + keccak(data).hex()


def selector(signature: str) -> str:
    """The 4-byte function selector of a canonical signature, e.g. ``delegate(uint64)`` -> ``0x84994fec``."""
    return "0x" + keccak(signature.encode()).hex()[:8]


def topic(signature: str) -> str:
    """topic0 of an event: keccak-256 of its canonical signature."""
    return keccak_hex(signature.encode())


def _types(signature: str) -> list[str]:
    inner = signature[signature.index("(") + 1 : signature.rindex(")")]
    return [part for part in inner.split(",") if part]


def encode_call(signature: str, *args: Any) -> str:
    """Calldata for ``signature`` with ``args``, as a ``0x`` hex string."""
    types = _types(signature)
    if len(types) != len(args):
        raise ValueError(f"{signature} takes {len(types)} arguments, got {len(args)}")
    return selector(signature) + eth_abi.abi.encode(types, list(args)).hex()


def decode(types: Sequence[str], data: str) -> tuple[Any, ...]:
    """Decode ``0x`` hex ``data`` (a call result or a log's data) as ``types``."""
    return tuple(eth_abi.abi.decode(list(types), bytes.fromhex(data.removeprefix("0x"))))


def topic_address(value: str) -> str:
    """An indexed address topic (32 bytes) as a 20-byte address."""
    return "0x" + value.removeprefix("0x")[-40:].lower()


def topic_int(value: str) -> int:
    return int(value, 16)


def address_from_label(label: str) -> str:
    """A fixed, well-spread address derived from ``label`` (no private key exists for it)."""
    return "0x" + keccak(label.encode()).hex()[-40:]


def create_address(sender: str, nonce: int) -> str:
    """The address of a contract created by ``sender`` with ``nonce`` (CREATE: keccak(rlp([sender, nonce])))."""
    if not 0 <= nonce < 0x80:
        raise ValueError(f"nonce: expected 0 <= nonce < 128 (single-byte RLP), got {nonce}")
    sender_bytes = bytes.fromhex(sender.removeprefix("0x"))
    nonce_rlp = b"\x80" if nonce == 0 else bytes([nonce])
    payload = b"\x94" + sender_bytes + nonce_rlp
    return "0x" + keccak(bytes([0xC0 + len(payload)]) + payload).hex()[-40:]
