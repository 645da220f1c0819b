"""Staging cleanup: delete ``staging/{task}/attempt-{n}/`` prefixes no live attempt can still need.

A prefix goes when nothing wrote to it for ``older_than`` and either its attempt
is finished (whatever the outcome: a succeeded attempt's files were copied at
commit, a failed, expired or abandoned one's are never visible) or no such
attempt exists (an orphan). A live attempt's prefix is never touched, however
old. The decision is the pure function :func:`decide`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import psycopg

from trace_core.datasets import naming, objectstore, registry


@dataclasses.dataclass(frozen=True)
class StagingPrefix:
    prefix: str
    task_id: uuid.UUID
    attempt: int
    objects: int
    newest: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class CleanupReport:
    deleted: tuple[str, ...]
    kept: tuple[str, ...]
    objects_deleted: int


def decide(
    staging: StagingPrefix,
    attempt_state: dict[str, Any] | None,
    *,
    now: dt.datetime,
    older_than: dt.timedelta,
) -> str | None:
    """Why ``staging`` may be deleted, or None to keep it."""
    cutoff = now - older_than
    if staging.newest is not None and staging.newest > cutoff:
        return None  # written recently: a worker may still be uploading
    if attempt_state is None:
        return "orphan: no such attempt"
    finished = attempt_state.get("finished_at")
    if finished is None:
        return None  # the live attempt owns it
    if finished > cutoff:
        return None
    return f"attempt finished ({attempt_state.get('outcome')})"


def scan(store: objectstore.ObjectStore) -> list[StagingPrefix]:
    """Every attempt prefix under ``staging/`` with its object count and newest write."""
    found: list[StagingPrefix] = []
    for task_prefix in store.list_prefixes(naming.STAGING_ROOT):
        for attempt_prefix in store.list_prefixes(task_prefix):
            owner = naming.parse_staging_prefix(attempt_prefix)
            if owner is None:
                continue  # not ours to judge
            infos = list(store.list(attempt_prefix))
            newest = max((i.last_modified for i in infos), default=None)
            found.append(StagingPrefix(attempt_prefix, owner[0], owner[1], len(infos), newest))
    return found


def sweep(
    conn: psycopg.Connection[Any],
    store: objectstore.ObjectStore,
    *,
    older_than: dt.timedelta,
    now: dt.datetime | None = None,
) -> CleanupReport:
    """Delete the staging prefixes :func:`decide` releases; returns what went and what stayed."""
    moment = now or dt.datetime.now(dt.UTC)
    prefixes = scan(store)
    states = registry.attempt_states(conn, [(p.task_id, p.attempt) for p in prefixes])
    deleted: list[str] = []
    kept: list[str] = []
    objects = 0
    for staging in prefixes:
        reason = decide(staging, states.get((staging.task_id, staging.attempt)), now=moment, older_than=older_than)
        if reason is None:
            kept.append(staging.prefix)
            continue
        objects += store.delete_prefix(staging.prefix)
        deleted.append(staging.prefix)
    return CleanupReport(deleted=tuple(deleted), kept=tuple(kept), objects_deleted=objects)
