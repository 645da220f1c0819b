"""The compiled contracts speak Monad's staking ABI and ERC-20 (recompiled: tests/integration/test_chain_compile.py)."""

from __future__ import annotations

import hashlib

import pytest
from eth_hash.auto import keccak
from trace_core.chain import abi, artifacts

# Published by Monad (docs.monad.xyz/reference/staking/api), copied here on purpose:
# the contract must match them, not whatever our own constants say.
MONAD_SELECTORS = {
    "addValidator(bytes,bytes,bytes)": "0xf145204c",
    "delegate(uint64)": "0x84994fec",
    "undelegate(uint64,uint256,uint8)": "0x5cf41514",
    "withdraw(uint64,uint8)": "0xaed2ee73",
    "claimRewards(uint64)": "0xa76e2ca5",
    "externalReward(uint64)": "0xe4b3303b",
    "getValidator(uint64)": "0x2b6d639a",
    "getDelegator(uint64,address)": "0x573c1ce0",
    "getWithdrawalRequest(uint64,address,uint8)": "0x56fa2045",
    "getEpoch()": "0x757991a8",
    "syscallOnEpochChange(uint64)": "0x1d4e9f02",
}
MONAD_EVENTS = {
    "ValidatorCreated": ("ValidatorCreated(uint64,address,uint256)", [True, True, False]),
    "Delegate": ("Delegate(uint64,address,uint256,uint64)", [True, True, False, False]),
    "Undelegate": ("Undelegate(uint64,address,uint8,uint256,uint64)", [True, True, False, False, False]),
    "Withdraw": ("Withdraw(uint64,address,uint8,uint256,uint64)", [True, True, False, False, False]),
    "ClaimRewards": ("ClaimRewards(uint64,address,uint256,uint64)", [True, True, False, False]),
    "EpochChanged": ("EpochChanged(uint64,uint64)", [False, False]),
}
ERC20_TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def _signature(entry: dict) -> str:
    return f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"


def _entries(contract: str, kind: str) -> dict[str, dict]:
    return {e["name"]: e for e in artifacts.contract(contract).abi if e["type"] == kind}


@pytest.mark.parametrize(("signature", "expected"), sorted(MONAD_SELECTORS.items()))
def test_staking_functions_have_monads_selectors(signature, expected):
    # GIVEN the compiled stand-in WHEN we read its ABI THEN each Monad function is there with Monad's selector
    functions = {_signature(e) for e in _entries("MonadStaking", "function").values()}
    assert signature in functions
    assert "0x" + keccak(signature.encode()).hex()[:8] == expected
    assert abi.selector(signature) == expected


def test_delegate_is_payable_and_views_are_views():
    functions = _entries("MonadStaking", "function")
    assert functions["delegate"]["stateMutability"] == "payable"
    assert functions["addValidator"]["stateMutability"] == "payable"
    for view in ("getEpoch", "getValidatorStake", "getDelegatorStake", "getValidator", "getDelegator"):
        assert functions[view]["stateMutability"] == "view"


@pytest.mark.parametrize("name", sorted(MONAD_EVENTS))
def test_staking_events_are_monads_exactly(name):
    # GIVEN Monad's published event WHEN compared with the compiled ABI THEN signature, indexing and topic0 match
    signature, indexed = MONAD_EVENTS[name]
    event = _entries("MonadStaking", "event")[name]
    assert _signature(event) == signature
    assert [i["indexed"] for i in event["inputs"]] == indexed
    assert abi.topic(abi.STAKING_EVENTS[name]) == "0x" + keccak(signature.encode()).hex()


def test_token_is_an_erc20_with_owner_mint_and_burn():
    functions = {_signature(e) for e in _entries("TraceToken", "function").values()}
    assert {
        "totalSupply()",
        "balanceOf(address)",
        "transfer(address,uint256)",
        "transferFrom(address,address,uint256)",
        "approve(address,uint256)",
        "mint(address,uint256)",
        "burn(address,uint256)",
    } <= functions
    transfer = _entries("TraceToken", "event")["Transfer"]
    assert [i["indexed"] for i in transfer["inputs"]] == [True, True, False]
    assert abi.topic(_signature(transfer)) == ERC20_TRANSFER_TOPIC


def test_committed_artifacts_were_compiled_from_the_current_sources():
    # GIVEN the .sol files WHEN hashed THEN they are the ones artifacts.json was compiled from
    recorded = artifacts.load().sources
    assert recorded == {name: hashlib.sha256(text.encode()).hexdigest() for name, text in artifacts.sources().items()}
    assert artifacts.load().compiler.startswith(artifacts.SOLC_VERSION + "+")


def test_staking_stand_in_has_no_constructor_state():
    # anvil_setCode installs runtime code only: the contract must not rely on a constructor or immutables.
    staking = artifacts.contract("MonadStaking")
    assert not any(e["type"] == "constructor" for e in staking.abi)
    runtime = staking.deployed_bytecode.removeprefix("0x")
    init = staking.bytecode.removeprefix("0x")
    # The creation code is the runtime code behind a bare copy-and-return prologue (no storage writes).
    assert init.endswith(runtime)
    assert len(init) - len(runtime) < 64
