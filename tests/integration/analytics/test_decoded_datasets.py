"""The decoded relations, as the Query Service serves them, against the chain's own logs.

``staking_events`` (decoded at ingest) must hold every log the staking address
emitted, decoded the way the compiled contract's ABI says; ``erc20_transfers``
(Cryo's) must carry each Transfer's exact value. The reference decoding here uses
the solc ABI and ``trace_core.chain.abi``, not the decoder under test.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg.rows import dict_row
from trace_core.chain import abi, artifacts, rpc
from trace_core.datasets import registry

from tests.integration.analytics.conftest import NAMESPACE, Synced

COLUMNS = {  # ABI parameter -> staking_events column, per the spec in docs/specs/analytics.md
    "validatorId": "validator_id", "delegator": "delegator", "authAddress": "auth_address", "from": "from_address",
    "amount": "amount", "commission": "commission", "withdrawId": "withdraw_id",
    "activationEpoch": "activation_epoch", "epoch": "epoch", "oldEpoch": "old_epoch", "newEpoch": "epoch",
}


def _logs(url: str, address: str, end: int) -> list[dict[str, Any]]:
    with rpc.RpcClient(url) as client:
        return client.call("eth_getLogs", [{"address": address, "fromBlock": "0x0", "toBlock": rpc.quantity(end - 1)}])


def _reference(log: dict[str, Any], events: dict[str, dict[str, Any]]) -> dict[str, Any]:
    event = events[log["topics"][0]]
    inputs = event["inputs"]
    indexed = [i for i in inputs if i["indexed"]]
    data = abi.decode([i["type"] for i in inputs if not i["indexed"]], log["data"])
    values: dict[str, Any] = dict(zip([i["name"] for i in inputs if not i["indexed"]], data))
    for param, topic in zip(indexed, log["topics"][1:]):
        values[param["name"]] = abi.topic_address(topic) if param["type"] == "address" else abi.topic_int(topic)
    row: dict[str, Any] = {"block_number": rpc.to_int(log["blockNumber"]), "log_index": rpc.to_int(log["logIndex"]),
                           "event": event["name"]}
    for name, value in values.items():
        row[COLUMNS[name]] = str(value) if name in ("amount", "commission") else value
    return row


def test_staking_events_hold_every_staking_log_decoded_as_the_contract_abi_says(synced: Synced, ports):
    info = synced.chain.info
    compiled = json.loads(artifacts.ARTIFACTS_FILE.read_text())["contracts"]["MonadStaking"]["abi"]
    events = {
        abi.topic(f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"): e
        for e in compiled if e["type"] == "event"
    }
    expected = [_reference(log, events) for log in _logs(synced.chain.url, info.staking.address, synced.end)]
    query, _ = ports("staking_events")
    answer = query.query(
        "SELECT * FROM staking_events ORDER BY block_number, log_index"
    )
    rows = [dict(zip(answer.columns, row)) for row in answer.rows]
    # THEN one row per log, in chain order, each carrying exactly its event's values (others null)
    assert len(rows) == len(expected) > 100
    for got, want in zip(rows, expected):
        assert {k: got[k] for k in want} == want
        filled = {k for k, v in got.items() if v is not None} - {"transaction_index", "transaction_hash", "chain_id"}
        assert filled == set(want)
    kinds = {r["event"] for r in rows}
    assert {"ValidatorCreated", "Delegate", "Undelegate", "Withdraw", "ClaimRewards", "EpochChanged"} <= kinds


def test_erc20_transfers_carry_each_transfer_value_exactly(synced: Synced, ports):
    info = synced.chain.info
    transfer = abi.topic(abi.TOKEN_EVENTS["Transfer"])
    logs = [log for log in _logs(synced.chain.url, info.token.address, synced.end) if log["topics"][0] == transfer]
    query, _ = ports("erc20_transfers")
    answer = query.query("SELECT block_number, log_index, from_address, to_address, value_string FROM erc20_transfers "
                         "ORDER BY block_number, log_index")
    assert [tuple(r) for r in answer.rows] == [
        (rpc.to_int(log["blockNumber"]), rpc.to_int(log["logIndex"]), abi.topic_address(log["topics"][1]),
         abi.topic_address(log["topics"][2]), str(abi.decode(["uint256"], log["data"])[0]))
        for log in logs
    ]
    assert max(int(r[4]) for r in answer.rows) >= 2**128


def test_staking_events_are_committed_versions_recording_their_decoder(synced: Synced):
    # The derived dataset follows the commit protocol: committed versions tiling the synced range,
    # whose provenance names the decoder that produced them.
    with psycopg.connect(synced.settings.database_url or "", row_factory=dict_row) as conn:
        versions = registry.list_committed(conn, f"{NAMESPACE}/staking_events")
    assert [(v.range_start, v.range_end) for v in versions] == [(0, 200), (200, 400), (400, 600), (600, 601)]
    assert all(v.cryo_version and v.cryo_version.endswith("+ staking_events/1") for v in versions)
