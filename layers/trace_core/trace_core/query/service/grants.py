"""Trusted attach, the service side: a token's grants -> committed manifests -> verified local files.

Runs before any untrusted SQL. For every grant the SQL uses, each pinned version
is checked against the registry (committed, same dataset uuid, same storage
ref, manifest digest), fetched once into the :class:`~cache.VerifiedCache`,
and the relation becomes the version files in range order: one relation per
dataset however many ranges it spans. Resolved relations are kept warm by their
pinned version set, which never changes meaning, so a warm query does no I/O
here at all.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from trace_core.auth import models as auth_models
from trace_core.db import queries
from trace_core.query.service import cache, errors, sandbox


@dataclasses.dataclass(frozen=True)
class VersionRecord:
    dataset_version: str
    dataset_uuid: uuid.UUID
    storage_prefix: str
    manifest_sha256: str


class VersionRegistry(Protocol):
    def committed(self, versions: Sequence[str]) -> dict[str, VersionRecord]:
        """The committed versions among ``versions`` (absent: unknown or not committed)."""


class PostgresVersions:
    """VersionRegistry over ``state.dataset_versions`` (one query for any number of versions)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def committed(self, versions: Sequence[str]) -> dict[str, VersionRecord]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(queries.load("trace_core.query.service")["committed_versions"], {"versions": list(versions)})
            rows: list[dict[str, Any]] = cur.fetchall()
        return {r["dataset_version"]: VersionRecord(**r) for r in rows}


_WarmKey = tuple[str, uuid.UUID, tuple[tuple[str, str, int, int], ...]]


class Resolver:
    """Grants -> :class:`~sandbox.RelationFiles`, verified, with a warm LRU by pinned version set."""

    def __init__(self, registry: VersionRegistry, store: cache.VerifiedCache, *, max_warm: int = 1024) -> None:
        self._registry = registry
        self._cache = store
        self._warm: collections.OrderedDict[_WarmKey, sandbox.RelationFiles] = collections.OrderedDict()
        self._max_warm = max_warm
        self._lock = threading.Lock()

    def resolve(self, grants: Sequence[auth_models.Grant]) -> dict[str, sandbox.RelationFiles]:
        """Relation name -> verified files, for each of ``grants``."""
        resolved: dict[str, sandbox.RelationFiles] = {}
        cold: list[auth_models.Grant] = []
        with self._lock:
            for grant in grants:
                hit = self._warm.get(self._key(grant))
                if hit is None:
                    cold.append(grant)
                else:
                    self._warm.move_to_end(self._key(grant))
                    resolved[grant.relation] = hit
        if cold:
            for grant, files in zip(cold, self._resolve_cold(cold)):
                resolved[grant.relation] = files
                with self._lock:
                    self._warm[self._key(grant)] = files
                    while len(self._warm) > self._max_warm:
                        self._warm.popitem(last=False)
        return resolved

    @staticmethod
    def _key(grant: auth_models.Grant) -> _WarmKey:
        # Everything the cold path checks against the registry is in the key: a token that pins a known
        # version to another storage_ref (or range) misses the warm entry and is checked, never served.
        pinned = tuple(sorted((v.dataset_version, v.storage_ref, v.range_start, v.range_end) for v in grant.versions))
        return grant.relation, grant.dataset_uuid, pinned

    def _resolve_cold(self, grants: Sequence[auth_models.Grant]) -> list[sandbox.RelationFiles]:
        wanted = sorted({v.dataset_version for g in grants for v in g.versions})
        records = self._registry.committed(wanted)
        out = []
        for grant in grants:
            files: list[Path] = []
            for pinned in sorted(grant.versions, key=lambda v: v.range_start):
                record = records.get(pinned.dataset_version)
                self._check(grant, pinned, record)
                assert record is not None
                files.extend(self._cache.files(
                    dataset_version=pinned.dataset_version, storage_ref=pinned.storage_ref,
                    manifest_sha256=record.manifest_sha256, dataset_uuid=grant.dataset_uuid,
                ))
            out.append(sandbox.RelationFiles(name=grant.relation, files=tuple(files), versions=grant.version_ids))
        return out

    @staticmethod
    def _check(grant: auth_models.Grant, pinned: auth_models.PinnedVersion, record: VersionRecord | None) -> None:
        version = pinned.dataset_version
        if record is None:
            raise errors.DatasetIntegrityError(
                f"granted version {version} of {grant.dataset_key} is not a committed dataset version",
                dataset_version=version, reason="not_committed",
            )
        if record.dataset_uuid != grant.dataset_uuid or record.storage_prefix != pinned.storage_ref:
            raise errors.DatasetIntegrityError(
                f"granted version {version} of {grant.dataset_key} does not match the registry "
                f"(dataset {record.dataset_uuid} at {record.storage_prefix})",
                dataset_version=version, reason="registry_mismatch",
            )
