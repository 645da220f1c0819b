"""Deleting a chain_sync job: what it would take (:func:`plan`), then taking it (:func:`delete`).

A job is deleted with everything that only made sense for it: its cursors
(``sync_streams``), its range ledger (``sync_ranges``), its tasks with their
attempts, dead-letter records and wake-ups (outbox rows). Its dataset versions
are kept by default: they stay in the registry and the object store, but no
job vouches for them any more, so queries stop seeing them until a job with the
same chain and namespace is applied again; its range tasks then land on the same
deterministic versions and commit as no-ops, re-extracting but storing nothing
twice. With ``drop_data`` the versions go as well: their registry rows (and
their dataset's row once it has none left) in the same transaction, their
objects afterwards through :func:`drop_objects`. See docs/decisions/1308.

Nothing is deleted while one of the job's tasks is queued or running: a worker
could otherwise commit a version for a range no ledger row remembers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg

from trace_core.chainsync import errors, jobs
from trace_core.datasets import errors as dataset_errors
from trace_core.datasets import objectstore
from trace_core.db import queries

_Q = queries.load("trace_core.chainsync")


@dataclasses.dataclass(frozen=True)
class Version:
    dataset_version: str
    dataset_uuid: Any
    dataset_key: str
    range_start: int
    range_end: int
    superseded: bool
    storage_prefix: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """What deleting the job touches, read without changing anything."""

    name: str
    status: str
    dataset_keys: tuple[str, ...]
    tasks: dict[str, int]  # task count by status
    versions: tuple[Version, ...]

    @property
    def in_flight(self) -> int:
        return self.tasks.get("queued", 0) + self.tasks.get("running", 0)

    @property
    def committed(self) -> tuple[Version, ...]:
        return tuple(v for v in self.versions if not v.superseded)


@dataclasses.dataclass(frozen=True)
class Result:
    plan: Plan
    dropped_data: bool
    datasets_removed: tuple[str, ...]  # registry datasets left with no version, removed too

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Object prefixes of the dropped versions (empty when the data was kept)."""
        return tuple(v.storage_prefix for v in self.plan.versions) if self.dropped_data else ()


def _plan(conn: psycopg.Connection[Any], job: dict[str, Any]) -> Plan:
    counts = {r["status"]: int(r["n"]) for r in conn.execute(_Q["job_tasks_by_status"], {"job_id": job["job_id"]})}
    versions = tuple(
        Version(r["dataset_version"], r["dataset_uuid"], r["dataset_key"], r["range_start"], r["range_end"],
                r["superseded_at"] is not None, r["storage_prefix"])
        for r in conn.execute(_Q["job_versions"], {"job_id": job["job_id"]}).fetchall()
    )
    keys = tuple(s["dataset_key"] for s in conn.execute(_Q["streams"], {"job_id": job["job_id"]}).fetchall())
    return Plan(job["name"], job["status"], keys, counts, versions)


def plan(conn: psycopg.Connection[Any], name: str) -> Plan:
    """What :func:`delete` would remove for job ``name`` (JobNotFoundError if there is none)."""
    return _plan(conn, jobs.find(conn, name))


def check_deletable(current: Plan) -> None:
    """Raise JobInFlightError (with the fix) if a task of the job is queued or running."""
    if not current.in_flight:
        return
    if current.status == "active":
        fix = (f"pause it first (`trace-lite chain-sync pause {current.name}`), wait until its running ranges "
               f"finish (`trace-lite status --job {current.name}`), then delete it")
    else:
        fix = (f"wait until they finish (`trace-lite status --job {current.name}`; they need a running worker), "
               "then delete it")
    raise errors.JobInFlightError(
        f"job {current.name} has {current.in_flight} range task(s) queued or running; deleting it now could "
        "lose the ranges they commit", name=current.name, in_flight=current.in_flight, fix=fix)


def delete(conn: psycopg.Connection[Any], name: str, *, drop_data: bool) -> Result:
    """Delete job ``name`` in one transaction (see the module docstring for what goes and what stays).

    The job row is locked first, so the planner cannot schedule a range meanwhile; the
    in-flight check is made again under that lock. Raises JobInFlightError if a task of
    the job is queued or running. With ``drop_data`` the caller then removes the
    objects under ``Result.prefixes`` (:func:`drop_objects`).
    """
    with conn.transaction():
        found = jobs.find(conn, name)
        job = conn.execute(_Q["lock_job"], {"job_id": found["job_id"]}).fetchone()
        if job is None:  # deleted by someone else since find()
            raise errors.JobNotFoundError(f"no chain_sync job named {name!r}", name=name)
        current = _plan(conn, dict(job))
        check_deletable(current)
        params = {"job_id": job["job_id"], "versions": [v.dataset_version for v in current.versions]}
        conn.execute(_Q["delete_job_ranges"], params)
        conn.execute(_Q["delete_job_streams"], params)
        removed: tuple[str, ...] = ()
        if drop_data:
            uuids = sorted({v.dataset_uuid for v in current.versions}, key=str)
            conn.execute(_Q["delete_versions"], params)
            removed = tuple(r["key"] for r in conn.execute(_Q["delete_empty_datasets"],
                                                             {"dataset_uuids": uuids}).fetchall())
        else:
            conn.execute(_Q["forget_version_tasks"], params)
        for step in ("delete_job_outbox", "delete_job_dead_tasks", "delete_job_attempts", "delete_job_tasks",
                     "delete_job"):
            conn.execute(_Q[step], params)
    conn.commit()
    return Result(current, drop_data, removed)


def drop_objects(store: objectstore.ObjectStore, prefixes: tuple[str, ...]) -> tuple[int, list[str]]:
    """Delete the objects under each prefix; returns (objects deleted, prefixes that failed).

    Runs after the registry rows are gone, so a failure leaves unreferenced objects
    (wasted space, never wrong answers); the caller names them so they can be removed by hand.
    """
    deleted, failed = 0, []
    for prefix in prefixes:
        try:
            deleted += store.delete_prefix(prefix)
        except dataset_errors.ObjectStoreError:  # one failed prefix must not keep the others
            failed.append(prefix)
    return deleted, failed
