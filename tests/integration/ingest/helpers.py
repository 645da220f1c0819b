"""Reading what an ingest committed, the way a reader would: registry -> manifest -> objects."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from trace_core.datasets import commit, objectstore
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks
from trace_core.worker import ports


def committed_table(conn: Any, store: objectstore.ObjectStore, dataset_version: str) -> pa.Table:
    """The whole committed version as one Arrow table, checked against its manifest on the way."""
    version, manifest = commit.read_manifest(conn, store, dataset_version)
    assert commit.verify_objects(store, version, manifest) == []
    tables = [pq.read_table(pa.BufferReader(store.get(version.storage_prefix + f.path))) for f in manifest.files]
    return pa.concat_tables(tables)


def run_attempt(conn: Any, lease: task_models.Lease, settings: Any, **run_kwargs: Any) -> task_models.Task:
    """What the worker does for one attempt: run the operator (with the ports a worker builds from
    ``settings``), then complete with its commit hook."""
    from trace_core.ingest import operator

    ctx = ports.WorkerPorts(settings).context(lease, operator.OPERATOR)
    outputs = operator.run(ctx, **run_kwargs)
    return tasks.complete(conn, lease.task.task_id, attempt=lease.attempt, lease_token=lease.lease_token,
                          result=task_models.Success(outputs=outputs), on_success=ctx.on_success)
