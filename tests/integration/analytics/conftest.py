"""The analytics path for real: a seeded chain, synced by chain_sync + cryo_ingest, asked through the Query Service.

- ``analytics_chain``: anvil holding the seeded Monad-like chain (seed 7, 600 blocks: a window of
  600 blocks for the supply test), loaded from the test chain cache, historical state included.
- ``synced``: that chain synced into committed dataset versions (``erc20_transfers`` from Cryo,
  ``staking_events`` decoded at ingest) by a chain_sync job whose tasks run the real
  ``cryo_ingest`` operator against moto server S3 and Postgres.
- ``query_service``: the Query Service app as deployed (token check, grants, verified cache, the SQL
  gate and hardened DuckDB workers, audit) served over real HTTP by uvicorn on 127.0.0.1, in a thread
  of the test process.
- ``ports``: factory of the analytics ports (``service.service_ports``) for one relation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import uvicorn
from psycopg.rows import dict_row
from trace_core import settings as settings_mod
from trace_core.analytics import service
from trace_core.chainsync import jobs
from trace_core.chainsync import spec as spec_mod
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks
from trace_core.ingest import operator
from trace_core.lite import procs, seeded_node
from trace_core.query.service import app as service_app
from trace_core.query.service import deps
from trace_core.worker import ports as worker_ports_mod

from tests.fixtures import components
from tests.fixtures.chain import chain_cache_dir

CHAIN_SEED = 7
CHAIN_BLOCKS = 600
NAMESPACE = "analytics_test"

SPEC = """
name: analytics-test
chain_id: 10143
namespace: {namespace}
rpc: {{urls: ["{url}"], max_blocks_per_logs_request: 100}}
datasets: [erc20_transfers, staking_events]
mode: {{type: fixed_target, from_block: 0, to_block: {end}}}
chunk_size: 200
max_inflight: 4
"""


@dataclasses.dataclass(frozen=True)
class Synced:
    chain: seeded_node.SeededNode
    settings: settings_mod.Settings
    job_id: uuid.UUID

    @property
    def end(self) -> int:
        """End (exclusive) of the synced blocks: the whole seeded chain."""
        return self.chain.info.end_block


@pytest.fixture(scope="session")
def analytics_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seeded_node.SeededNode]:
    seeded = seeded_node.start_seeded(seed=CHAIN_SEED, blocks=CHAIN_BLOCKS, cache_dir=chain_cache_dir(),
                               log_dir=tmp_path_factory.mktemp("analytics-chain"))
    try:
        yield seeded
    finally:
        seeded.stop()


@pytest.fixture(scope="session")
def analytics_buckets(moto_url: str) -> Iterator[dict[str, str]]:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    with components.temporary_buckets(s3, "an") as names:
        yield names


def _run_tasks(conn: psycopg.Connection[Any], settings: settings_mod.Settings) -> int:
    """What a worker does, until the planner has nothing left: claim, run cryo_ingest, complete."""
    done = 0
    worker_ports = worker_ports_mod.WorkerPorts(settings)
    for _ in range(50):
        leases = tasks.claim_next(conn, worker_id="analytics-test", operators=[operator.NAME], limit=10)
        if not leases:
            return done
        for lease in leases:
            ctx = worker_ports.context(lease, operator.OPERATOR)
            outputs = operator.run(ctx)
            finished = tasks.complete(conn, lease.task.task_id, attempt=lease.attempt, lease_token=lease.lease_token,
                                      result=task_models.Success(outputs=outputs), on_success=ctx.on_success)
            assert finished.status == "completed", finished
            done += 1
    raise AssertionError("the chain sync did not finish in 50 rounds")


@pytest.fixture(scope="session")
def synced(analytics_chain: seeded_node.SeededNode, make_database: Callable[..., str], moto_url: str,
           analytics_buckets: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Synced:
    settings = settings_mod.load(
        {}, home=tmp_path_factory.mktemp("analytics-home"), database_url=make_database(), aws_endpoint_url=moto_url,
        datasets_bucket=analytics_buckets["datasets"], results_bucket=analytics_buckets["results"],
        rpc_url=analytics_chain.url, query_timeout_s=60.0, query_memory_mb=1024,
    )
    text = SPEC.format(namespace=NAMESPACE, url=analytics_chain.url, end=analytics_chain.info.end_block)
    with psycopg.connect(settings.database_url or "", autocommit=True, row_factory=dict_row) as conn:
        job = jobs.apply(conn, spec_mod.parse(text, environ={}))
        _run_tasks(conn, settings)
        assert jobs.find(conn, "analytics-test")["status"] == "completed"
    return Synced(chain=analytics_chain, settings=settings, job_id=job.job_id)


@contextlib.contextmanager
def serving(settings: settings_mod.Settings) -> Iterator[str]:
    """The Query Service for ``settings``, served by uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    # The production wiring: the SQL gate and the hardened DuckDB worker pool (no fake sandbox).
    built = deps.build_service(settings)
    port = procs.free_port()
    server = uvicorn.Server(uvicorn.Config(
        service_app.create_app(built), host="127.0.0.1", port=port, log_level="warning", access_log=False,
        h11_max_incomplete_event_size=4 * 1024 * 1024,
    ))
    thread = threading.Thread(target=server.run, name="query-service", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Query Service did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        built.close()


@pytest.fixture(scope="session")
def query_service(synced: Synced) -> Iterator[str]:
    """Base URL of the Query Service over the synced data (stopped at the end of the session)."""
    with serving(synced.settings) as url:
        yield url


@pytest.fixture
def ports(synced: Synced, query_service: str) -> Iterator[Callable[[str], tuple[Any, Any]]]:
    """Factory: (query, coverage) ports for a relation, asking the Query Service with a Lite user token."""
    opened: list[Any] = []
    conn = psycopg.connect(synced.settings.database_url or "", autocommit=True, row_factory=dict_row)

    def make(relation: str) -> tuple[Any, Any]:
        query, coverage = service.service_ports(query_service, synced.settings, conn, relation)
        opened.append(query)
        return query, coverage

    try:
        yield make
    finally:
        for query in opened:
            query.close()
        conn.close()


def home_of(synced: Synced) -> Path:
    return synced.settings.home
