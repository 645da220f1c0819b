"""Applying chain_sync specs, pausing and resuming jobs, and reading their progress."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from trace_core.chainsync import chain_reader, errors, planner
from trace_core.chainsync import spec as spec_mod
from trace_core.datasets import availability, objectstore
from trace_core.db import queries

_Q = queries.load("trace_core.chainsync")


@dataclasses.dataclass(frozen=True)
class ApplyResult:
    job_id: UUID
    outcome: Literal["created", "updated", "unchanged"]
    scheduled: int
    recovered: int = 0  # committed versions re-extracted because the store lost their objects


def _initial_target(spec: spec_mod.ChainSyncSpec) -> int | None:
    return spec.mode.to_block if isinstance(spec.mode, spec_mod.FixedTarget) else None


def apply(conn: psycopg.Connection[Any], spec: spec_mod.ChainSyncSpec,
          reader: chain_reader.ChainReader | None = None,
          store: objectstore.ObjectStore | None = None) -> ApplyResult:
    """Upsert the job named by ``spec`` and plan its first ranges. Re-applying the same spec changes nothing.

    With ``store`` (the datasets bucket), committed ranges whose objects the store lost are
    re-extracted (:func:`recover_lost_versions`), so a completed job never stands on data
    that cannot be read; ``ApplyResult.recovered`` counts them.
    """
    result = _apply(conn, spec, reader)
    if store is None:
        return result
    lost = recover_lost_versions(conn, store, result.job_id)
    return dataclasses.replace(result, recovered=len(lost))


def recover_lost_versions(conn: psycopg.Connection[Any], store: objectstore.ObjectStore,
                          job_id: UUID | None = None) -> list[availability.Unreadable]:
    """Find the committed versions of the job's datasets (every chain_sync job's, without ``job_id``) that the
    store no longer holds in full, and re-extract their ranges; returns them."""
    jobs = [j for j in list_jobs(conn) if job_id is None or j["job_id"] == job_id]
    specs = [spec_mod.ChainSyncSpec.model_validate(j["spec"]) for j in jobs]
    keys = sorted({spec.dataset_key(d) for spec in specs for d in spec.datasets})
    if not keys:
        return []
    lost = availability.unreadable_versions(conn, store, keys)  # reads only: no row lock across the listing
    versions = {u.dataset_version for u in lost}
    for job in jobs:
        planner.recover_lost(conn, job["job_id"], versions)
    conn.commit()
    return lost


def _apply(conn: psycopg.Connection[Any], spec: spec_mod.ChainSyncSpec,
           reader: chain_reader.ChainReader | None) -> ApplyResult:
    with conn.transaction():
        existing = conn.execute(_Q["job_by_name"], {"name": spec.name}).fetchone()
        if existing is not None and existing["kind"] != "chain_sync":
            raise errors.SpecError(f"name: a {existing['kind']} job is already called {spec.name!r}", field="name")
        if existing is not None and existing["spec_hash"] == spec.spec_hash():
            return ApplyResult(existing["job_id"], "unchanged", 0)
        if existing is not None:
            old = spec_mod.ChainSyncSpec.model_validate(existing["spec"])
            for field in ("chain_id", "dataset_namespace"):
                if getattr(old, field) != getattr(spec, field):
                    raise errors.SpecError(
                        f"{field}: cannot change from {getattr(old, field)!r} to {getattr(spec, field)!r} on an "
                        "existing job; apply it under a new name", field=field)
            if old.mode.from_block != spec.mode.from_block:
                raise errors.SpecError("mode.from_block: cannot change on an existing job", field="mode.from_block")
            job_id = existing["job_id"]
            conn.execute(_Q["update_job_spec"], {"job_id": job_id, "spec": Jsonb(_stored(spec)),
                                                 "spec_hash": spec.spec_hash()})
            outcome: Literal["created", "updated"] = "updated"
        else:
            inserted = conn.execute(_Q["insert_job"], {"name": spec.name, "spec": Jsonb(_stored(spec)),
                                                       "spec_hash": spec.spec_hash()}).fetchone()
            assert inserted is not None  # INSERT ... RETURNING: one row
            job_id = inserted["job_id"]
            outcome = "created"
        for dataset in spec.datasets:
            try:
                with conn.transaction():
                    conn.execute(_Q["upsert_stream"], {
                        "job_id": job_id, "dataset": dataset, "dataset_key": spec.dataset_key(dataset),
                        "chain_id": spec.chain_id, "from_block": spec.mode.from_block,
                        "target": _initial_target(spec),
                    })
            except psycopg.errors.UniqueViolation as exc:
                raise errors.SpecError(
                    f"namespace: dataset {spec.dataset_key(dataset)} on chain {spec.chain_id} is already synced by "
                    "another job; choose another namespace", field="namespace") from exc
    head = None
    if isinstance(spec.mode, spec_mod.FollowHead):
        reader = reader or chain_reader.RpcChainReader(spec.rpc.urls)
        planner.outside_transaction(conn, "apply")  # the job's rows are committed: no lock held while asking
        try:
            head = planner.safe_head(conn, reader, spec.mode)
        except errors.ChainSyncError as exc:  # the job is saved; the scheduled pass retries the head
            planner.record_error(conn, job_id, str(exc))
    result = planner.tick(conn, job_id, safe_head=head)
    conn.commit()
    return ApplyResult(job_id, outcome, result.scheduled)


def _stored(spec: spec_mod.ChainSyncSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True)


def find(conn: psycopg.Connection[Any], name: str) -> dict[str, Any]:
    job = conn.execute(_Q["job_by_name"], {"name": name}).fetchone()
    if job is None or job["kind"] != "chain_sync":
        names = [j["name"] for j in conn.execute(_Q["all_jobs"]).fetchall()]
        raise errors.JobNotFoundError(
            f"no chain_sync job named {name!r}" + (f" (jobs: {', '.join(names)})" if names else " (none applied yet)"),
            name=name,
        )
    return dict(job)


def set_paused(conn: psycopg.Connection[Any], name: str, paused: bool) -> bool:
    """Pause or resume a job; returns False if it already was. Resuming plans at once."""
    job = find(conn, name)
    if job["status"] == "completed":
        return False
    with conn.transaction():
        changed = conn.execute(_Q["set_job_status"], {"job_id": job["job_id"],
                                                      "status": "paused" if paused else "active"}).fetchone()
    if not paused:
        planner.tick(conn, job["job_id"])
    conn.commit()
    return changed is not None


@dataclasses.dataclass(frozen=True)
class StreamProgress:
    dataset: str
    dataset_key: str
    cursor: int
    from_block: int
    target: int | None
    queued: int
    running: int
    committed: int
    failed: int
    blocks_per_second: float
    eta_seconds: float | None
    broken_at: int | None
    last_error: str | None

    @property
    def done_blocks(self) -> int:
        return self.cursor - self.from_block


def progress(conn: psycopg.Connection[Any], name: str) -> tuple[dict[str, Any], list[StreamProgress]]:
    job = find(conn, name)
    spec = spec_mod.ChainSyncSpec.model_validate(job["spec"])
    rows = conn.execute(_Q["stream_progress"], {"job_id": job["job_id"]}).fetchall()
    out = []
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        # Blocks committed over the last minute, or since the job started if that is more recent;
        # once nothing runs, the rate of the whole run.
        window = 60.0
        if row["started_at"] is not None:
            window = max(1.0, min(60.0, (now - row["started_at"]).total_seconds()))
        rate = float(row["blocks_last_minute"]) / window
        if row["queued"] + row["running"] == 0 and row["started_at"] and row["last_commit_at"]:
            elapsed = (row["last_commit_at"] - row["started_at"]).total_seconds()
            done = row["cursor"] - spec.mode.from_block
            rate = done / elapsed if elapsed > 0 else rate
        remaining = (row["target"] - row["cursor"]) if row["target"] is not None else None
        eta = remaining / rate if remaining is not None and rate > 0 else None
        out.append(StreamProgress(
            dataset=row["dataset"], dataset_key=row["dataset_key"], cursor=row["cursor"],
            from_block=spec.mode.from_block, target=row["target"], queued=row["queued"], running=row["running"],
            committed=row["committed"], failed=row["failed"], blocks_per_second=rate, eta_seconds=eta,
            broken_at=row["broken_at"], last_error=row["last_error"] or row["task_error"],
        ))
    return job, out


def list_jobs(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(_Q["all_jobs"]).fetchall()]


def visible_versions(conn: psycopg.Connection[Any], job_id: UUID | None = None) -> list[dict[str, Any]]:
    """Committed versions below each stream's cursor: what queries may be granted."""
    return [dict(r) for r in conn.execute(_Q["visible_versions"], {"job_id": job_id}).fetchall()]
