"""The chain sync planner's scheduled Lambda, driven by the sample EventBridge event, on real Postgres and anvil."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from trace_core import settings as settings_mod
from trace_core.chainsync import jobs
from trace_core.chainsync import spec as spec_mod
from trace_core.db import pool as pool_mod
from trace_core.dispatcher import deps
from trace_core.lite import procs

from tests.integration.dispatcher.test_handlers import Context

EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "eventbridge_scheduled.json").read_text())

FOLLOW = """
name: {name}
chain_id: 10143
rpc: {{urls: ["{url}"]}}
datasets: [blocks]
mode: {{type: follow_head, from_block: 0, confirmations: 2, use_finalized_tag: false}}
chunk_size: 10
max_inflight: 50
"""


def mine(url: str, blocks: int) -> None:
    httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": [hex(blocks)]}
    ).raise_for_status()


@pytest.fixture
def invoke(make_database):
    url = make_database()
    injected = deps.Deps(settings_mod.load({}, database_url=url), pool_mod.get(url))
    handler = importlib.import_module("functions.chain_sync_planner.handler")
    with deps.injected(injected):
        yield url, lambda: handler.lambda_handler(EVENT, Context())


def ranges(url: str) -> list[tuple[int, int]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT range_start, range_end FROM state.sync_ranges ORDER BY range_start").fetchall()
    return [(r["range_start"], r["range_end"]) for r in rows]


def test_scheduled_pass_follows_the_head(invoke, make_anvil):
    url, call = invoke
    rpc = make_anvil()
    mine(rpc, 25)  # head 25, safe head 23: two full chunks
    with psycopg.connect(url, row_factory=dict_row) as conn:
        jobs.apply(conn, spec_mod.parse(FOLLOW.format(name="follow-a", url=rpc), environ={}))
    assert ranges(url) == [(0, 10), (10, 20)]
    assert call()["scheduled"] == 0  # nothing new below the safe head
    mine(rpc, 10)  # head 35, safe head 33
    assert call() == {"jobs": 1, "scheduled": 1, "rescheduled": 0}
    assert ranges(url) == [(0, 10), (10, 20), (20, 30)]


def test_unreachable_rpc_is_recorded_and_other_jobs_still_run(invoke, make_anvil):
    url, call = invoke
    rpc = make_anvil()
    mine(rpc, 15)
    dead = f"http://127.0.0.1:{procs.free_port()}"
    with psycopg.connect(url, row_factory=dict_row) as conn:
        jobs.apply(conn, spec_mod.parse(FOLLOW.format(name="follow-dead", url=dead), environ={}))
        jobs.apply(conn, spec_mod.parse(FOLLOW.format(name="follow-live", url=rpc), environ={}))
        mine(rpc, 10)
        result = call()
        assert result["jobs"] == 2 and result["scheduled"] == 1
        _, streams = jobs.progress(conn, "follow-dead")
    assert (streams[0].last_error or "").startswith("rpc: eth_blockNumber: no RPC URL answered")


def test_rpc_error_clears_when_the_rpc_answers_again(invoke, make_anvil):
    url, call = invoke
    rpc = make_anvil()
    mine(rpc, 15)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        jobs.apply(conn, spec_mod.parse(FOLLOW.format(name="follow-back", url=rpc), environ={}))
        from trace_core.chainsync import planner
        planner.record_error(conn, jobs.find(conn, "follow-back")["job_id"], "eth_blockNumber: timed out")
        conn.commit()
        call()
        _, streams = jobs.progress(conn, "follow-back")
    assert streams[0].last_error is None


def test_the_lite_host_runs_the_planner_on_its_schedule(make_database, make_anvil, make_settings):
    from trace_core.lite import host as host_mod

    from tests.integration.worker.conftest import wait_for

    # GIVEN a follow_head job applied while the head allowed two ranges
    url = make_database()
    rpc = make_anvil()
    mine(rpc, 25)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        jobs.apply(conn, spec_mod.parse(FOLLOW.format(name="follow-host", url=rpc), environ={}))
    assert ranges(url) == [(0, 10), (10, 20)]
    # WHEN the chain grows under the default Lite host (no workers: only its schedules matter here)
    settings = make_settings(database_url=url, rpc_url=rpc, host_tick_seconds=0.2, host_workers=0)
    with host_mod.running(settings, port=0):
        mine(rpc, 10)
        # THEN the host's scheduled planner pass schedules the next range by itself
        assert wait_for(lambda: ranges(url) == [(0, 10), (10, 20), (20, 30)], timeout=20)
