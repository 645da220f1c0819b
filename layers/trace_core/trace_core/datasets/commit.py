"""The commit protocol: stage under the attempt's prefix, publish inside the completion transaction.

1. ``stage_file`` (worker, no database): upload a local Parquet file to
   ``staging/{task_id}/attempt-{n}/{dataset}/{file}`` and describe it (size,
   sha256, rows, schema hash). Nothing under ``staging/`` is ever visible.
2. ``commit`` runs INSIDE the dispatcher's completion transaction, as its
   ``on_success`` hook, so it only runs for the attempt that passed the fence:
   lock the version row, server-side copy staging -> version prefix, write
   ``manifest.json`` last, flip the row to ``committed``. If the transaction
   rolls back, objects may sit under the version prefix, but no committed row
   points at them; the next publisher overwrites them with the same keys.
3. Single publication: a version that is already committed with the same
   manifest digest makes ``commit`` a no-op; a different digest keeps the first
   and raises VersionConflictError (not retryable), which rolls the completion
   back. See docs/decisions/0601-dataset-commit-protocol.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from trace_core.datasets import errors, models, naming, objectstore, parquetinfo, registry

logger = logging.getLogger(__name__)

OnSuccess = Callable[[psycopg.Connection[Any], Any, dict[str, Any]], None]


def stage_file(
    store: objectstore.ObjectStore,
    path: Path,
    *,
    task_id: uuid.UUID,
    attempt: int,
    cryo_dataset: str,
    range_start: int,
    range_end: int,
    name: str | None = None,
) -> models.StagedFile:
    """Upload one local Parquet file covering ``[range_start, range_end)`` to the attempt's staging prefix."""
    naming.check_range(range_start, range_end)
    info = parquetinfo.inspect(path)
    file_name = name or path.name
    key = naming.staging_key(task_id, attempt, cryo_dataset, file_name)
    uploaded = store.put_file(key, path, sha256=info.sha256)
    if uploaded.size != info.size:
        raise errors.ObjectStoreError(
            f"staged {key} has {uploaded.size} bytes, the local file {info.size}", key=key, operation="put_file"
        )
    return models.StagedFile(
        name=file_name, staging_key=key, size=info.size, sha256=info.sha256, row_count=info.row_count,
        schema_hash=info.schema_hash, range_start=range_start, range_end=range_end,
    )


def commit(
    conn: psycopg.Connection[Any],
    store: objectstore.ObjectStore,
    staged: models.StagedVersion,
    *,
    task_id: uuid.UUID | None = None,
    attempt: int | None = None,
) -> models.DatasetVersion:
    """Publish ``staged`` as a committed dataset version; call inside the completion transaction.

    ``task_id``/``attempt`` are the ones the dispatcher fenced; when given they must be the
    staged output's own (a hook built for one attempt can never publish another's files).
    """
    if task_id is not None and uuid.UUID(str(task_id)) != staged.task_id:
        raise errors.InvalidDatasetInputError(
            f"staged output belongs to task {staged.task_id}, not {task_id}", field="task_id",
            expected=str(staged.task_id),
        )
    if attempt is not None and attempt != staged.attempt:
        raise errors.InvalidDatasetInputError(
            f"staged output belongs to attempt {staged.attempt}, not {attempt}", field="attempt",
            expected=str(staged.attempt),
        )
    with conn.transaction():
        dataset = registry.register_dataset(
            conn, key=staged.dataset_key, chain_id=staged.chain_id, cryo_dataset=staged.cryo_dataset,
            schema_hash=staged.schema_hash,
        )
        version = registry.register_version(
            conn, dataset=dataset, range_start=staged.range_start, range_end=staged.range_end,
            config_hash=staged.config_hash, lock=True,
        )
        manifest = staged.manifest(dataset_uuid=dataset.dataset_uuid)
        if version.status == "committed":
            if version.manifest_sha256 == manifest.sha256:
                logger.info("dataset version %s already committed with this manifest", version.dataset_version)
                return version
            raise errors.VersionConflictError(
                f"dataset version {version.dataset_version} ({staged.dataset_key} "
                f"[{staged.range_start}, {staged.range_end})) is already committed with manifest "
                f"{version.manifest_sha256}; attempt {staged.attempt} of task {staged.task_id} produced "
                f"{manifest.sha256}. The first stays.",
                dataset_version=version.dataset_version, existing_sha256=version.manifest_sha256,
                given_sha256=manifest.sha256,
            )
        for item in staged.files:
            # Server-side and atomic: the destination is the staged object, whose length (and, on S3,
            # sha256) the store checked at upload; no HEAD per file inside the completion transaction.
            store.copy(item.staging_key, version.storage_prefix + item.name, size=item.size)
        # Written last: a manifest at the prefix implies all its files were copied first.
        store.put_bytes(version.manifest_key, manifest.to_bytes(), content_type="application/json")
        return registry.mark_committed(conn, version, manifest, task_id=staged.task_id, attempt=staged.attempt)


def commit_all(
    conn: psycopg.Connection[Any],
    store: objectstore.ObjectStore,
    staged: Sequence[models.StagedVersion],
    *,
    task_id: uuid.UUID | None = None,
    attempt: int | None = None,
) -> list[models.DatasetVersion]:
    """Commit several staged versions atomically (all or none, in one transaction)."""
    with conn.transaction():
        return [commit(conn, store, item, task_id=task_id, attempt=attempt) for item in staged]


def on_success_hook(store: objectstore.ObjectStore, staged: Sequence[models.StagedVersion]) -> OnSuccess:
    """The dispatcher ``on_success`` callback that publishes ``staged`` for the task's fenced attempt.

    The dispatcher calls it as ``hook(conn, task, outputs)`` inside the completion transaction,
    after the fence passed; ``task.attempt`` is then the attempt that is completing.
    """
    frozen = tuple(staged)

    def hook(conn: psycopg.Connection[Any], task: Any, outputs: dict[str, Any]) -> None:
        commit_all(conn, store, frozen, task_id=task.task_id, attempt=task.attempt)

    return hook


def read_manifest(
    conn: psycopg.Connection[Any], store: objectstore.ObjectStore, dataset_version: str
) -> tuple[models.DatasetVersion, models.Manifest]:
    """A committed version and its manifest, checked against the digest in the registry."""
    version = registry.get_committed(conn, dataset_version)
    data = store.get(version.manifest_key)
    if naming.sha256_hex(data) != version.manifest_sha256:
        raise errors.ManifestMismatchError(
            f"{version.manifest_key} does not match the registry's digest {version.manifest_sha256}",
            key=version.manifest_key, reason="sha256",
        )
    return version, models.Manifest.from_bytes(data)


def verify_objects(
    store: objectstore.ObjectStore, version: models.DatasetVersion, manifest: models.Manifest
) -> list[str]:
    """Problems found comparing every object with the manifest (size and sha256); empty means intact."""
    problems: list[str] = []
    for item in manifest.files:
        key = version.storage_prefix + item.path
        info = store.head(key)
        if info is None:
            problems.append(f"{key}: missing")
            continue
        if info.size != item.size:
            problems.append(f"{key}: {info.size} bytes, manifest says {item.size}")
            continue
        digest = naming.sha256_hex(store.get(key))
        if digest != item.sha256:
            problems.append(f"{key}: sha256 {digest}, manifest says {item.sha256}")
    return problems
