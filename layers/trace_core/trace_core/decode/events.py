"""The Monad staking precompile's events: their ABI, canonical signatures and topic0s. Pure.

The ABI is Monad's own (docs.monad.xyz, staking precompile reference), written out
here rather than taken from the local stand-in contract, so that the decoder is
defined by the chain we target and a test checks the local contract against it.
``ValidatorRewarded`` is Monad's too; it changes no stake but is kept so that the
decoded relation holds every event the precompile emits.
"""

from __future__ import annotations

import dataclasses

from eth_hash.auto import keccak

STAKING_ADDRESS = "0x0000000000000000000000000000000000001000"
"""Monad's staking precompile address: only logs emitted here are staking events."""


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    type: str
    indexed: bool = False


@dataclasses.dataclass(frozen=True)
class Event:
    """One event's ABI. ``column`` maps an ABI parameter to the ``staking_events`` column it fills."""

    name: str
    params: tuple[Param, ...]
    column: dict[str, str]

    @property
    def signature(self) -> str:
        """The canonical signature, e.g. ``Delegate(uint64,address,uint256,uint64)``."""
        return f"{self.name}({','.join(p.type for p in self.params)})"

    @property
    def topic0(self) -> str:
        """keccak-256 of the canonical signature, as lowercase ``0x`` hex."""
        return "0x" + keccak(self.signature.encode()).hex()

    @property
    def indexed(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.indexed)

    @property
    def data(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if not p.indexed)


STAKING_EVENTS: tuple[Event, ...] = (
    Event(
        "ValidatorCreated",
        (Param("validatorId", "uint64", True), Param("authAddress", "address", True), Param("commission", "uint256")),
        {"validatorId": "validator_id", "authAddress": "auth_address", "commission": "commission"},
    ),
    Event(
        "Delegate",
        (Param("validatorId", "uint64", True), Param("delegator", "address", True), Param("amount", "uint256"),
         Param("activationEpoch", "uint64")),
        {"validatorId": "validator_id", "delegator": "delegator", "amount": "amount",
         "activationEpoch": "activation_epoch"},
    ),
    Event(
        "Undelegate",
        (Param("validatorId", "uint64", True), Param("delegator", "address", True), Param("withdrawId", "uint8"),
         Param("amount", "uint256"), Param("activationEpoch", "uint64")),
        {"validatorId": "validator_id", "delegator": "delegator", "withdrawId": "withdraw_id", "amount": "amount",
         "activationEpoch": "activation_epoch"},
    ),
    Event(
        "Withdraw",
        (Param("validatorId", "uint64", True), Param("delegator", "address", True), Param("withdrawId", "uint8"),
         Param("amount", "uint256"), Param("epoch", "uint64")),
        {"validatorId": "validator_id", "delegator": "delegator", "withdrawId": "withdraw_id", "amount": "amount",
         "epoch": "epoch"},
    ),
    Event(
        "ClaimRewards",
        (Param("validatorId", "uint64", True), Param("delegator", "address", True), Param("amount", "uint256"),
         Param("epoch", "uint64")),
        {"validatorId": "validator_id", "delegator": "delegator", "amount": "amount", "epoch": "epoch"},
    ),
    Event(
        "ValidatorRewarded",
        (Param("validatorId", "uint64", True), Param("from", "address", True), Param("amount", "uint256"),
         Param("epoch", "uint64")),
        {"validatorId": "validator_id", "from": "from_address", "amount": "amount", "epoch": "epoch"},
    ),
    Event(
        "EpochChanged",
        (Param("oldEpoch", "uint64"), Param("newEpoch", "uint64")),
        {"oldEpoch": "old_epoch", "newEpoch": "epoch"},
    ),
)

BY_TOPIC0: dict[str, Event] = {event.topic0: event for event in STAKING_EVENTS}
BY_NAME: dict[str, Event] = {event.name: event for event in STAKING_EVENTS}
