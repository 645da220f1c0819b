"""Fixtures of the Query Service tests: real Postgres, moto server S3 and committed dataset versions.

- ``s3`` / ``buckets``: a boto3 client to the moto server; fresh datasets and results buckets per module.
- ``conn``: an autocommit connection (dict rows) to this module's migrated database.
- ``publish``: commit a dataset version through the real commit protocol (a claimed task attempt,
  staged Parquet files written with pyarrow, ``datasets.commit.commit``).
- ``make_visible``: record versions as committed chain sync ranges, as a synced job would.
- ``qs_settings``: Settings pointing at all of the above.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg.rows import dict_row
from trace_core import settings as settings_mod
from trace_core.datasets import commit, models, naming, objectstore
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks
from trace_core.query.service import engine

from tests.fixtures import components

CONFIG = "00c0ffee00c0ffee"
NAMESPACE = "monad_local"


def block_table(start: int, end: int) -> pa.Table:
    """Blocks ``[start, end)`` with deterministic values (gas_used = 1000 * number)."""
    numbers = list(range(start, end))
    return pa.table({
        "block_number": pa.array(numbers, pa.uint32()),
        "block_hash": pa.array([n.to_bytes(32, "big") for n in numbers], pa.binary()),
        "timestamp": pa.array([1_700_000_000 + n for n in numbers], pa.uint32()),
        "gas_used": pa.array([1000 * n for n in numbers], pa.uint64()),
    })


def log_table(start: int, end: int) -> pa.Table:
    """Two logs per block."""
    numbers = [n for n in range(start, end) for _ in range(2)]
    return pa.table({
        "block_number": pa.array(numbers, pa.uint32()),
        "log_index": pa.array([i % 2 for i in range(len(numbers))], pa.uint32()),
        "address": pa.array([b"\x11" * 20] * len(numbers), pa.binary()),
    })


TABLES: dict[str, Callable[[int, int], pa.Table]] = {"blocks": block_table, "logs": log_table}


@pytest.fixture(scope="module")
def s3(moto_url: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def buckets(s3: Any) -> Iterator[dict[str, str]]:
    with components.temporary_buckets(s3, "qs") as names:
        yield names


@pytest.fixture(scope="module")
def store(s3: Any, buckets: dict[str, str]) -> objectstore.S3ObjectStore:
    return objectstore.S3ObjectStore(s3, buckets["datasets"])


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as connection:
        yield connection


@pytest.fixture(scope="module")
def publish(database_url: str, store: objectstore.S3ObjectStore,
            tmp_path_factory: pytest.TempPathFactory) -> Callable[..., models.DatasetVersion]:
    """Factory: commit ``namespace/dataset`` for ``[start, end)`` in files of ``chunk`` blocks."""
    folder = tmp_path_factory.mktemp("staged")

    def make(dataset: str, start: int, end: int, *, chunk: int = 50,
             namespace: str = NAMESPACE) -> models.DatasetVersion:
        key = naming.dataset_key(namespace, dataset)
        with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
            task = tasks.create(conn, task_models.CreateTask(operator="cryo_ingest", payload={}))
            lease = tasks.claim(conn, task.task_id, worker_id="qs-test", lease_seconds=60)
            files = []
            for lo in range(start, end, chunk):
                hi = min(lo + chunk, end)
                path = folder / f"{uuid.uuid4().hex}" / naming.cryo_file_name(namespace, dataset, lo, hi)
                path.parent.mkdir(parents=True)
                pq.write_table(TABLES[dataset](lo, hi), path)
                files.append(commit.stage_file(store, path, task_id=task.task_id, attempt=lease.attempt,
                                               cryo_dataset=dataset, range_start=lo, range_end=hi))
            staged = models.StagedVersion(
                task_id=task.task_id, attempt=lease.attempt, chain_id=10143, dataset_key=key, cryo_dataset=dataset,
                range_start=start, range_end=end, config_hash=CONFIG, extract={"chunk": chunk},
                cryo_version="0.3.2", files=tuple(files),
            )
            with conn.transaction():
                return commit.commit(conn, store, staged, task_id=task.task_id, attempt=lease.attempt)

    return make


@pytest.fixture(scope="module")
def make_visible(database_url: str) -> Callable[[list[models.DatasetVersion]], None]:
    """Record committed versions as chain sync ranges below each stream's cursor (what a finished sync leaves)."""

    def make(versions: list[models.DatasetVersion]) -> None:
        with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn, conn.transaction():
            job = conn.execute(
                "INSERT INTO state.jobs (name, kind, spec, spec_hash) VALUES (%s, 'chain_sync', '{}', 'x') "
                "RETURNING job_id", (f"qs-{uuid.uuid4().hex[:8]}",)).fetchone()["job_id"]
            by_key: dict[str, list[models.DatasetVersion]] = {}
            for version in versions:
                by_key.setdefault(version.dataset_key, []).append(version)
            for key, found in by_key.items():
                dataset = key.split("/")[1]
                cursor = max(v.range_end for v in found)
                conn.execute(
                    "INSERT INTO state.sync_streams (job_id, dataset, dataset_key, chain_id, next_block, cursor) "
                    "VALUES (%s, %s, %s, 10143, %s, %s)", (job, dataset, key, cursor, cursor))
                for v in found:
                    conn.execute(
                        "INSERT INTO state.sync_ranges (job_id, chain_id, dataset_key, dataset, range_start, "
                        "range_end, status, dataset_version, committed_at) "
                        "VALUES (%s, 10143, %s, %s, %s, %s, 'committed', %s, now())",
                        (job, key, dataset, v.range_start, v.range_end, v.dataset_version))

    return make


def _settings(database_url: str, moto_url: str, buckets: dict[str, str], home: Path) -> settings_mod.Settings:
    return settings_mod.load(
        {}, home=home, database_url=database_url, aws_endpoint_url=moto_url,
        datasets_bucket=buckets["datasets"], results_bucket=buckets["results"], query_timeout_s=5.0,
        query_memory_mb=512, query_inline_max_bytes=64 * 1024, query_max_rows=100_000,
    )


@pytest.fixture(scope="module")
def sandbox_engine(module_settings: settings_mod.Settings) -> Iterator[engine.SandboxEngine]:
    """The real gate and hardened engine (a pool of sandboxed DuckDB workers), shared by a module's tests."""
    started = engine.SandboxEngine.start(module_settings)
    assert isinstance(started, engine.SandboxEngine), getattr(started, "reason", started)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def qs_settings(database_url: str, moto_url: str, buckets: dict[str, str], tmp_path: Path) -> settings_mod.Settings:
    """Settings for one test (its own home: key ring, cache)."""
    return _settings(database_url, moto_url, buckets, tmp_path / "home")


@pytest.fixture(scope="module")
def module_settings(database_url: str, moto_url: str, buckets: dict[str, str],
                    tmp_path_factory: pytest.TempPathFactory) -> settings_mod.Settings:
    """Settings shared by a module's tests (e.g. with one service process for all of them)."""
    return _settings(database_url, moto_url, buckets, tmp_path_factory.mktemp("qs") / "home")
