"""cryo_ingest end to end on real anvil, real Cryo, moto S3 and Postgres.

What users rely on: one committed version per dataset and range, whose rows
are exactly the chain's blocks [from, to) (end-exclusive), whose counts equal
what the node reports, whose manifest matches the objects, and whose range
hashes link to the neighbouring ranges.
"""

from __future__ import annotations

from typing import Any

import pytest
from trace_core.datasets import commit, naming, registry
from trace_core.ingest import operator, request
from trace_core.worker import errors as worker_errors
from trace_core.worker import ports
from trace_core.worker import registry as worker_registry

from tests.integration.ingest.helpers import committed_table, run_attempt

ALL = ["blocks", "transactions", "logs", "traces", "geth_calls", "native_transfers", "erc20_transfers"]


@pytest.fixture
def store(make_s3_store):
    return make_s3_store()


@pytest.fixture
def settings(make_settings, moto_url, store):
    return make_settings(aws_endpoint_url=moto_url, datasets_bucket=store.bucket)


def payload(chain: Any, namespace: str, start: int, end: int, **extra: Any) -> dict[str, Any]:
    return {"chain_id": 10143, "namespace": namespace, "range_start": start, "range_end": end,
            "rpc": {"urls": [chain.url], "max_blocks_per_logs_request": 10}, **extra}


def test_a_range_commits_one_version_per_dataset_matching_the_chain(chain, conn, store, settings, make_attempt):
    # GIVEN a task for blocks [5, 37) of every dataset, in sub-ranges of 10 blocks
    start, end = 5, 37
    lease = make_attempt(payload(chain, "e2e", start, end, datasets=ALL, extract={"chunk_blocks": 10}))
    # WHEN the operator runs and the attempt completes with its hook
    task = run_attempt(conn, lease, settings)
    # THEN the task is completed and every dataset has exactly one committed version for the range
    assert task.status == "completed"
    config = request.parse(lease.task.payload).effective_config_hash
    versions = {}
    for dataset in ALL:
        [version] = registry.list_committed(conn, f"e2e/{dataset}")
        assert (version.range_start, version.range_end) == (start, end)
        assert version.dataset_version == naming.version_id(
            chain_id=10143, dataset_key=f"e2e/{dataset}", range_start=start, range_end=end, config_hash=config)
        assert task.outputs["versions"][dataset]["dataset_version"] == version.dataset_version
        versions[dataset] = version

    # AND blocks hold exactly [start, end): block end-1 is in, block end is not (invariant 6)
    blocks = committed_table(conn, store, versions["blocks"].dataset_version)
    assert sorted(blocks.column("block_number").to_pylist()) == list(range(start, end))
    node_hashes = {n: chain.block(n)["hash"] for n in range(start, end)}
    assert dict(zip(blocks.column("block_number").to_pylist(), blocks.column("block_hash").to_pylist())) == node_hashes

    # AND transactions per block equal what eth_getBlockByNumber reports
    txs = committed_table(conn, store, versions["transactions"].dataset_version).column("block_number").to_pylist()
    assert {n: txs.count(n) for n in range(start, end)} == {
        n: len(chain.block(n)["transactions"]) for n in range(start, end)}
    assert versions["transactions"].row_count == len(txs) > 0

    # AND logs and token transfers equal what eth_getLogs reports
    node_logs = chain.logs(start, end)
    assert versions["logs"].row_count == len(node_logs) > 0
    assert versions["erc20_transfers"].row_count == len(node_logs)
    logs = committed_table(conn, store, versions["logs"].dataset_version)
    assert sorted(logs.column("transaction_hash").to_pylist()) == sorted(x["transactionHash"] for x in node_logs)

    # AND both trace flavours saw every transaction (one top-level call each, at least)
    for flavour in ("traces", "geth_calls", "native_transfers"):
        assert versions[flavour].row_count >= len(txs)

    # AND the range is hash-linked to its neighbours through the manifest
    assert versions["blocks"].first_parent_hash == chain.block(start)["parentHash"]
    assert versions["blocks"].last_block_hash == chain.block(end - 1)["hash"]

    # AND each version's files are Cryo's aligned sub-ranges
    _, manifest = commit.read_manifest(conn, store, versions["logs"].dataset_version)
    assert [(f.range_start, f.range_end) for f in manifest.files] == [(5, 10), (10, 20), (20, 30), (30, 37)]
    assert manifest.extract["hex"] is True and manifest.cryo_version


def test_the_same_range_run_again_maps_to_the_same_version(chain, conn, store, settings, make_attempt):
    # GIVEN a committed range
    body = payload(chain, "again", 0, 25, datasets=["blocks", "logs"])
    first = run_attempt(conn, make_attempt(body), settings)
    # WHEN another task extracts the same range with the same config
    second = run_attempt(conn, make_attempt(body), settings)
    # THEN it lands on the same deterministic versions, and nothing is published twice
    assert first.outputs["versions"] == second.outputs["versions"]
    for dataset in ("blocks", "logs"):
        [version] = registry.list_committed(conn, f"again/{dataset}")
        assert version.created_by_task == first.task_id


def test_adjacent_ranges_link_by_hash(chain, conn, store, settings, make_attempt):
    left = run_attempt(conn, make_attempt(payload(chain, "linked", 10, 20, datasets=["blocks"])), settings)
    right = run_attempt(conn, make_attempt(payload(chain, "linked", 20, 30, datasets=["blocks"])), settings)
    assert left.outputs["last_hash"] == right.outputs["first_parent_hash"]
    a, b = registry.list_committed(conn, "linked/blocks")
    assert a.last_block_hash == b.first_parent_hash


def test_the_catalogued_operator_works_through_the_workers_ports_and_maps_errors(chain, conn, store, settings,
                                                                                 make_attempt):
    # GIVEN the operator as a worker pool finds it (from the platform's catalogue)
    cryo_ingest = worker_registry.for_pool(["cryo_ingest"]).get("cryo_ingest")
    assert cryo_ingest is operator.OPERATOR and cryo_ingest.ports == {"object_store", "rpc"}
    worker_ports = ports.WorkerPorts(settings)
    # WHEN it runs with the ports a worker builds from its settings (S3 endpoint and bucket from them)
    lease = make_attempt(payload(chain, "viaregistry", 0, 5, datasets=["blocks"]))
    ctx = worker_ports.context(lease, cryo_ingest)
    outputs = cryo_ingest.fn(ctx)
    # THEN it staged into the settings' bucket and armed the commit hook
    assert outputs["versions"]["blocks"]["row_count"] == 5
    assert ctx.on_success is not None
    assert any(i.key.startswith(f"staging/{lease.task.task_id}/attempt-1/") for i in store.list("staging/"))

    # AND a malformed payload is a permanent failure naming the field
    bad = make_attempt({**payload(chain, "viaregistry", 0, 5, datasets=["blocks"]), "range_end": 0})
    with pytest.raises(worker_errors.OperatorError) as caught:
        cryo_ingest.fn(worker_ports.context(bad, cryo_ingest))
    assert caught.value.retryable is False and "range_end" in str(caught.value)

    # AND a range past the head is a retryable failure (the chain may get there)
    ahead = make_attempt(payload(chain, "viaregistry", chain.head, chain.head + 10, datasets=["blocks"]))
    with pytest.raises(worker_errors.OperatorError) as caught:
        cryo_ingest.fn(worker_ports.context(ahead, cryo_ingest))
    assert caught.value.retryable is True and "past the head" in str(caught.value)
