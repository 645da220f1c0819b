"""The dataset registry in Postgres: datasets, dataset versions and their publication state.

Every function takes an open psycopg connection and runs in ``conn.transaction()``
(a savepoint when the caller already has a transaction open, as the dispatcher's
completion does). Registration is idempotent: the same inputs map to the same
row, and a re-registration that disagrees with the stored row raises
DatasetConflictError naming the field. Readers must only trust ``committed`` rows.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from trace_core.datasets import errors, models, naming
from trace_core.db import queries


def _run(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(queries.load("trace_core.datasets")[name], params)
        return cur.fetchall() if cur.description else []


def register_dataset(
    conn: psycopg.Connection[Any],
    *,
    key: str,
    chain_id: int,
    cryo_dataset: str,
    schema_hash: str | None = None,
) -> models.Dataset:
    """Register the dataset ``key`` (idempotent); its uuid is derived from the key.

    Raises DatasetConflictError if ``key`` is already registered for another chain or Cryo dataset.
    """
    _, key_dataset = naming.split_dataset_key(key)
    if key_dataset != cryo_dataset:
        raise errors.InvalidDatasetInputError(
            f"dataset key {key} must end with its cryo dataset {cryo_dataset!r}",
            field="cryo_dataset", expected=key_dataset,
        )
    params = {
        "dataset_uuid": naming.dataset_uuid(key), "key": key, "chain_id": chain_id,
        "cryo_dataset": cryo_dataset, "schema_hash": schema_hash,
    }
    with conn.transaction():
        _run(conn, "insert_dataset", params)
        if schema_hash is not None:
            _run(conn, "fill_dataset_schema_hash", {"key": key, "schema_hash": schema_hash})
        row = _run(conn, "select_dataset", {"key": key})[0]
    for field, given in (("chain_id", chain_id), ("cryo_dataset", cryo_dataset)):
        if row[field] != given:
            raise errors.DatasetConflictError(
                f"dataset {key} is registered with {field}={row[field]!r}, not {given!r}",
                field=field, existing=row[field], given=given,
            )
    return models.Dataset.model_validate(row)


def get_dataset(conn: psycopg.Connection[Any], key: str) -> models.Dataset | None:
    rows = _run(conn, "select_dataset", {"key": key})
    return models.Dataset.model_validate(rows[0]) if rows else None


def register_version(
    conn: psycopg.Connection[Any],
    *,
    dataset: models.Dataset,
    range_start: int,
    range_end: int,
    config_hash: str,
    lock: bool = True,
) -> models.DatasetVersion:
    """The version row for ``{dataset, range, config_hash}``, created as ``staged`` if new.

    With ``lock`` the row stays locked (FOR UPDATE) until the caller's transaction ends,
    so concurrent publishers of the same version serialise. Raises DatasetConflictError
    if a row with the same id disagrees on any identity field.
    """
    version = naming.version_id(
        chain_id=dataset.chain_id, dataset_key=dataset.key, range_start=range_start,
        range_end=range_end, config_hash=config_hash,
    )
    prefix = naming.version_prefix(
        chain_id=dataset.chain_id, dataset_uuid=dataset.dataset_uuid, range_start=range_start,
        range_end=range_end, version=version,
    )
    wanted = {
        "dataset_version": version, "dataset_uuid": dataset.dataset_uuid, "range_start": range_start,
        "range_end": range_end, "config_hash": config_hash, "storage_prefix": prefix,
        "manifest_key": naming.manifest_key(prefix),
    }
    with conn.transaction():
        try:
            _run(conn, "insert_version", wanted)
        except psycopg.errors.UniqueViolation as exc:
            raise errors.DatasetConflictError(
                f"another version id is registered for {dataset.key} [{range_start}, {range_end}) "
                f"config {config_hash}",
                field="dataset_version", existing=None, given=version,
            ) from exc
        row = _run(conn, "lock_version" if lock else "select_version", {"dataset_version": version})[0]
    for field, given in wanted.items():
        existing = row[field]
        if str(existing) != str(given):
            raise errors.DatasetConflictError(
                f"dataset version {version} is registered with {field}={existing!r}, not {given!r}",
                field=field, existing=existing, given=given,
            )
    return models.DatasetVersion.model_validate(row)


def mark_committed(
    conn: psycopg.Connection[Any],
    version: models.DatasetVersion,
    manifest: models.Manifest,
    *,
    task_id: uuid.UUID | None,
    attempt: int | None,
) -> models.DatasetVersion:
    """Flip a locked ``staged`` row to ``committed`` with the manifest's digest and totals."""
    with conn.transaction():
        _run(conn, "mark_committed", {
            "dataset_version": version.dataset_version,
            "manifest_sha256": manifest.sha256,
            "row_count": manifest.row_count,
            "bytes": manifest.bytes,
            "schema_hash": manifest.schema_hash,
            "first_parent_hash": manifest.first_parent_hash,
            "last_block_hash": manifest.last_block_hash,
            "cryo_version": manifest.cryo_version,
            "created_by_task": task_id,
            "created_by_attempt": attempt,
        })
        row = _run(conn, "select_version", {"dataset_version": version.dataset_version})[0]
    return models.DatasetVersion.model_validate(row)


def get_version(conn: psycopg.Connection[Any], dataset_version: str) -> models.DatasetVersion | None:
    """The version row in any status (use :func:`get_committed` to read data)."""
    rows = _run(conn, "select_version", {"dataset_version": dataset_version})
    return models.DatasetVersion.model_validate(rows[0]) if rows else None


def get_committed(conn: psycopg.Connection[Any], dataset_version: str) -> models.DatasetVersion:
    """The committed version, or VersionNotFoundError (a staged row is not visible)."""
    found = get_version(conn, dataset_version)
    if found is None or found.status != "committed":
        raise errors.VersionNotFoundError(
            f"no committed dataset version {dataset_version}", dataset_version=dataset_version
        )
    return found


def list_committed(
    conn: psycopg.Connection[Any],
    dataset_key: str,
    *,
    range_from: int = 0,
    range_to: int = 2**63 - 1,
    limit: int = 1000,
    include_superseded: bool = False,
) -> list[models.DatasetVersion]:
    """Committed versions of ``dataset_key`` overlapping ``[range_from, range_to)``, by range.

    Versions the chain-sync planner superseded after a reorg are left out unless ``include_superseded``.
    """
    naming.split_dataset_key(dataset_key)
    rows = _run(conn, "list_committed", {
        "key": dataset_key, "range_from": range_from, "range_to": range_to, "limit": limit,
        "include_superseded": include_superseded,
    })
    return [models.DatasetVersion.model_validate(r) for r in rows]


def attempt_states(
    conn: psycopg.Connection[Any], pairs: list[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], dict[str, Any]]:
    """State of each ``(task_id, attempt)`` that exists (for staging cleanup)."""
    if not pairs:
        return {}
    rows = _run(conn, "attempt_states", {
        "task_ids": [p[0] for p in pairs], "attempts": [p[1] for p in pairs],
    })
    return {(r["task_id"], r["attempt"]): r for r in rows}
