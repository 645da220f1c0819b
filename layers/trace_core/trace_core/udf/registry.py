"""The bundle registry's Postgres adapter: signing keys, bundles and their versions.

All SQL is in ``queries.sql``; Postgres errors are translated to
:class:`~trace_core.udf.errors.RegistryError` here, never leaked raw. The archives are not here:
a version row points at its content address (:func:`trace_core.udf.archive.content_address`).

An upload runs, in this order::

    latest = registry.latest_version(org, name)
    bundle = archive.check_upload(data, org=org, keys=registry.get_key, latest_version=latest)
    <store data under bundle.storage_key>          # before the registry points at it
    registry.register(bundle)                     # refuses a version not strictly newer, again
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, LiteralString

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from trace_core.db import queries
from trace_core.udf import archive, errors, models, signing
from trace_core.udf import manifest as manifest_mod

Row = dict[str, Any]


def query(name: str) -> LiteralString:
    """The text of a named query of ``udf/queries.sql``."""
    return queries.load("trace_core.udf")[name]


class PostgresBundleRegistry:
    """Keys, bundles and versions in ``state.udf_*`` (migration 0011), through ``pool``."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    # ------------------------------------------------------------ signing keys

    def add_key(self, org: str, public_key: bytes) -> models.SigningKey:
        """Register ``public_key`` for ``org`` (idempotent); a key of another org is a :class:`KeyConflictError`."""
        key_id = signing.key_id(public_key)
        with self._transaction("add_key") as cur:
            org_id = self._org_id(cur, org)
            cur.execute(query("insert_key"), {"key_id": key_id, "org_id": org_id, "public_key": public_key})
            row = cur.execute(query("get_key_any_org"), {"key_id": key_id}).fetchone()
        assert row is not None
        if row["org"] != org:
            raise errors.KeyConflictError(f"key {key_id} is registered to another org", key_id=key_id,
                                          operation="add_key")
        return models.SigningKey.model_validate(row)

    def revoke_key(self, org: str, key_id: str) -> models.SigningKey:
        """Revoke a key of ``org`` (idempotent: the first revocation time stays)."""
        with self._transaction("revoke_key") as cur:
            row = cur.execute(query("revoke_key"), {"org": org, "key_id": key_id}).fetchone()
        if row is None:
            raise errors.KeyNotFoundError(f"org {org!r} has no signing key {key_id}", org=org, key_id=key_id,
                                          operation="revoke_key")
        return models.SigningKey.model_validate(row)

    def get_key(self, org: str, key_id: str) -> models.SigningKey | None:
        """The key ``key_id`` of ``org``, revoked or not (the loader's ``keys`` lookup)."""
        with self._transaction("get_key") as cur:
            row = cur.execute(query("get_key"), {"org": org, "key_id": key_id}).fetchone()
        return models.SigningKey.model_validate(row) if row is not None else None

    def list_keys(self, org: str) -> list[models.SigningKey]:
        with self._transaction("list_keys") as cur:
            rows = cur.execute(query("list_keys"), {"org": org}).fetchall()
        return [models.SigningKey.model_validate(row) for row in rows]

    # ------------------------------------------------------------ bundles and versions

    def latest_version(self, org: str, name: str) -> int | None:
        """The newest registered version of ``org``/``name``, or None if it has none."""
        with self._transaction("latest_version") as cur:
            row = cur.execute(query("latest_version"), {"org": org, "name": name}).fetchone()
        return int(row["latest_version"]) if row is not None else None

    def register(self, bundle: archive.VerifiedBundle) -> models.BundleVersion:
        """Record a checked bundle as a new version, only if strictly newer than every registered one.

        In one transaction: the signing key is locked (and must still be unrevoked), the bundle row is
        raised to this version under its lock (no row back: a replay or rollback, refused), and the
        version is inserted (its primary key refuses a duplicate too).
        """
        manifest = bundle.manifest
        entry = manifest_mod.MANIFEST_ENTRY
        with self._transaction("register") as cur:
            org_id = self._org_id(cur, manifest.org)
            key = cur.execute(query("lock_key"), {"org_id": org_id, "key_id": manifest.key_id}).fetchone()
            if key is None:
                raise errors.BundleRejectedError(f"key {manifest.key_id} is not a registered key of org "
                                                 f"{manifest.org!r}", entry=entry, rule=errors.Rule.UNKNOWN_KEY)
            if key["revoked_at"] is not None:
                raise errors.BundleRejectedError(f"key {manifest.key_id} was revoked at {key['revoked_at']}",
                                                 entry=entry, rule=errors.Rule.REVOKED_KEY)
            params = {"org_id": org_id, "name": manifest.name, "version": manifest.version}
            if cur.execute(query("raise_latest"), params).fetchone() is None:
                latest = cur.execute(query("latest_version"), {"org": manifest.org, "name": manifest.name}).fetchone()
                raise errors.version_not_newer(manifest.name, manifest.version,
                                               int(latest["latest_version"]) if latest else None)
            try:
                row = cur.execute(query("insert_version"), params | {
                    "runtime": manifest.runtime, "entrypoint": manifest.entrypoint,
                    "manifest": Jsonb(manifest.model_dump(mode="json")), "key_id": manifest.key_id,
                    "storage_key": bundle.storage_key, "sha256": bundle.sha256, "size": bundle.size,
                }).fetchone()
            except psycopg.errors.UniqueViolation as exc:  # a version row the bundle row did not account for
                raise errors.version_not_newer(manifest.name, manifest.version, manifest.version) from exc
        assert row is not None
        return models.BundleVersion(
            org=manifest.org, name=manifest.name, version=manifest.version, runtime=manifest.runtime,
            entrypoint=manifest.entrypoint, manifest=manifest, key_id=manifest.key_id,
            storage_key=bundle.storage_key, sha256=bundle.sha256, size=bundle.size, created_at=row["created_at"])

    def get_version(self, org: str, name: str, version: int | None = None) -> models.BundleVersion | None:
        """Version ``version`` of ``org``/``name`` (the latest when None), or None."""
        with self._transaction("get_version") as cur:
            row = cur.execute(query("get_version"), {"org": org, "name": name, "version": version}).fetchone()
        return models.BundleVersion.model_validate(row) if row is not None else None

    def list_versions(self, org: str, name: str) -> list[models.BundleVersion]:
        with self._transaction("list_versions") as cur:
            rows = cur.execute(query("list_versions"), {"org": org, "name": name}).fetchall()
        return [models.BundleVersion.model_validate(row) for row in rows]

    def list_bundles(self, org: str) -> list[models.Bundle]:
        with self._transaction("list_bundles") as cur:
            rows = cur.execute(query("list_bundles"), {"org": org}).fetchall()
        return [models.Bundle.model_validate(row) for row in rows]

    # ------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _transaction(self, operation: str) -> Iterator[psycopg.Cursor[Row]]:
        """A cursor in one transaction; psycopg errors become :class:`RegistryError` (rolled back)."""
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                yield cur
        except psycopg.Error as exc:
            raise errors.RegistryError(f"{operation}: {exc}", operation=operation) from exc

    @staticmethod
    def _org_id(cur: psycopg.Cursor[Row], org: str) -> Any:
        row = cur.execute(query("org_id"), {"org": org}).fetchone()
        if row is None:
            raise errors.UnknownOrgError(f"no org has the slug {org!r}", org=org)
        return row["org_id"]
