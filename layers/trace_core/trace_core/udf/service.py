"""Bundle use cases over two ports: upload (check, store, register) and fetch (check again, extract).

The registry is the Postgres adapter (:class:`~trace_core.udf.registry.PostgresBundleRegistry`), the store
an :class:`~trace_core.datasets.objectstore.ObjectStore` over the bundles bucket. An archive is stored
under its content address before its version is registered, so a registered version always has its
archive; an upload refused by the registry (a concurrent upload of the same version won) leaves an
unreferenced object at a content address, which a retry of the same bytes overwrites with itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from trace_core.datasets.objectstore import ObjectStore
from trace_core.udf import archive, errors, models


class Registry(Protocol):
    def get_key(self, org: str, key_id: str) -> models.SigningKey | None: ...

    def latest_version(self, org: str, name: str) -> int | None: ...

    def register(self, bundle: archive.VerifiedBundle) -> models.BundleVersion: ...

    def get_version(self, org: str, name: str, version: int | None = None) -> models.BundleVersion | None: ...


def upload(data: bytes, *, org: str, registry: Registry, store: ObjectStore) -> models.BundleVersion:
    """Check every rule of an archive ``org`` uploads, store it, register it as a new version.

    Refused (``BundleRejectedError`` naming the entry and the rule) before anything is stored.
    """
    verified = archive.check_upload(data, org=org, keys=registry.get_key, latest_version=None)
    manifest = verified.manifest
    # The registry refuses a version that is not newer under its row lock; asking first keeps a replay
    # or a rollback from being stored at all.
    latest = registry.latest_version(org, manifest.name)
    if latest is not None and manifest.version <= latest:
        raise errors.version_not_newer(manifest.name, manifest.version, latest)
    store.put_bytes(verified.storage_key, data, content_type="application/zip")
    return registry.register(verified)


def resolve(registry: Registry, org: str, name: str, version: int | None = None) -> models.BundleVersion:
    """The registered version ``version`` of ``org``/``name`` (the latest when None)."""
    found = registry.get_version(org, name, version)
    if found is None:
        which = f"version {version} of " if version is not None else ""
        raise errors.BundleNotFoundError(f"no registered {which}bundle {name!r} in org {org!r}", org=org, name=name,
                                         version=version)
    return found


def fetch(version: models.BundleVersion, destination: Path, *, registry: Registry,
          store: ObjectStore) -> archive.LoadedBundle:
    """Fetch ``version``'s archive and extract it into ``destination`` (which must not exist), checking every
    rule again against what was registered: the digest, the size, the manifest, the key (now), the entries."""
    data = store.get(version.storage_key)
    return archive.load(data, destination, expected=version, keys=registry.get_key)
