"""Helpers to make bundles, honest and hostile: a signer, a key lookup, and a zip writer that obeys no rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import stat
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

from trace_core.udf import archive, manifest, models, signing

ORG = "acme"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FILES: dict[str, bytes] = {
    "main.py": b"def handler(event, context):\n    return event\n",
    "main.js": b"exports.handler = async (event) => event;\n",
    "lib/util.py": b"VALUE = 1\n",
}


@dataclasses.dataclass(frozen=True)
class Signer:
    private_key: bytes

    @property
    def public_key(self) -> bytes:
        return signing.public_key(self.private_key)

    @property
    def key_id(self) -> str:
        return signing.key_id(self.public_key)

    def record(self, org: str = ORG, *, revoked: bool = False) -> models.SigningKey:
        return models.SigningKey(org=org, key_id=self.key_id, public_key=self.public_key, created_at=NOW,
                                 revoked_at=NOW if revoked else None)


def new_signer() -> Signer:
    return Signer(signing.generate_private_key())


def lookup(*records: models.SigningKey) -> archive.KeyLookup:
    """A key lookup over ``records`` (what the registry's ``get_key`` answers)."""
    by_id = {(r.org, r.key_id): r for r in records}
    return lambda org, key_id: by_id.get((org, key_id))


def document(contents: Mapping[str, bytes], signer: Signer, **overrides: Any) -> dict[str, Any]:
    """An unsigned manifest document for ``contents`` (python3.12, main.handler), with ``overrides``."""
    return {
        "manifest_version": 1, "org": ORG, "name": "demo", "version": 1, "runtime": "python3.12",
        "entrypoint": "main.handler", "limits": {"timeout_seconds": 3, "memory_mb": 128},
        "files": [f.model_dump() for f in archive.file_entries(contents)], "key_id": signer.key_id,
    } | overrides


def signed(contents: Mapping[str, bytes], signer: Signer, **overrides: Any) -> manifest.Manifest:
    return signing.sign_manifest(manifest.validate(document(contents, signer, **overrides)), signer.private_key)


@dataclasses.dataclass
class Entry:
    """One zip entry, written as given: any name, mode, method or flags."""

    name: str
    data: bytes
    mode: int = stat.S_IFREG | 0o644
    method: int = zipfile.ZIP_DEFLATED
    create_system: int = 3
    msdos_attr: int = 0


def entries(files: Mapping[str, bytes]) -> list[Entry]:
    return [Entry(name, data) for name, data in sorted(files.items())]


def write_zip(items: Sequence[Entry]) -> bytes:
    """A zip of ``items`` in order, duplicates and all."""
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": the point of some tests
        with zipfile.ZipFile(out, "w") as zf:
            for item in items:
                info = zipfile.ZipInfo(item.name, date_time=archive.ZIP_EPOCH)
                info.create_system = item.create_system
                info.external_attr = (item.mode << 16) | item.msdos_attr
                info.compress_type = item.method
                zf.writestr(info, item.data)
    return out.getvalue()


def forge(signed_manifest: manifest.Manifest | bytes, items: Sequence[Entry]) -> bytes:
    """A zip of the manifest (a model, or raw bytes) followed by ``items``."""
    raw = signed_manifest if isinstance(signed_manifest, bytes) else signed_manifest.to_json()
    return write_zip([Entry(manifest.MANIFEST_ENTRY, raw), *items])


def registered(data: bytes, signed_manifest: manifest.Manifest) -> models.BundleVersion:
    """The registry's record of ``data`` as if it had been uploaded (what a load expects)."""
    sha256 = hashlib.sha256(data).hexdigest()
    return models.BundleVersion(
        org=signed_manifest.org, name=signed_manifest.name, version=signed_manifest.version,
        runtime=signed_manifest.runtime, entrypoint=signed_manifest.entrypoint, manifest=signed_manifest,
        key_id=signed_manifest.key_id, storage_key=archive.content_address(signed_manifest.org, sha256),
        sha256=sha256, size=len(data), created_at=NOW)
