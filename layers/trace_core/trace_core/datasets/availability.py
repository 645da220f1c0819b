"""Which committed dataset versions can no longer be read from the object store.

The registry in Postgres says a version is committed; the store may disagree
(a Lite store that lost its data, a bucket emptied by hand). A reader would only
find out at query time (``dataset_integrity ... NoSuchKey``). This check finds
out first, cheaply: one paginated LIST per dataset (the common prefix of its
versions), never a GET or HEAD per file. A version is unreadable when its
``manifest.json`` is missing or fewer bytes than the registry recorded are
stored under its prefix. It does not hash anything: a present but altered
object is the integrity check's business (``commit.verify_objects``).
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from trace_core.datasets import objectstore
from trace_core.db import queries


@dataclasses.dataclass(frozen=True)
class StoredVersion:
    """What the check needs of a registry row."""

    dataset_version: str
    dataset_uuid: uuid.UUID
    dataset_key: str
    range_start: int
    range_end: int
    storage_prefix: str
    manifest_key: str
    bytes: int | None


@dataclasses.dataclass(frozen=True)
class Unreadable:
    """A committed version whose objects are not all in the store; ``reason`` says what is missing."""

    dataset_version: str
    dataset_key: str
    range_start: int
    range_end: int
    reason: str


def check(versions: Sequence[StoredVersion], listing: Iterable[objectstore.ObjectInfo]) -> list[Unreadable]:
    """The versions ``listing`` (every object under their prefixes) does not hold in full. Pure."""
    prefixes = sorted(v.storage_prefix for v in versions)
    stored_bytes = dict.fromkeys(prefixes, 0)
    manifests: set[str] = set()
    wanted_manifests = {v.manifest_key for v in versions}
    for info in listing:
        if info.key in wanted_manifests:
            manifests.add(info.key)
            continue
        at = bisect.bisect_right(prefixes, info.key) - 1
        if at >= 0 and info.key.startswith(prefixes[at]):
            stored_bytes[prefixes[at]] += info.size
    found = []
    for version in versions:
        reason = None
        if version.manifest_key not in manifests:
            reason = f"{version.manifest_key} is missing"
        elif version.bytes is not None and stored_bytes[version.storage_prefix] < version.bytes:
            reason = (f"{stored_bytes[version.storage_prefix]} of its {version.bytes} bytes are under "
                      f"{version.storage_prefix}")
        if reason is not None:
            found.append(Unreadable(version.dataset_version, version.dataset_key, version.range_start,
                                    version.range_end, reason))
    return found


def listing_prefix(prefixes: Sequence[str]) -> str:
    """The longest common folder (ending with ``/``) of ``prefixes``: what one LIST must cover."""
    # character by character, then cut back to the last "/": a folder boundary (commonpath would drop
    # the trailing "/" and take "a/b" for "a/b/" alone)
    common = os.path.commonprefix(list(prefixes))  # noqa: RUF071
    return common[: common.rfind("/") + 1]


def versions_to_check(conn: psycopg.Connection[Any], dataset_keys: Sequence[str] | None = None) -> list[StoredVersion]:
    """Every committed, not superseded version (of ``dataset_keys`` only, when given)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(queries.load("trace_core.datasets")["versions_to_check"],
                    {"keys": list(dataset_keys) if dataset_keys is not None else None})
        return [StoredVersion(**row) for row in cur.fetchall()]


def unreadable_versions(
    conn: psycopg.Connection[Any], store: objectstore.ObjectStore, dataset_keys: Sequence[str] | None = None
) -> list[Unreadable]:
    """The committed versions (of ``dataset_keys``, or all) whose objects the store no longer holds in full.

    Raises ObjectStoreError if the store cannot be listed (then nothing is known either way).
    """
    by_dataset: dict[uuid.UUID, list[StoredVersion]] = {}
    for version in versions_to_check(conn, dataset_keys):
        by_dataset.setdefault(version.dataset_uuid, []).append(version)
    found: list[Unreadable] = []
    for versions in by_dataset.values():
        prefix = listing_prefix([v.storage_prefix for v in versions])
        found.extend(check(versions, store.list(prefix) if prefix else _everything(store)))
    return found


def _everything(store: objectstore.ObjectStore) -> Iterable[objectstore.ObjectInfo]:
    # Versions with no common folder (never so under naming.version_prefix): list the whole bucket.
    return store.list("")
