"""The chain sync planner: ranges, tasks and cursors, run inside the dispatcher's transactions.

No loop of its own: it runs when a job is applied, inside the completion
transaction of every range task (so the next range is scheduled in the same
commit that publishes a version), and on the dispatcher's scheduled tick
(follow_head polling, reorg checks, rescheduling ranges whose task died).

Per dataset stream it keeps a planning frontier (``next_block``) and a cursor.
The cursor only advances over contiguous committed ranges whose hashes link:
range N's last block hash equals range N+1's first block's parent hash. A
break stops the stream (``broken_at``) until the ranges that no longer match
the canonical chain are superseded and re-extracted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any
from uuid import UUID

import psycopg

from trace_core.chainsync import chain_reader, spec as spec_mod
from trace_core.db import queries
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks

OPERATOR = "cryo_ingest"
RPC_ERROR_PREFIX = "rpc: "
_Q = queries.load("trace_core.chainsync")


def config_hash(spec: spec_mod.ChainSyncSpec, dataset: str, generation: int) -> str:
    """What determines a range's output besides chain, dataset and range (not the RPC URL)."""
    config = {"chain_id": spec.chain_id, "dataset": dataset, "format": "cryo-parquet/v1"}
    if generation:
        config["generation"] = generation  # a re-extraction after a reorg is a new version
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _payload(spec: spec_mod.ChainSyncSpec, job_id: UUID, dataset: str, start: int, end: int, generation: int,
             range_id: int) -> dict[str, Any]:
    return {
        "chain_id": spec.chain_id,
        "datasets": [dataset],
        "dataset_keys": {dataset: spec.dataset_key(dataset)},
        "range_start": start,
        "range_end": end,
        "rpc": spec.rpc.model_dump(),
        "config_hash": config_hash(spec, dataset, generation),
        "sync": {"job_id": str(job_id), "range_id": range_id, "generation": generation},
    }


def _schedule(conn: psycopg.Connection[Any], spec: spec_mod.ChainSyncSpec, job_id: UUID, stream: dict[str, Any],
              start: int, end: int, generation: int = 0) -> None:
    row = conn.execute(_Q["insert_range"], {
        "job_id": job_id, "chain_id": spec.chain_id, "dataset_key": stream["dataset_key"],
        "dataset": stream["dataset"], "range_start": start, "range_end": end, "generation": generation,
    }).fetchone()
    if row is None:  # already in the ledger: planning again changes nothing
        return
    _create_task(conn, spec, job_id, stream["dataset"], start, end, generation, row["range_id"], 0)


def _create_task(conn: psycopg.Connection[Any], spec: spec_mod.ChainSyncSpec, job_id: UUID, dataset: str,
                 start: int, end: int, generation: int, range_id: int, reschedules: int) -> None:
    key = f"chain_sync:{spec.chain_id}:{spec.dataset_key(dataset)}:{start}:{end}:g{generation}:r{reschedules}"
    task = tasks.create(conn, task_models.CreateTask(
        operator=OPERATOR,
        payload=_payload(spec, job_id, dataset, start, end, generation, range_id),
        idempotency_key=key,
        job_id=job_id,
        max_attempts=spec.max_attempts,
    ))
    conn.execute(_Q["attach_task"], {"task_id": task.task_id, "reschedules": reschedules, "range_id": range_id})


def _next_end(spec: spec_mod.ChainSyncSpec, start: int, target: int) -> int | None:
    # Chunk boundaries are aligned to multiples of chunk_size, so the same job
    # always cuts the same ranges whatever its history.
    boundary = (start // spec.chunk_size + 1) * spec.chunk_size
    if boundary <= target:
        return boundary
    if isinstance(spec.mode, spec_mod.FixedTarget):
        return target
    return None  # follow_head: wait for a full chunk below the safe head


@dataclasses.dataclass(frozen=True)
class TickResult:
    scheduled: int
    rescheduled: int
    completed: bool


def tick(conn: psycopg.Connection[Any], job_id: UUID, *, safe_head: int | None = None) -> TickResult:
    """Top up in-flight ranges to max_inflight for every stream of an active job.

    ``safe_head`` (inclusive) comes from the chain for follow_head jobs; without it
    the last known target is used. Idempotent: re-running schedules nothing new.
    """
    with conn.transaction():
        job = conn.execute(_Q["lock_job"], {"job_id": job_id}).fetchone()
        if job is None or job["status"] != "active":
            return TickResult(0, 0, False)
        spec = spec_mod.ChainSyncSpec.model_validate(job["spec"])
        scheduled = rescheduled = 0
        done = True
        for stream in conn.execute(_Q["streams"], {"job_id": job_id}).fetchall():
            if stream["dataset"] not in spec.datasets:
                continue
            target = stream["target"]
            if isinstance(spec.mode, spec_mod.FixedTarget):
                target = spec.mode.to_block
            elif safe_head is not None:
                target = max(target or 0, safe_head + 1)
            inflight = conn.execute(_Q["inflight_ranges"], {"job_id": job_id, "dataset": stream["dataset"]}).fetchall()
            for rng in inflight:
                if rng["task_status"] in ("dead", "failed"):
                    # The dispatcher gave up on this range (e.g. the RPC was down for long):
                    # give it a fresh task so the stream never keeps a gap.
                    _create_task(conn, spec, job_id, stream["dataset"], rng["range_start"], rng["range_end"],
                                 rng["generation"], rng["range_id"], rng["reschedules"] + 1)
                    rescheduled += 1
            next_block = stream["next_block"]
            count = len(inflight)
            if stream["broken_at"] is None:
                while target is not None and count < spec.max_inflight and next_block < target:
                    end = _next_end(spec, next_block, target)
                    if end is None:
                        break
                    _schedule(conn, spec, job_id, stream, next_block, end)
                    next_block, count, scheduled = end, count + 1, scheduled + 1
            conn.execute(_Q["update_stream"], {**stream, "next_block": next_block, "target": target})
            if not (isinstance(spec.mode, spec_mod.FixedTarget) and stream["cursor"] >= spec.mode.to_block):
                done = False
        if done and isinstance(spec.mode, spec_mod.FixedTarget):
            conn.execute(_Q["set_job_status"], {"job_id": job_id, "status": "completed"})
        return TickResult(scheduled, rescheduled, done)


def on_range_committed(conn: psycopg.Connection[Any], task: task_models.Task, versions: dict[str, Any]) -> None:
    """Record a committed range, advance the cursor over linked ranges, and top up.

    Runs inside the dispatcher's completion transaction, after the attempt's fence
    passed and its dataset versions committed. ``versions`` maps dataset ->
    {dataset_version, first_parent_hash, last_hash}.
    """
    rng = conn.execute(_Q["range_for_task"], {"task_id": task.task_id}).fetchone()
    if rng is None or rng["status"] != "scheduled":
        return
    info = versions[rng["dataset"]]
    conn.execute(_Q["commit_range"], {
        "range_id": rng["range_id"], "dataset_version": info["dataset_version"],
        "first_parent_hash": info.get("first_parent_hash"), "last_hash": info.get("last_hash"),
    })
    conn.execute(_Q["lock_job"], {"job_id": rng["job_id"]}).fetchone()
    advance(conn, rng["job_id"])
    tick(conn, rng["job_id"])


def advance(conn: psycopg.Connection[Any], job_id: UUID) -> None:
    """Move each stream's cursor over contiguous committed ranges whose hashes link."""
    for stream in conn.execute(_Q["streams"], {"job_id": job_id}).fetchall():
        if stream["broken_at"] is not None:
            continue
        cursor, cursor_hash, broken_at, last_error = stream["cursor"], stream["cursor_hash"], None, stream["last_error"]
        for rng in conn.execute(_Q["committed_from"], {"job_id": job_id, "dataset": stream["dataset"],
                                                         "from_block": cursor}).fetchall():
            if rng["range_start"] != cursor:
                break
            if cursor_hash and rng["first_parent_hash"] and rng["first_parent_hash"] != cursor_hash:
                broken_at = rng["range_start"]
                last_error = (
                    f"hash link broken at block {broken_at}: range [{broken_at}, {rng['range_end']}) has parent "
                    f"{rng['first_parent_hash']} but block {broken_at - 1} was committed as {cursor_hash} (reorg?)"
                )
                break
            cursor, cursor_hash = rng["range_end"], rng["last_hash"]
        if broken_at is None and stream["last_error"] and stream["last_error"].startswith("hash link broken"):
            last_error = None
        conn.execute(_Q["update_stream"], {**stream, "cursor": cursor, "cursor_hash": cursor_hash,
                                           "broken_at": broken_at, "last_error": last_error})


def repair(conn: psycopg.Connection[Any], job_id: UUID, chain: chain_reader.ChainReader) -> int:
    """Supersede committed ranges that no longer match the canonical chain and re-extract them.

    Checks streams with a broken link, and the block under every cursor (a reorg
    after the last range committed). Returns the number of ranges superseded.
    """
    superseded = 0
    with conn.transaction():
        job = conn.execute(_Q["lock_job"], {"job_id": job_id}).fetchone()
        if job is None:
            return 0
        spec = spec_mod.ChainSyncSpec.model_validate(job["spec"])
        for stream in conn.execute(_Q["streams"], {"job_id": job_id}).fetchall():
            tip_moved = bool(stream["cursor_hash"]) and chain.block_hash(stream["cursor"] - 1) != stream["cursor_hash"]
            if stream["broken_at"] is None and not tip_moved:
                continue
            below = stream["broken_at"] if stream["broken_at"] is not None else stream["cursor"]
            stale = []
            for rng in conn.execute(_Q["committed_below"], {"job_id": job_id, "dataset": stream["dataset"],
                                                              "below": below}).fetchall():
                if chain.block_hash(rng["range_end"] - 1) == rng["last_hash"]:
                    break  # this range and everything before it is still canonical
                stale.append(rng)
            if not stale:
                continue
            for rng in stale:
                gone = conn.execute(_Q["supersede_range"], {"range_id": rng["range_id"]}).fetchone()
                if gone and gone["dataset_version"]:
                    conn.execute(_Q["supersede_version"], {"dataset_version": gone["dataset_version"]})
                _schedule(conn, spec, job_id, stream, rng["range_start"], rng["range_end"], rng["generation"] + 1)
                superseded += 1
            earliest = min(r["range_start"] for r in stale)
            before = conn.execute(_Q["committed_below"], {"job_id": job_id, "dataset": stream["dataset"],
                                                           "below": earliest}).fetchone()
            conn.execute(_Q["update_stream"], {
                **stream, "cursor": earliest, "cursor_hash": before["last_hash"] if before else None,
                "broken_at": None,
                "last_error": f"reorg: re-extracting {len(stale)} range(s) from block {earliest}",
            })
            if job["status"] == "completed":
                conn.execute(_Q["set_job_status"], {"job_id": job_id, "status": "active"})
    return superseded


def scheduled_tick(conn: psycopg.Connection[Any], make_reader: Any = None) -> dict[str, TickResult]:
    """The dispatcher's periodic planner pass over every active chain_sync job."""
    results = {}
    for job in conn.execute(_Q["active_jobs"]).fetchall():
        spec = spec_mod.ChainSyncSpec.model_validate(job["spec"])
        reader = (make_reader or chain_reader.RpcChainReader)(spec.rpc.urls)
        head = None
        try:
            repair(conn, job["job_id"], reader)
            if isinstance(spec.mode, spec_mod.FollowHead):
                head = reader.safe_head(confirmations=spec.mode.confirmations,
                                        use_finalized_tag=spec.mode.use_finalized_tag)
            with conn.transaction():
                conn.execute(_Q["clear_rpc_error"], {"job_id": job["job_id"]})
        except Exception as exc:  # noqa: BLE001 - an unreachable RPC must not stop other jobs
            record_error(conn, job["job_id"], str(exc))
        results[job["name"]] = tick(conn, job["job_id"], safe_head=head)
    conn.commit()
    return results


def record_error(conn: psycopg.Connection[Any], job_id: UUID, message: str) -> None:
    """Show ``message`` as the last error of every stream of the job (e.g. its RPC is unreachable)."""
    with conn.transaction():
        conn.execute(_Q["record_error"], {"job_id": job_id, "message": f"{RPC_ERROR_PREFIX}{message}"})
