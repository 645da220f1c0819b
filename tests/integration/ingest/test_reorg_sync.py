"""A reorg on anvil (`anvil_reorg`) under a range already committed, through the real chain sync pipeline:
the hash link breaks, status reports it, the stale range is re-extracted, and no query sees two forks."""

from __future__ import annotations

from trace_core.chainsync import chain_reader, jobs, planner
from trace_core.chainsync import spec as spec_mod
from trace_core.dispatcher import tasks

from tests.integration.ingest import chain as chain_mod
from tests.integration.ingest.helpers import committed_table, run_attempt

SPEC = """
name: reorg-sync
chain_id: 10143
rpc: {{urls: ["{url}"], max_blocks_per_logs_request: 10}}
datasets: [blocks]
mode: {{type: fixed_target, from_block: 0, to_block: 40}}
chunk_size: 20
max_inflight: 1
"""


def run_next(conn, settings) -> None:
    [lease] = tasks.claim_next(conn, worker_id="test", operators=["cryo_ingest"], limit=1)
    assert run_attempt(conn, lease, settings).status == "completed"


def visible_blocks(conn, store, job_id) -> dict[int, str]:
    """Block number -> hash over every version a query may be granted now."""
    out: dict[int, str] = {}
    for row in jobs.visible_versions(conn, job_id):
        table = committed_table(conn, store, row["dataset_version"])
        for number, block_hash in zip(table.column("block_number").to_pylist(), table.column("block_hash").to_pylist()):
            assert number not in out, "a block is visible twice"
            out[number] = block_hash if isinstance(block_hash, str) else "0x" + bytes(block_hash).hex()
    return out


def test_reorg_under_a_committed_range_is_detected_reported_and_reextracted(chain, conn, make_s3_store,
                                                                            make_settings, moto_url):
    store = make_s3_store()
    settings = make_settings(aws_endpoint_url=moto_url, datasets_bucket=store.bucket)
    job = jobs.apply(conn, spec_mod.parse(SPEC.format(url=chain.url), environ={}))
    # GIVEN range [0, 20) committed on the original fork
    run_next(conn, settings)
    old_19 = chain.block(19)["hash"]
    assert visible_blocks(conn, store, job.job_id)[19] == old_19
    # WHEN a reorg replaces every block from 19 on (the committed range's last block included)
    head = int(chain_mod.call(chain.url, "eth_blockNumber", []), 16)
    chain_mod.call(chain.url, "anvil_reorg", [head - 18, []])
    assert chain.block(19)["hash"] != old_19
    # AND the next range [20, 40) is extracted from the new fork
    run_next(conn, settings)
    # THEN the link breaks: status shows it, and only the old fork's range is visible (never a mix)
    _, [stream] = jobs.progress(conn, "reorg-sync")
    assert stream.broken_at == 20 and "hash link broken at block 20" in (stream.last_error or "")
    assert sorted(visible_blocks(conn, store, job.job_id)) == list(range(20))
    # WHEN the planner's repair runs against the chain
    conn.commit()
    assert planner.repair(conn, job.job_id, chain_reader.RpcChainReader([chain.url])) == 1
    conn.commit()
    assert visible_blocks(conn, store, job.job_id) == {}  # the stale range is withdrawn at once
    run_next(conn, settings)  # its re-extraction (generation 1)
    # THEN the job completes and every visible block is the canonical one, each exactly once
    assert jobs.find(conn, "reorg-sync")["status"] == "completed"
    visible = visible_blocks(conn, store, job.job_id)
    assert sorted(visible) == list(range(40))
    assert all(visible[n] == chain.block(n)["hash"] for n in (0, 18, 19, 20, 39))
