"""The ``cryo_ingest`` operator: registered with the worker on import.

``run(ctx)`` validates the payload, extracts and stages every dataset of the
range, and sets ``ctx.on_success`` to a hook that commits one dataset version
per dataset inside the completion transaction (so only the attempt that wins
the fence publishes anything). When the task came from a chain sync (its
payload carries ``sync``), the same hook then tells the planner the range is
committed, in the same transaction.

Load it in a worker with ``TRACE_OPERATOR_MODULES=trace_core.ingest.operator``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import httpx
import psycopg

from trace_core import aws
from trace_core.chain import rpc
from trace_core.datasets import commit, models, objectstore
from trace_core.datasets import errors as dataset_errors
from trace_core.ingest import errors, extract
from trace_core.ingest import request as request_mod
from trace_core.worker import errors as worker_errors
from trace_core.worker import operators

NAME = "cryo_ingest"

# Clients shared by every task of this worker process (both are thread-safe). Building them per
# task cost more CPU than a range's own Python work: a boto3 client parses botocore's service
# models (~50 ms), an httpx client builds an SSL context with the CA bundle (~10 ms), all under
# the GIL (profiled with bench/chain_sync_e2e.py).
_lock = threading.Lock()
_s3_clients: dict[tuple[str | None, str], Any] = {}
_http: list[httpx.Client] = []
RPC_TIMEOUT_SECONDS = 30.0


def _s3_client(settings: Any) -> Any:
    with _lock:
        key = (settings.aws_endpoint_url, settings.aws_region)
        if key not in _s3_clients:
            _s3_clients[key] = aws.s3_client(settings)
        return _s3_clients[key]


def _rpc_client(url: str) -> rpc.RpcClient:
    with _lock:
        if not _http:
            _http.append(httpx.Client(timeout=RPC_TIMEOUT_SECONDS))
        return rpc.RpcClient(url, client=_http[0])


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


def run(ctx: operators.OperatorContext, *, store: objectstore.ObjectStore | None = None,
        extractor: extract.Extractor | None = None) -> dict[str, Any]:
    """Extract, stage and arm the commit hook; returns the task's outputs."""
    request = request_mod.parse(ctx.payload)
    bucket = store or objectstore.S3ObjectStore(_s3_client(ctx.settings), ctx.settings.datasets_bucket)

    def checkpoint() -> None:
        if ctx.cancelled.is_set():
            raise worker_errors.OperatorError("the lease was lost or the worker is stopping", retryable=True)
        ctx.heartbeat()

    extraction = extract.extract(
        request, store=bucket, task_id=ctx.task.task_id, attempt=ctx.attempt, heartbeat=checkpoint,
        extractor=extractor, rpc_client=_rpc_client(request.rpc_url(ctx.attempt)),
    )
    ctx.on_success = on_success_hook(bucket, extraction.staged, request)
    return outputs(request, extraction)


def cryo_ingest(ctx: operators.OperatorContext) -> dict[str, Any]:
    """The registered operator: ``run`` with errors mapped to the worker's retryable / permanent split."""
    try:
        return run(ctx)
    except (errors.IngestError, dataset_errors.DatasetError) as exc:
        retryable = bool(getattr(exc, "retryable", True))
        if isinstance(exc, dataset_errors.InvalidDatasetInputError):
            retryable = False
        raise worker_errors.OperatorError(exc.message, retryable=retryable, **exc.details) from exc


operators.register(NAME, cryo_ingest)
