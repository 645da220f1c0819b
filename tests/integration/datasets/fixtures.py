"""Fixtures shared by the dataset and ingest integration tests (imported by their conftest files).

- ``s3_client`` / ``make_s3_store``: a boto3 client to the moto server and a fresh bucket per store.
- ``conn``: an autocommit psycopg connection (dict rows) to this module's migrated database.
- ``make_attempt``: a real dispatcher task and a claimed attempt (lease) for it.
- ``write_parquet``: small Parquet files covering a block range.
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
from trace_core.datasets import naming, objectstore
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks

Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture(scope="module")
def s3_client(moto_url: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def make_s3_store(s3_client: Any) -> Iterator[Callable[[], objectstore.S3ObjectStore]]:
    """Factory: an S3ObjectStore over a new, empty bucket on the moto server (emptied and removed after)."""
    made: list[str] = []

    def make() -> objectstore.S3ObjectStore:
        bucket = f"datasets-{uuid.uuid4().hex[:12]}"
        s3_client.create_bucket(Bucket=bucket)
        made.append(bucket)
        return objectstore.S3ObjectStore(s3_client, bucket)

    yield make
    for bucket in made:
        store = objectstore.S3ObjectStore(s3_client, bucket)
        for info in list(store.list("")):
            s3_client.delete_object(Bucket=bucket, Key=info.key)
        s3_client.delete_bucket(Bucket=bucket)


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as connection:
        yield connection


@pytest.fixture
def make_attempt(conn: Conn) -> Callable[..., task_models.Lease]:
    """Factory: create a task (no backoff between attempts) and claim its first attempt."""

    def make(payload: dict[str, Any] | None = None, *, lease_seconds: int = 60,
             max_attempts: int = 3) -> task_models.Lease:
        task = tasks.create(conn, task_models.CreateTask(
            operator="cryo_ingest", payload=payload or {}, max_attempts=max_attempts, backoff_base_ms=0))
        return tasks.claim(conn, task.task_id, worker_id="test-worker", lease_seconds=lease_seconds)

    return make


def expire_lease(conn: Conn, task_id: uuid.UUID) -> None:
    """Move the live lease's deadline into the past (the core reads time only from Postgres)."""
    conn.execute("UPDATE state.tasks SET lease_expires_at = now() - interval '1 second', "
                 "not_before = now() - interval '1 second' WHERE task_id = %s AND status = 'running'", (task_id,))
    conn.execute("UPDATE state.task_attempts SET lease_expires_at = now() - interval '1 second' "
                 "WHERE task_id = %s AND finished_at IS NULL", (task_id,))


def parquet_file(directory: Path, start: int, end: int, *, salt: str = "", dataset: str = "blocks") -> Path:
    """A Parquet file with one row per block of ``[start, end)`` named as Cryo would name it."""
    table = pa.table({
        "block_number": pa.array(range(start, end), pa.uint32()),
        "block_hash": [f"0x{salt}{n:064x}"[-66:] for n in range(start, end)],
    })
    path = directory / naming.cryo_file_name("network_10143", dataset, start, end)
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
