"""Staking decoder: ABI against the compiled contract, exact amounts, fail-closed on malformed logs."""

from __future__ import annotations

import json
from typing import Any

import eth_abi
import pyarrow as pa
import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from trace_core.chain import artifacts
from trace_core.decode import errors, events, staking

STAKING = events.STAKING_ADDRESS
OTHER = "0x" + "ab" * 20
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20


def _keccak(text: str) -> str:
    return "0x" + pycryptodome_keccak.new(digest_bits=256, data=text.encode()).hexdigest()


def _word(value: int | str) -> str:
    if isinstance(value, str):
        return "0x" + "00" * 12 + value.removeprefix("0x")
    return "0x" + value.to_bytes(32, "big").hex()


def _log(block: int, index: int, name: str, indexed: list[Any], data: list[Any], *,
         address: str = STAKING) -> dict[str, Any]:
    event = events.BY_NAME[name]
    topics = [_word(v) for v in indexed] + [None] * (3 - len(indexed))
    return {
        "block_number": block, "transaction_index": 0, "log_index": index,
        "transaction_hash": "0x" + f"{block:02x}{index:02x}" * 16, "address": address,
        "topic0": event.topic0, "topic1": topics[0], "topic2": topics[1], "topic3": topics[2],
        "data": "0x" + eth_abi.encode([p.type for p in event.data], data).hex(), "chain_id": 10143,
    }


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows)


def test_topic0s_are_keccak_of_the_canonical_signatures_of_the_compiled_contract():
    # GIVEN the ABI solc produced for the local stand-in of Monad's precompile
    abi = json.loads(artifacts.ARTIFACTS_FILE.read_text())["contracts"]["MonadStaking"]["abi"]
    compiled = {
        item["name"]: (
            f"{item['name']}({','.join(i['type'] for i in item['inputs'])})",
            tuple(i["indexed"] for i in item["inputs"]),
        )
        for item in abi if item["type"] == "event"
    }
    for event in events.STAKING_EVENTS:
        # THEN our signature, its indexed flags and topic0 agree with the compiler and an independent keccak
        assert compiled[event.name] == (event.signature, tuple(p.indexed for p in event.params))
        assert event.topic0 == _keccak(event.signature)
    assert events.BY_NAME["Delegate"].signature == "Delegate(uint64,address,uint256,uint64)"
    assert events.BY_NAME["EpochChanged"].signature == "EpochChanged(uint64,uint64)"


def test_every_event_decodes_with_exact_uint256_values():
    # GIVEN one log of each event, amounts at and above 2**128 up to the uint256 maximum
    huge = 2**256 - 1
    logs = _table([
        _log(5, 0, "ValidatorCreated", [1, ALICE], [10**17]),
        _log(5, 1, "Delegate", [1, ALICE], [2**128, 3]),
        _log(6, 0, "Undelegate", [1, ALICE], [7, 2**128 + 1, 4]),
        _log(7, 0, "Withdraw", [1, ALICE], [7, huge, 5]),
        _log(7, 1, "ClaimRewards", [1, BOB], [12345, 5]),
        _log(8, 0, "ValidatorRewarded", [2, BOB], [99, 6]),
        _log(9, 0, "EpochChanged", [], [6, 7]),
    ])
    # WHEN decoded
    out = staking.staking_events(logs)
    # THEN every column carries the event's values, uint256 as exact decimal text
    assert out.schema == staking.SCHEMA
    rows = out.to_pylist()
    assert [r["event"] for r in rows] == [
        "ValidatorCreated", "Delegate", "Undelegate", "Withdraw", "ClaimRewards", "ValidatorRewarded", "EpochChanged",
    ]
    created, delegate, undelegate, withdraw, claim, rewarded, epoch = rows
    assert (created["validator_id"], created["auth_address"], created["commission"]) == (1, ALICE, str(10**17))
    assert created["delegator"] is None and created["amount"] is None
    assert (delegate["delegator"], delegate["amount"], delegate["activation_epoch"]) == (ALICE, str(2**128), 3)
    assert (undelegate["withdraw_id"], undelegate["amount"], undelegate["activation_epoch"]) == (7, str(2**128 + 1), 4)
    assert int(withdraw["amount"]) == huge and withdraw["epoch"] == 5
    assert (claim["delegator"], claim["amount"], claim["epoch"]) == (BOB, "12345", 5)
    assert (rewarded["validator_id"], rewarded["from_address"], rewarded["amount"]) == (2, BOB, "99")
    assert (epoch["old_epoch"], epoch["epoch"], epoch["validator_id"]) == (6, 7, None)
    assert delegate["transaction_hash"] == "0x" + "0501" * 16 and delegate["chain_id"] == 10143


def test_binary_columns_decode_like_hex_text():
    # GIVEN the same logs as Cryo writes them with hex: false (binary columns)
    rows = [_log(3, 0, "Delegate", [4, BOB], [2**200, 1]), _log(3, 1, "Delegate", [4, ALICE], [5, 1], address=OTHER)]
    binary = [
        {k: (bytes.fromhex(v[2:]) if isinstance(v, str) and v.startswith("0x") else v) for k, v in r.items()}
        for r in rows
    ]
    # WHEN both forms are decoded
    from_hex = staking.staking_events(_table(rows)).to_pylist()
    from_binary = staking.staking_events(_table(binary)).to_pylist()
    # THEN they agree, and the log from another address is ignored
    assert from_hex == from_binary
    assert [(r["delegator"], r["amount"]) for r in from_hex] == [(BOB, str(2**200))]


def test_other_emitters_and_unknown_topics_are_ignored_and_rows_come_out_in_chain_order():
    transfer = _log(2, 0, "Delegate", [1, ALICE], [5, 1])
    transfer["topic0"] = _keccak("Transfer(address,address,uint256)")
    logs = _table([
        _log(4, 2, "Delegate", [1, ALICE], [3, 1]),
        transfer,
        _log(4, 1, "Delegate", [1, BOB], [2, 1], address=OTHER),
        _log(1, 9, "Delegate", [1, BOB], [1, 1]),
    ])
    out = staking.staking_events(logs).to_pylist()
    assert [(r["block_number"], r["log_index"], r["amount"]) for r in out] == [(1, 9, "1"), (4, 2, "3")]


def test_no_staking_logs_gives_an_empty_table_with_the_schema():
    empty = staking.staking_events(_table([_log(1, 0, "Delegate", [1, ALICE], [1, 1], address=OTHER)]))
    assert empty.num_rows == 0 and empty.schema == staking.SCHEMA


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.update(topic2=None), "topics"),
        (lambda r: r.update(topic3=_word(1)), "topics"),
        (lambda r: r.update(data=r["data"][:-2]), "data"),
        (lambda r: r.update(data=r["data"] + "00" * 32), "data"),
        (lambda r: r.update(topic1="0x" + "ff" * 32), "validatorId"),  # uint64 with non-zero padding
        (lambda r: r.update(topic2="0x" + "11" * 32), "delegator"),  # address with non-zero padding
        (lambda r: r.update(data="0xzz"), "data"),
    ],
)
def test_a_malformed_staking_log_is_an_error_naming_block_log_and_field(mutate, field):
    # GIVEN a Delegate log at the staking address, damaged
    row = _log(42, 3, "Delegate", [1, ALICE], [5, 1])
    mutate(row)
    # WHEN decoded THEN it fails closed, saying where and what
    with pytest.raises(errors.DecodeError) as info:
        staking.staking_events(_table([row]))
    assert "log 3 of block 42" in info.value.message
    assert info.value.details["field"] == field


def test_a_table_without_cryo_log_columns_is_rejected_naming_the_column():
    with pytest.raises(errors.InputSchemaError) as info:
        staking.staking_events(pa.table({"block_number": [1], "log_index": [0], "address": [STAKING]}))
    assert info.value.details["field"] == "topic0"
    assert "topic0" in info.value.message
