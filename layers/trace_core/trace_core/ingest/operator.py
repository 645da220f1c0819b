"""The ``cryo_ingest`` operator (:data:`OPERATOR`, in the worker's catalogue of platform operators).

``run(ctx)`` validates the payload, extracts and stages every dataset of the
range into the datasets bucket (port ``object_store``) over the worker's RPC
clients (port ``rpc``), and sets ``ctx.on_success`` to a hook that commits one
dataset version per dataset inside the completion transaction (so only the
attempt that wins the fence publishes anything). When the task came from a
chain sync (its payload carries ``sync``), the same hook then tells the
planner the range is committed, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from trace_core.datasets import commit, models, objectstore
from trace_core.datasets import errors as dataset_errors
from trace_core.ingest import errors, extract
from trace_core.ingest import request as request_mod
from trace_core.worker import errors as worker_errors
from trace_core.worker import operators

NAME = "cryo_ingest"


def outputs(request: request_mod.IngestRequest, extraction: extract.Extraction) -> dict[str, Any]:
    """The task's outputs: one entry per dataset (its deterministic version), small enough for a row."""
    return {
        "chain_id": request.chain_id,
        "range_start": request.range_start,
        "range_end": request.range_end,
        "first_parent_hash": extraction.first_parent_hash,
        "last_hash": extraction.last_block_hash,
        "versions": {
            staged.cryo_dataset: {
                "dataset_key": staged.dataset_key,
                "dataset_version": staged.dataset_version,
                "config_hash": staged.config_hash,
                "row_count": sum(f.row_count for f in staged.files),
                "bytes": sum(f.size for f in staged.files),
                "files": len(staged.files),
                "first_parent_hash": staged.first_parent_hash,
                "last_hash": staged.last_block_hash,
            }
            for staged in extraction.staged
        },
        **({"sync": request.sync} if request.sync is not None else {}),
    }


def on_success_hook(
    store: objectstore.ObjectStore, staged: Sequence[models.StagedVersion], request: request_mod.IngestRequest
) -> operators.OnSuccess:
    """Commit every staged version (all or none), then tell the chain-sync planner if the task is its."""
    publish = commit.on_success_hook(store, staged)

    def hook(conn: psycopg.Connection[Any], task: Any, task_outputs: dict[str, Any]) -> None:
        publish(conn, task, task_outputs)
        if request.sync is not None:
            from trace_core.chainsync import planner

            planner.on_range_committed(conn, task, task_outputs.get("versions", {}))

    return hook


def run(ctx: operators.OperatorContext, *, extractor: extract.Extractor | None = None) -> dict[str, Any]:
    """Extract, stage and arm the commit hook; returns the task's outputs."""
    request = request_mod.parse(ctx.payload)
    bucket = ctx.object_store

    def checkpoint() -> None:
        if ctx.cancelled.is_set():
            raise worker_errors.OperatorError("the lease was lost or the worker is stopping", retryable=True)
        ctx.heartbeat()

    extraction = extract.extract(
        request, store=bucket, task_id=ctx.task_id, attempt=ctx.attempt, heartbeat=checkpoint,
        extractor=extractor, rpc_client=ctx.rpc_client(request.rpc_url(ctx.attempt)),
    )
    ctx.on_success = on_success_hook(bucket, extraction.staged, request)
    return outputs(request, extraction)


def cryo_ingest(ctx: operators.OperatorContext) -> dict[str, Any]:
    """The operator: ``run`` with errors mapped to the worker's retryable / permanent split."""
    try:
        return run(ctx)
    except (errors.IngestError, dataset_errors.DatasetError) as exc:
        retryable = bool(getattr(exc, "retryable", True))
        if isinstance(exc, dataset_errors.InvalidDatasetInputError):
            retryable = False
        raise worker_errors.OperatorError(exc.message, retryable=retryable, **exc.details) from exc


OPERATOR = operators.Operator(cryo_ingest, ports=frozenset({"object_store", "rpc"}), runs_cryo=True)
