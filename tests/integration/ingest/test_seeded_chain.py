"""cryo_ingest over the shared seeded Monad-like chain, served the Monad way (no trace_*, small eth_getLogs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from trace_core.datasets import registry

from tests.integration.ingest import chain as chain_mod
from tests.integration.ingest.helpers import committed_table, run_attempt

TRANSFER = "0x" + chain_mod.TRANSFER_TOPIC


@pytest.fixture
def monad_seeded(seeded_chain) -> Iterator[chain_mod.Proxy]:
    yield from chain_mod.monad_proxy(seeded_chain.url, max_log_blocks=10)


def test_the_seeded_chain_syncs_with_counts_the_node_reports(seeded_chain, monad_seeded, conn, make_s3_store,
                                                             make_settings, moto_url, make_attempt):
    store = make_s3_store()
    settings = make_settings(aws_endpoint_url=moto_url, datasets_bucket=store.bucket)
    info = seeded_chain.info
    start, end = info.first_block, info.end_block
    # GIVEN the seeded chain's whole range, Monad datasets, logs 10 blocks per request, sub-ranges of 100
    lease = make_attempt({
        "chain_id": info.chain_id, "namespace": "seeded", "range_start": start, "range_end": end,
        "datasets": ["blocks", "transactions", "logs", "geth_calls", "erc20_transfers"],
        "rpc": {"urls": [monad_seeded.url], "max_blocks_per_logs_request": 10, "trace_api": False},
        "extract": {"chunk_blocks": 100}})
    # WHEN ingested
    assert run_attempt(conn, lease, settings).status == "completed"
    versions = {v.dataset_key.split("/")[1]: v for v in
                (registry.list_committed(conn, f"seeded/{d}")[0]
                 for d in ("blocks", "transactions", "logs", "geth_calls", "erc20_transfers"))}
    # THEN blocks are exactly [first, end) and end at the seeded chain's last hash
    blocks = committed_table(conn, store, versions["blocks"].dataset_version)
    assert sorted(blocks.column("block_number").to_pylist()) == list(range(start, end))
    assert versions["blocks"].last_block_hash == info.last_block_hash
    # AND transactions match the seeder's count, logs and token transfers match eth_getLogs
    assert versions["transactions"].row_count == info.transactions
    node_logs = [log for lo in range(start, end, 10)
                 for log in chain_mod.call(seeded_chain.url, "eth_getLogs", [
                     {"fromBlock": hex(lo), "toBlock": hex(min(lo + 10, end) - 1)}])]
    assert versions["logs"].row_count == len(node_logs) > 0
    token_transfers = [x for x in node_logs if x["address"].lower() == info.token.address.lower()
                       and x["topics"][0] == TRANSFER and len(x["topics"]) == 3]
    assert versions["erc20_transfers"].row_count == len(token_transfers) > 0
    assert versions["geth_calls"].row_count >= info.transactions
