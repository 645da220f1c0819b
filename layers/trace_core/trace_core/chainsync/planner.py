"""The chain sync planner: ranges, tasks and cursors, run inside the dispatcher's transactions.

No loop of its own: it runs when a job is applied, inside the completion
transaction of every range task (so the next range is scheduled in the same
commit that publishes a version), and on the dispatcher's scheduled tick
(follow_head polling, reorg checks, rescheduling ranges whose task died).

Per dataset stream it keeps a planning frontier (``next_block``), a cursor and a
ledger row per range; one ``cryo_ingest`` task serves the ledger rows of every
stream planned at the same range (one Cryo freeze for all of them), and
``max_inflight`` caps the job's range tasks in flight.
The cursor only advances over contiguous committed ranges whose hashes link:
range N's last block hash equals range N+1's first block's parent hash. A
break stops the stream (``broken_at``) until the ranges that no longer match
the canonical chain are superseded and re-extracted.

The planner never asks the chain while it holds a row lock: it reads the chain
first (outside any transaction), then locks the job and decides on the rows as
they are then (:func:`repair`); a slow node slows only its own pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg

from trace_core import redact
from trace_core.chainsync import chain_reader, errors
from trace_core.chainsync import spec as spec_mod
from trace_core.db import queries
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks
from trace_core.ingest import request as ingest_request

OPERATOR = "cryo_ingest"
RPC_ERROR_PREFIX = "rpc: "
LOST_PREFIX = "lost: "  # last_error of a stream re-extracting ranges the store lost (recover_lost)
_Q = queries.load("trace_core.chainsync")
log = logging.getLogger(__name__)


def config_hash(spec: spec_mod.ChainSyncSpec, dataset: str, generation: int) -> str:
    """What determines a range's output besides chain, dataset and range (not the RPC URL)."""
    config = {"chain_id": spec.chain_id, "dataset": dataset, "format": ingest_request.FORMAT}
    if generation:
        config["generation"] = generation  # a re-extraction after a reorg is a new version
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _payload(spec: spec_mod.ChainSyncSpec, job_id: UUID, datasets: list[str], start: int, end: int,
             generation: int, range_ids: list[int]) -> dict[str, Any]:
    return {
        "chain_id": spec.chain_id,
        "datasets": datasets,
        "dataset_keys": {d: spec.dataset_key(d) for d in datasets},
        "range_start": start,
        "range_end": end,
        "rpc": spec.rpc.model_dump(),
        # One hash per dataset, computed as for a task of that dataset alone: a version's identity
        # never depends on which datasets shared its task.
        "config_hashes": {d: config_hash(spec, d, generation) for d in datasets},
        "sync": {"job_id": str(job_id), "range_ids": range_ids, "generation": generation},
    }


def _ordered(spec: spec_mod.ChainSyncSpec, datasets: list[str]) -> list[str]:
    """The spec's order (a dataset since removed from the spec, e.g. under repair, goes last)."""
    return sorted(datasets, key=lambda d: (spec.datasets.index(d) if d in spec.datasets else len(spec.datasets), d))


def _schedule(conn: psycopg.Connection[Any], spec: spec_mod.ChainSyncSpec, job_id: UUID, streams: list[dict[str, Any]],
              start: int, end: int, generation: int = 0) -> bool:
    """Put ``[start, end)`` of every stream in the ledger and give the new rows one task; False if none was new."""
    new: list[tuple[str, int]] = []
    for stream in streams:
        row = conn.execute(_Q["insert_range"], {
            "job_id": job_id, "chain_id": spec.chain_id, "dataset_key": stream["dataset_key"],
            "dataset": stream["dataset"], "range_start": start, "range_end": end, "generation": generation,
        }).fetchone()
        if row is not None:  # a row already in the ledger: planning again changes nothing
            new.append((stream["dataset"], row["range_id"]))
    if not new:
        return False
    _create_task(conn, spec, job_id, dict(new), start, end, generation, 0)
    return True


def _create_task(conn: psycopg.Connection[Any], spec: spec_mod.ChainSyncSpec, job_id: UUID, ranges: dict[str, int],
                 start: int, end: int, generation: int, reschedules: int) -> None:
    """One ``cryo_ingest`` task for the ledger rows ``ranges`` (dataset -> range_id) of one range."""
    datasets = _ordered(spec, list(ranges))
    keys = "+".join(spec.dataset_key(d) for d in datasets)
    task = tasks.create(conn, task_models.CreateTask(
        operator=OPERATOR,
        payload=_payload(spec, job_id, datasets, start, end, generation, [ranges[d] for d in datasets]),
        idempotency_key=f"chain_sync:{spec.chain_id}:{keys}:{start}:{end}:g{generation}:r{reschedules}",
        job_id=job_id,
        max_attempts=spec.max_attempts,
    ))
    for dataset in datasets:
        conn.execute(_Q["attach_task"], {"task_id": task.task_id, "reschedules": reschedules,
                                         "range_id": ranges[dataset]})


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


def _target(spec: spec_mod.ChainSyncSpec, stream: dict[str, Any], safe_head: int | None) -> int | None:
    if isinstance(spec.mode, spec_mod.FixedTarget):
        return spec.mode.to_block
    if safe_head is not None:
        return max(stream["target"] or 0, safe_head + 1)
    return stream["target"]  # type: ignore[no-any-return]


def _reschedule_dead(conn: psycopg.Connection[Any], spec: spec_mod.ChainSyncSpec, job_id: UUID) -> int:
    """Give every range whose task the dispatcher gave up on (dead, failed) a fresh task, so no gap stays.

    The ranges of one dead task get one new task together, as they were planned.
    """
    by_task: dict[UUID, list[dict[str, Any]]] = {}
    for rng in conn.execute(_Q["given_up_ranges"], {"job_id": job_id}).fetchall():
        if rng["dataset"] in spec.datasets:  # a dataset removed from the spec is no longer planned
            by_task.setdefault(rng["task_id"], []).append(rng)
    for rows in by_task.values():
        first = rows[0]
        _create_task(conn, spec, job_id, {r["dataset"]: r["range_id"] for r in rows}, first["range_start"],
                     first["range_end"], first["generation"], max(r["reschedules"] for r in rows) + 1)
    return len(by_task)


def tick(conn: psycopg.Connection[Any], job_id: UUID, *, safe_head: int | None = None) -> TickResult:
    """Top up the job's in-flight range tasks to max_inflight.

    One task per range for every stream whose planning frontier is at that range, so
    aligned streams share one Cryo freeze; a stream that is behind (a repair, a late
    dataset) gets tasks of its own first, lowest range first, until it catches up.
    ``safe_head`` (inclusive) comes from the chain for follow_head jobs; without it the
    last known target is used. Idempotent: re-running schedules nothing new.
    """
    with conn.transaction():
        job = conn.execute(_Q["lock_job"], {"job_id": job_id}).fetchone()
        if job is None or job["status"] != "active":
            return TickResult(0, 0, False)
        spec = spec_mod.ChainSyncSpec.model_validate(job["spec"])
        streams = [dict(s, target=_target(spec, s, safe_head))
                   for s in conn.execute(_Q["streams"], {"job_id": job_id}).fetchall()
                   if s["dataset"] in spec.datasets]
        rescheduled = _reschedule_dead(conn, spec, job_id)
        counted = conn.execute(_Q["inflight_tasks"], {"job_id": job_id}).fetchone()
        inflight = counted["tasks"] if counted else 0
        scheduled = 0
        while inflight < spec.max_inflight:
            candidates = []
            for s in streams:
                if s["broken_at"] is None and s["target"] is not None and s["next_block"] < s["target"]:
                    end = _next_end(spec, s["next_block"], s["target"])
                    if end is not None:
                        candidates.append(((s["next_block"], end), s))
            if not candidates:
                break
            start, end = min(span for span, _ in candidates)
            group = [s for span, s in candidates if span == (start, end)]
            if _schedule(conn, spec, job_id, group, start, end):
                inflight, scheduled = inflight + 1, scheduled + 1
            for s in group:
                s["next_block"] = end
        done = True
        for s in streams:
            conn.execute(_Q["update_stream"], s)
            if not (isinstance(spec.mode, spec_mod.FixedTarget) and s["cursor"] >= spec.mode.to_block):
                done = False
        if done and isinstance(spec.mode, spec_mod.FixedTarget):
            conn.execute(_Q["set_job_status"], {"job_id": job_id, "status": "completed"})
        return TickResult(scheduled, rescheduled, done)


def on_range_committed(conn: psycopg.Connection[Any], task: task_models.Task, versions: dict[str, Any]) -> None:
    """Record a task's committed ranges (one per dataset), advance the cursors over linked ranges, top up.

    Runs inside the dispatcher's completion transaction, after the attempt's fence
    passed and its dataset versions committed. ``versions`` maps dataset ->
    {dataset_version, first_parent_hash, last_hash}.
    """
    rows = [r for r in conn.execute(_Q["ranges_for_task"], {"task_id": task.task_id}).fetchall()
            if r["status"] == "scheduled"]
    if not rows:
        return
    for rng in rows:
        info = versions[rng["dataset"]]
        conn.execute(_Q["commit_range"], {
            "range_id": rng["range_id"], "dataset_version": info["dataset_version"],
            "first_parent_hash": info.get("first_parent_hash"), "last_hash": info.get("last_hash"),
        })
    job_id = rows[0]["job_id"]
    conn.execute(_Q["lock_job"], {"job_id": job_id}).fetchone()
    advance(conn, job_id)
    tick(conn, job_id)


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
        if cursor > stream["cursor"] and last_error and last_error.startswith(LOST_PREFIX):
            last_error = None  # the first lost range is back (recover_lost put the cursor at it)
        conn.execute(_Q["update_stream"], {**stream, "cursor": cursor, "cursor_hash": cursor_hash,
                                           "broken_at": broken_at, "last_error": last_error})


def outside_transaction(conn: psycopg.Connection[Any], call: str) -> None:
    """Refuse to ask the chain from inside a transaction: a row lock it holds would wait on the node."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise errors.ChainSyncError(
            f"{call} asks the chain over the network: call it outside a transaction (commit or roll back first)",
            call=call, fix="no row lock may be held while a node answers (a slow node would stall the job)",
        )


class _UnknownHash(Exception):
    """Deciding under the job's lock needs a block hash the chain was not asked for before the lock."""


class _Hashes:
    """Block hashes asked of the chain (outside any transaction), remembered for the decision under the lock."""

    def __init__(self, conn: psycopg.Connection[Any], chain: chain_reader.ChainReader) -> None:
        self._conn, self._chain = conn, chain
        self._known: dict[int, str | None] = {}

    def ask(self, number: int) -> str | None:
        if number not in self._known:
            outside_transaction(self._conn, "repair")
            self._known[number] = self._chain.block_hash(number)
        return self._known[number]

    def known(self, number: int) -> str | None:
        if number not in self._known:
            raise _UnknownHash(number)
        return self._known[number]


Committed = Callable[[str, int], list[dict[str, Any]]]


def _stale_ranges(streams: list[dict[str, Any]], committed: Committed,
                  block_hash: Callable[[int], str | None]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Per stream to repair, its committed ranges that no longer match the chain (latest first).

    A stream is checked if its hash link is broken or the block under its cursor changed (a reorg
    after its last range committed); its ranges are walked down from there until one still matches.
    ``committed(dataset, below)`` lists committed ranges ending at or below ``below``, latest first.
    """
    out = []
    for stream in streams:
        tip_moved = bool(stream["cursor_hash"]) and block_hash(stream["cursor"] - 1) != stream["cursor_hash"]
        if stream["broken_at"] is None and not tip_moved:
            continue
        below = stream["broken_at"] if stream["broken_at"] is not None else stream["cursor"]
        stale = []
        for rng in committed(stream["dataset"], below):
            if block_hash(rng["range_end"] - 1) == rng["last_hash"]:
                break  # this range and everything before it is still canonical
            stale.append(rng)
        if stale:
            out.append((stream, stale))
    return out


REPAIR_PASSES = 3


def repair(conn: psycopg.Connection[Any], job_id: UUID, chain: chain_reader.ChainReader) -> int:
    """Supersede committed ranges that no longer match the canonical chain and re-extract them.

    Checks streams with a broken link, and the block under every cursor (a reorg
    after the last range committed). Returns the number of ranges superseded.

    No row lock is held while the chain answers (``conn`` must not be inside a transaction):
    the pass reads the job's streams and ranges, asks the chain for the hashes it needs, then
    locks the job and decides again on the rows as they are now, with the hashes it was given.
    If the rows changed so that deciding needs a hash not asked for yet (a range committed
    meanwhile), it lets go of the lock and starts over, at most REPAIR_PASSES times; after
    that it leaves the job to the next pass.
    """
    outside_transaction(conn, "repair")
    hashes = _Hashes(conn, chain)

    def committed_read(dataset: str, below: int) -> list[dict[str, Any]]:
        with conn.transaction():  # one short read: no snapshot is kept open while the chain answers
            return conn.execute(_Q["committed_below"], {"job_id": job_id, "dataset": dataset,
                                                        "below": below}).fetchall()

    for _ in range(REPAIR_PASSES):
        with conn.transaction():
            streams = conn.execute(_Q["streams"], {"job_id": job_id}).fetchall()
        _stale_ranges(streams, committed_read, hashes.ask)
        try:
            return _supersede_stale(conn, job_id, hashes.known)
        except _UnknownHash:
            continue  # the job changed since it was read: read it and ask the chain again
    log.warning("repair of job %s: its ranges kept changing during %d passes; the next pass retries",
                job_id, REPAIR_PASSES)
    return 0


def _supersede_stale(conn: psycopg.Connection[Any], job_id: UUID, block_hash: Callable[[int], str | None]) -> int:
    """Under the job's lock: decide on the rows as they are now (raises _UnknownHash, rolled back, if
    that needs a hash not asked for), supersede the stale ranges and plan their re-extraction."""
    superseded = 0
    redo: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
    with conn.transaction():
        job = conn.execute(_Q["lock_job"], {"job_id": job_id}).fetchone()
        if job is None:
            return 0
        spec = spec_mod.ChainSyncSpec.model_validate(job["spec"])
        streams = conn.execute(_Q["streams"], {"job_id": job_id}).fetchall()

        def committed(dataset: str, below: int) -> list[dict[str, Any]]:
            return conn.execute(_Q["committed_below"], {"job_id": job_id, "dataset": dataset,
                                                        "below": below}).fetchall()

        for stream, stale in _stale_ranges(streams, committed, block_hash):
            for rng in stale:
                gone = conn.execute(_Q["supersede_range"], {"range_id": rng["range_id"]}).fetchone()
                if gone and gone["dataset_version"]:
                    conn.execute(_Q["supersede_version"], {"dataset_version": gone["dataset_version"]})
                redo.setdefault((rng["range_start"], rng["range_end"], rng["generation"] + 1), []).append(stream)
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
        # The streams that lost the same range re-extract it in one task; a single stream, alone.
        for (start, end, generation), streams_of_range in sorted(redo.items()):
            _schedule(conn, spec, job_id, streams_of_range, start, end, generation)
    return superseded


def recover_lost(conn: psycopg.Connection[Any], job_id: UUID, lost: set[str]) -> int:
    """Re-extract the job's committed ranges whose dataset version is in ``lost`` (unreadable in the store).

    A lost range is not done: it is superseded with its version (as after a reorg), each
    stream's cursor goes back to its first lost range (so queries are no longer granted
    what cannot be read), a completed job becomes active again, and the range is planned
    anew under the next generation. The ranges after it stay committed; the cursor walks
    over them again once the gap is filled. Returns the number of ranges superseded.
    """
    if not lost:
        return 0
    with conn.transaction():
        job = conn.execute(_Q["lock_job"], {"job_id": job_id}).fetchone()
        if job is None:
            return 0
        rows = conn.execute(_Q["committed_ranges_of_versions"], {"job_id": job_id, "versions": sorted(lost)}).fetchall()
        if not rows:
            return 0
        spec = spec_mod.ChainSyncSpec.model_validate(job["spec"])
        streams = {s["dataset"]: s for s in conn.execute(_Q["streams"], {"job_id": job_id}).fetchall()}
        redo: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
        for rng in rows:
            conn.execute(_Q["supersede_range"], {"range_id": rng["range_id"]})
            conn.execute(_Q["supersede_version"], {"dataset_version": rng["dataset_version"]})
            redo.setdefault((rng["range_start"], rng["range_end"], rng["generation"] + 1), []).append(
                streams[rng["dataset"]])
        for dataset, stream in streams.items():
            gone = [r for r in rows if r["dataset"] == dataset]
            if not gone:
                continue
            earliest = min(r["range_start"] for r in gone)
            cursor, cursor_hash = stream["cursor"], stream["cursor_hash"]
            if earliest < cursor:
                before = conn.execute(_Q["committed_below"], {"job_id": job_id, "dataset": dataset,
                                                               "below": earliest}).fetchone()
                cursor, cursor_hash = earliest, before["last_hash"] if before else None
            conn.execute(_Q["update_stream"], {
                **stream, "cursor": cursor, "cursor_hash": cursor_hash, "broken_at": None,
                "last_error": f"{LOST_PREFIX}re-extracting {len(gone)} range(s) whose objects are missing from the "
                              f"store, from block {earliest}",
            })
        if job["status"] == "completed":
            conn.execute(_Q["set_job_status"], {"job_id": job_id, "status": "active"})
        for (start, end, generation), group in sorted(redo.items(), key=lambda item: item[0]):
            _schedule(conn, spec, job_id, [dict(s) for s in group], start, end, generation)
    return len(rows)


def scheduled_tick(conn: psycopg.Connection[Any], make_reader: Any = None) -> dict[str, TickResult]:
    """The dispatcher's periodic planner pass over every active chain_sync job.

    ``conn`` must not be inside a transaction: each step commits on its own, so no row lock
    is held while a job's node answers (see :func:`repair`).
    """
    outside_transaction(conn, "scheduled_tick")
    with conn.transaction():
        active = conn.execute(_Q["active_jobs"]).fetchall()
    results = {}
    for job in active:
        spec = spec_mod.ChainSyncSpec.model_validate(job["spec"])
        reader = (make_reader or chain_reader.RpcChainReader)(spec.rpc.urls)
        head = None
        try:
            repair(conn, job["job_id"], reader)
            if isinstance(spec.mode, spec_mod.FollowHead):
                head = safe_head(conn, reader, spec.mode)
            with conn.transaction():
                conn.execute(_Q["clear_rpc_error"], {"job_id": job["job_id"]})
        except Exception as exc:  # noqa: BLE001 - an unreachable RPC must not stop other jobs
            record_error(conn, job["job_id"], str(exc))
        results[job["name"]] = tick(conn, job["job_id"], safe_head=head)
    return results


def safe_head(conn: psycopg.Connection[Any], reader: chain_reader.ChainReader, mode: spec_mod.FollowHead) -> int:
    """The chain's safe head for a follow_head job, asked outside any transaction."""
    outside_transaction(conn, "safe_head")
    return reader.safe_head(confirmations=mode.confirmations, use_finalized_tag=mode.use_finalized_tag)


def record_error(conn: psycopg.Connection[Any], job_id: UUID, message: str) -> None:
    """Show ``message`` as the last error of every stream of the job (e.g. its RPC is unreachable)."""
    with conn.transaction():
        conn.execute(_Q["record_error"], {"job_id": job_id, "message": f"{RPC_ERROR_PREFIX}{redact.text(message)}"})
