"""The commit protocol on real Postgres and S3 (moto server): visibility only through the owning attempt.

Invariant 5: outputs are staged per attempt and become visible only when that
attempt's completion publishes them; a failed or stale attempt is never
visible; a retry yields one committed version; the same identity maps to the
same version.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from trace_core.datasets import commit, errors, models, naming, objectstore, registry
from trace_core.dispatcher import errors as dispatcher_errors
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import reaper, tasks

from tests.integration.datasets.fixtures import expire_lease, parquet_file

CONFIG = "0123456789abcdef"


def stage(store: objectstore.ObjectStore, tmp: Path, task_id: uuid.UUID, attempt: int, *, key: str,
          start: int = 0, end: int = 20, chunk: int = 10, salt: str = "") -> models.StagedVersion:
    files = []
    for lo in range(start, end, chunk):
        hi = min(lo + chunk, end)
        path = parquet_file(tmp / f"{task_id}-{attempt}", lo, hi, salt=salt)
        files.append(commit.stage_file(store, path, task_id=task_id, attempt=attempt, cryo_dataset="blocks",
                                       range_start=lo, range_end=hi))
    return models.StagedVersion(
        task_id=task_id, attempt=attempt, chain_id=10143, dataset_key=key, cryo_dataset="blocks",
        range_start=start, range_end=end, config_hash=CONFIG, extract={"chunk_blocks": chunk}, cryo_version="0.3.2",
        first_parent_hash="0x" + "01" * 32, last_block_hash="0x" + "02" * 32, files=tuple(files),
    )


@pytest.fixture
def store(make_s3_store) -> objectstore.S3ObjectStore:
    return make_s3_store()


def test_staging_alone_publishes_nothing(conn, store, make_attempt, tmp_path):
    lease = make_attempt()
    staged = stage(store, tmp_path, lease.task.task_id, lease.attempt, key="c_stage/blocks")
    assert all(i.key.startswith(f"staging/{lease.task.task_id}/attempt-1/") for i in store.list(""))
    assert registry.get_version(conn, staged.dataset_version) is None
    assert registry.list_committed(conn, "c_stage/blocks") == []


def test_commit_publishes_files_and_a_manifest_that_match(conn, store, make_attempt, tmp_path):
    # GIVEN an attempt's staged output
    lease = make_attempt()
    staged = stage(store, tmp_path, lease.task.task_id, lease.attempt, key="c_pub/blocks")
    # WHEN committed inside a transaction
    with conn.transaction():
        version = commit.commit(conn, store, staged, task_id=lease.task.task_id, attempt=lease.attempt)
    # THEN the registry shows one committed version with the attempt as its author
    assert version.status == "committed"
    assert (version.created_by_task, version.created_by_attempt) == (lease.task.task_id, 1)
    assert (version.range_start, version.range_end, version.row_count) == (0, 20, 20)
    assert version.storage_prefix.startswith(f"cryo/10143/{naming.dataset_uuid('c_pub/blocks')}/0_20/")
    # AND the manifest in S3 matches the registry digest and every object (size and sha256)
    got_version, manifest = commit.read_manifest(conn, store, staged.dataset_version)
    assert got_version == version and manifest.sha256 == version.manifest_sha256
    assert commit.verify_objects(store, version, manifest) == []
    assert [f.path for f in manifest.files] == [f.name for f in staged.files]
    assert (manifest.first_parent_hash, manifest.last_block_hash) == (version.first_parent_hash,
                                                                       version.last_block_hash)


def test_a_rolled_back_commit_is_not_visible(conn, store, make_attempt, tmp_path):
    lease = make_attempt()
    staged = stage(store, tmp_path, lease.task.task_id, lease.attempt, key="c_rb/blocks")
    with pytest.raises(RuntimeError), conn.transaction():
        commit.commit(conn, store, staged)
        raise RuntimeError("completion failed after the hook ran")
    with pytest.raises(errors.VersionNotFoundError):
        registry.get_committed(conn, staged.dataset_version)
    assert registry.list_committed(conn, "c_rb/blocks") == []


def test_recommitting_identical_output_is_a_no_op_and_keeps_the_first_author(conn, store, make_attempt, tmp_path):
    # GIVEN a committed version WHEN another task produces the same bytes for the same identity
    first, second = make_attempt(), make_attempt()
    one = stage(store, tmp_path, first.task.task_id, 1, key="c_idem/blocks")
    two = stage(store, tmp_path, second.task.task_id, 1, key="c_idem/blocks")
    assert one.dataset_version == two.dataset_version
    committed = commit.commit(conn, store, one)
    again = commit.commit(conn, store, two)
    # THEN nothing changes: one version, first author, same manifest
    assert again == committed and again.created_by_task == first.task.task_id
    assert len(registry.list_committed(conn, "c_idem/blocks")) == 1


def test_different_bytes_for_a_committed_version_keep_the_first_and_fail_loudly(conn, store, make_attempt, tmp_path):
    first, second = make_attempt(), make_attempt()
    one = stage(store, tmp_path, first.task.task_id, 1, key="c_conf/blocks")
    other = stage(store, tmp_path, second.task.task_id, 1, key="c_conf/blocks", salt="f")
    committed = commit.commit(conn, store, one)
    manifest_before = store.get(committed.manifest_key)
    with pytest.raises(errors.VersionConflictError) as caught:
        commit.commit(conn, store, other)
    assert caught.value.details["existing_sha256"] == committed.manifest_sha256
    assert caught.value.retryable is False
    # the first version and its objects are untouched
    assert registry.get_committed(conn, one.dataset_version) == committed
    assert store.get(committed.manifest_key) == manifest_before
    _, manifest = commit.read_manifest(conn, store, one.dataset_version)
    assert commit.verify_objects(store, committed, manifest) == []


def test_a_hook_for_one_attempt_cannot_publish_another(conn, store, make_attempt, tmp_path):
    lease = make_attempt()
    staged = stage(store, tmp_path, lease.task.task_id, 1, key="c_fence/blocks")
    with pytest.raises(errors.InvalidDatasetInputError) as caught:
        commit.commit(conn, store, staged, task_id=lease.task.task_id, attempt=2)
    assert caught.value.details["field"] == "attempt"


def test_dispatcher_completion_publishes_only_for_the_live_attempt(conn, store, make_attempt, tmp_path):
    # GIVEN attempt 1 staged its output, then lost its lease (reaped), and attempt 2 staged its own
    lease1 = make_attempt()
    task_id = lease1.task.task_id
    staged1 = stage(store, tmp_path, task_id, 1, key="c_stale/blocks")
    expire_lease(conn, task_id)
    assert reaper.reap(conn) >= 1
    lease2 = tasks.claim(conn, task_id, worker_id="second", lease_seconds=60)
    assert lease2.attempt == 2
    staged2 = stage(store, tmp_path, task_id, 2, key="c_stale/blocks")
    # WHEN the stale attempt 1 completes with its commit hook
    with pytest.raises(dispatcher_errors.StaleAttemptError):
        tasks.complete(conn, task_id, attempt=1, lease_token=lease1.lease_token,
                       result=task_models.Success(outputs={}),
                       on_success=commit.on_success_hook(store, [staged1]))
    # THEN nothing is published
    assert registry.list_committed(conn, "c_stale/blocks") == []
    # WHEN the live attempt 2 completes
    done = tasks.complete(conn, task_id, attempt=2, lease_token=lease2.lease_token,
                          result=task_models.Success(outputs={"ok": True}),
                          on_success=commit.on_success_hook(store, [staged2]))
    # THEN exactly one version is committed, authored by attempt 2, with attempt 2's files only
    assert done.status == "completed"
    [version] = registry.list_committed(conn, "c_stale/blocks")
    assert (version.created_by_task, version.created_by_attempt) == (task_id, 2)
    assert version.dataset_version == staged1.dataset_version == staged2.dataset_version
    _, manifest = commit.read_manifest(conn, store, version.dataset_version)
    assert commit.verify_objects(store, version, manifest) == []
    assert all(not f.path.startswith("staging/") for f in manifest.files)


def test_a_failing_commit_hook_rolls_the_completion_back(conn, store, make_attempt, tmp_path):
    # GIVEN a committed version and a second task whose output conflicts with it
    first, second = make_attempt(), make_attempt()
    commit.commit(conn, store, stage(store, tmp_path, first.task.task_id, 1, key="c_hookfail/blocks"))
    conflicting = stage(store, tmp_path, second.task.task_id, 1, key="c_hookfail/blocks", salt="e")
    # WHEN the second task completes with its commit hook THEN the completion fails and is not applied
    with pytest.raises(errors.VersionConflictError):
        tasks.complete(conn, second.task.task_id, attempt=1, lease_token=second.lease_token,
                       result=task_models.Success(outputs={}),
                       on_success=commit.on_success_hook(store, [conflicting]))
    assert tasks.get(conn, second.task.task_id).status == "running"
    [version] = registry.list_committed(conn, "c_hookfail/blocks")
    assert version.created_by_task == first.task.task_id


def test_concurrent_publishers_of_one_version_serialise(database_url, conn, store, make_attempt, tmp_path):
    # GIVEN two tasks that produced the same version, committing from two connections at once
    first, second = make_attempt(), make_attempt()
    one = stage(store, tmp_path, first.task.task_id, 1, key="c_race/blocks")
    two = stage(store, tmp_path, second.task.task_id, 1, key="c_race/blocks")
    with psycopg.connect(database_url) as a, psycopg.connect(database_url) as b:
        with a.transaction():
            commit.commit(a, store, one)
            # b blocks on the version row lock until a commits; give it a short timeout to prove it waits
            b.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable), b.transaction():
                commit.commit(b, store, two)
        b.execute("SET lock_timeout = '5s'")
        # WHEN a has committed, b's commit is a no-op on the same row
        with b.transaction():
            second_result = commit.commit(b, store, two)
    assert second_result.created_by_task == first.task.task_id
    assert len(registry.list_committed(conn, "c_race/blocks")) == 1


def test_a_superseded_version_is_not_listed_but_stays_readable_by_id(conn, store, make_attempt, tmp_path):
    # GIVEN a committed version that the planner later superseded (its range was reorged away)
    lease = make_attempt()
    version = commit.commit(conn, store, stage(store, tmp_path, lease.task.task_id, 1, key="c_sup/blocks"))
    conn.execute("UPDATE state.dataset_versions SET superseded_at = now() WHERE dataset_version = %s",
                 (version.dataset_version,))
    # THEN listings leave it out, and a pinned reader can still resolve it
    assert registry.list_committed(conn, "c_sup/blocks") == []
    assert [v.dataset_version for v in registry.list_committed(conn, "c_sup/blocks", include_superseded=True)] == [
        version.dataset_version]
    assert registry.get_committed(conn, version.dataset_version) == version
