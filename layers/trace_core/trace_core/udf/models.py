"""The registry's records: signing keys, bundles and their versions (pure shapes, no I/O)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from trace_core.udf import manifest as manifest_mod


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SigningKey(_Frozen):
    """A public key an org signs its bundles with. A revoked key verifies nothing, at upload or load."""

    org: str
    key_id: str
    public_key: bytes
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class BundleVersion(_Frozen):
    """One registered version of a bundle and where its archive is stored (a content address)."""

    org: str
    name: str
    version: int
    runtime: manifest_mod.Runtime
    entrypoint: str
    manifest: manifest_mod.Manifest
    key_id: str
    storage_key: str
    sha256: str
    size: int
    created_at: dt.datetime


class Bundle(_Frozen):
    """A bundle name of an org and its newest version."""

    org: str
    name: str
    latest_version: int
    created_at: dt.datetime
    updated_at: dt.datetime
