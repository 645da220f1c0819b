"""Staging cleanup against real attempts: finished and orphaned prefixes go, a live attempt's stays."""

from __future__ import annotations

import datetime as dt
import uuid

from trace_core.datasets import cleanup, commit, naming
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import reaper, tasks

from tests.integration.datasets.fixtures import expire_lease, parquet_file

HOUR = dt.timedelta(hours=1)


def put(store, task_id: uuid.UUID, attempt: int, tmp_path) -> str:
    path = parquet_file(tmp_path / f"{task_id}-{attempt}", 0, 5)
    commit.stage_file(store, path, task_id=task_id, attempt=attempt, cryo_dataset="blocks", range_start=0, range_end=5)
    return naming.staging_prefix(task_id, attempt)


def test_sweep_deletes_what_no_live_attempt_needs(conn, make_s3_store, make_attempt, tmp_path):
    store = make_s3_store()
    # GIVEN: attempt 1 reaped (finished, expired) and attempt 2 live on one task
    lease = make_attempt()
    task_id = lease.task.task_id
    expired_prefix = put(store, task_id, 1, tmp_path)
    expire_lease(conn, task_id)
    reaper.reap(conn)
    live = tasks.claim(conn, task_id, worker_id="w2", lease_seconds=60)
    live_prefix = put(store, task_id, 2, tmp_path)
    # AND a task that completed (its output was committed from staging already)
    done = make_attempt()
    done_prefix = put(store, done.task.task_id, 1, tmp_path)
    tasks.complete(conn, done.task.task_id, attempt=1, lease_token=done.lease_token,
                   result=task_models.Success(outputs={}))
    # AND an orphan prefix no attempt owns
    orphan_prefix = put(store, uuid.uuid4(), 1, tmp_path)
    # AND an object outside any attempt prefix
    store.put_bytes("staging/readme.txt", b"not an attempt")

    # WHEN swept inside the grace period THEN nothing goes
    assert cleanup.sweep(conn, store, older_than=HOUR).deleted == ()

    # WHEN swept two hours later
    later = dt.datetime.now(dt.UTC) + 2 * HOUR
    report = cleanup.sweep(conn, store, older_than=HOUR, now=later)

    # THEN the expired, completed and orphan prefixes are gone and the live attempt's stays
    assert set(report.deleted) == {expired_prefix, done_prefix, orphan_prefix}
    assert report.kept == (live_prefix,)
    assert report.objects_deleted == 3
    assert [i.key.rsplit("/", 1)[0] + "/" for i in store.list("staging/") if i.key.endswith(".parquet")] == [
        live_prefix + "blocks/"]
    assert store.head("staging/readme.txt") is not None
    assert live.attempt == 2
