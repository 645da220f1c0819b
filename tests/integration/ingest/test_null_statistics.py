"""Committed Parquet tells the truth: NULL counts DuckDB reads match the rows, and every column orders.

Cryo 0.3.2 (through its bundled Polars) records ``null_count = 0`` for columns
that hold NULLs, and DuckDB trusts the footer (issue 14, item 1). The answers
here go through the Query Service's DuckDB path (the sandboxed engine over
``RelationSource.parquet`` of the verified files); the truth comes from pyarrow
decoding the rows, never from the footer.
"""

from __future__ import annotations

import collections
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg.rows import dict_row
from trace_core import settings as settings_mod
from trace_core.datasets import commit, objectstore, registry
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks
from trace_core.query import attach, engine

from tests.integration.ingest.helpers import run_attempt

# Every dataset an anvil node serves (it answers trace_* too); staking_events is derived from logs.
DATASETS = ("blocks", "transactions", "logs", "traces", "geth_calls", "native_transfers", "erc20_transfers",
            "staking_events")
LIMITS = engine.ExecLimits(max_rows=1_000_000, timeout_s=60.0)
# Column names come from the files' schemas; they are spliced into test SQL only when plain.
_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")


@pytest.fixture(scope="module")
def committed(seeded_chain: Any, tmp_path_factory: pytest.TempPathFactory, database_url: str, s3_client: Any,
              moto_url: str) -> Iterator[dict[str, list[Path]]]:
    """The seeded chain ingested (sub-ranges of 100 blocks, so several files per dataset), its files fetched."""
    bucket = f"datasets-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    store = objectstore.S3ObjectStore(s3_client, bucket)
    root = tmp_path_factory.mktemp("null-statistics")
    info = seeded_chain.info
    try:
        with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
            task = tasks.create(conn, task_models.CreateTask(operator="cryo_ingest", backoff_base_ms=0, payload={
                "chain_id": info.chain_id, "namespace": "nulls", "datasets": list(DATASETS),
                "range_start": info.first_block, "range_end": info.end_block,
                "rpc": {"urls": [seeded_chain.url]}, "extract": {"chunk_blocks": 100}}))
            lease = tasks.claim(conn, task.task_id, worker_id="test-worker", lease_seconds=120)
            settings = settings_mod.load({}, home=root / "home", aws_endpoint_url=moto_url, datasets_bucket=bucket)
            assert run_attempt(conn, lease, settings).status == "completed"
            files: dict[str, list[Path]] = {}
            for dataset in DATASETS:
                version = registry.list_committed(conn, f"nulls/{dataset}")[0]
                stored, manifest = commit.read_manifest(conn, store, version.dataset_version)
                assert commit.verify_objects(store, stored, manifest) == []
                files[dataset] = []
                for i, entry in enumerate(manifest.files):
                    path = root / dataset / f"{i:04d}.parquet"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(store.get(stored.storage_prefix + entry.path))
                    files[dataset].append(path)
        yield files
    finally:
        for found in list(store.list("")):
            s3_client.delete_object(Bucket=bucket, Key=found.key)
        s3_client.delete_bucket(Bucket=bucket)


@pytest.fixture(scope="module")
def sandbox(committed: dict[str, list[Path]]) -> Iterator[engine.Engine]:
    roots = tuple({p.parent.parent for paths in committed.values() for p in paths})
    with engine.Engine(engine.EngineConfig(workers=1, data_roots=roots)) as started:
        yield started


def _attachments(paths: list[Path]) -> list[list[Path]]:
    # Each range file alone and all together: DuckDB trusts a lone file's footer in more plans
    # (grouping on a NULL-holding column returned garbage bytes only then).
    return [[path] for path in paths] + [paths]


def _rows(paths: list[Path]) -> pa.Table:
    # read_table decodes the pages: Array.null_count comes from the validity bitmaps, not the footer.
    return pa.concat_tables(pq.read_table(p) for p in paths)


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_column_counts_its_nulls_as_the_rows_do(dataset, committed, sandbox):
    assert _rows(committed[dataset]).num_rows > 0, f"the seeded chain should give {dataset} rows"
    wrong = {}
    for paths in _attachments(committed[dataset]):
        # GIVEN committed files of the dataset, attached as the Query Service attaches them
        relations = {dataset: attach.RelationSource.parquet(paths)}
        rows = _rows(paths)
        for column in rows.column_names:
            assert _PLAIN.fullmatch(column), column
            truth = rows.column(column).null_count
            # WHEN DuckDB counts the column's NULLs
            got = sandbox.execute(f'select count(*) from {dataset} where "{column}" is null', relations,
                                  LIMITS).rows()[0][0]
            if got != truth:
                wrong[f"{column} in {'+'.join(p.stem for p in paths)}"] = {"duckdb": got, "rows": truth}
    # THEN it agrees with the rows, column by column
    assert wrong == {}


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_column_orders_and_groups_as_the_rows_do(dataset, committed, sandbox):
    failed = {}
    for paths in _attachments(committed[dataset]):
        # GIVEN the same attached files, and each column's values as pyarrow decodes them
        relations = {dataset: attach.RelationSource.parquet(paths)}
        rows = _rows(paths)
        failed.update({f"{column} in {'+'.join(p.stem for p in paths)}": problem
                       for column, problem in _order_and_group_problems(sandbox, dataset, relations, rows).items()})
    assert failed == {}


def _order_and_group_problems(sandbox: engine.Engine, dataset: str, relations: dict[str, attach.RelationSource],
                              rows: pa.Table) -> dict[str, str]:
    failed = {}
    for column in rows.column_names:
        values = rows.column(column).to_pylist()
        present = [v for v in values if v is not None]
        want_order = [None] * (len(values) - len(present)) + sorted(present)
        want_groups = collections.Counter(values)
        try:
            # WHEN ordered (NULLs first) and grouped on the column
            ordered = sandbox.execute(f'select "{column}" from {dataset} order by 1 nulls first', relations,
                                      LIMITS).table.column(0).to_pylist()
            groups = sandbox.execute(f'select "{column}", count(*) from {dataset} group by 1', relations,
                                     LIMITS).rows()
        except Exception as exc:  # noqa: BLE001 - collect every failing column, then report them together
            failed[column] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        # THEN the order and the groups are the rows' own (a wrong NULL count turns NULLs into garbage bytes)
        if ordered != want_order:
            failed[column] = "order differs from the rows"
        elif dict(groups) != dict(want_groups):
            failed[column] = "groups differ from the rows"
    return failed
