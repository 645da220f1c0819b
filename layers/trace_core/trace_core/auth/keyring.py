"""The key ring: Ed25519 signing keys by key id, one current, older ones kept for an overlap.

Pure values and functions (no I/O): the ``keys`` adapters load and store the
ring as JSON. Rotation makes a new key current and keeps the previous one for
verification until ``retire_after`` (at least the longest token lifetime), so
tokens signed just before a rotation still verify; a retired or unknown key id
never does.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Annotated, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trace_core.auth import errors

FORMAT = "trace.keyring/1"
KeyId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
# Long enough for every token minted before a rotation to expire (the longest TTL is a day).
DEFAULT_OVERLAP = dt.timedelta(hours=25)


class KeyEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kid: KeyId
    alg: Literal["EdDSA"] = "EdDSA"
    # Absent in a verification-only copy of the ring.
    private_key: str | None = Field(default=None, repr=False)
    public_key: str
    created_at: dt.datetime
    retire_after: dt.datetime | None = None

    def usable_at(self, now: dt.datetime) -> bool:
        return self.retire_after is None or now < self.retire_after


class Keyring(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["trace.keyring/1"] = "trace.keyring/1"
    current: KeyId
    keys: Annotated[tuple[KeyEntry, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _current_signs(self) -> Keyring:
        kids = [k.kid for k in self.keys]
        if len(set(kids)) != len(kids):
            raise ValueError("two keys share a kid")
        current = self.entry(self.current)
        if current is None or current.private_key is None:
            raise ValueError(f"current key {self.current} must be in the ring with its private key")
        return self

    def entry(self, kid: str) -> KeyEntry | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2)

    @classmethod
    def from_json(cls, text: str, *, source: str) -> Keyring:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            raise errors.KeyStoreError(
                f"key ring at {source} is invalid: {where}: {first['msg']}",
                fix="restore it from a backup, or remove it to start a new ring (outstanding tokens stop verifying)",
            ) from exc


def _new_kid(now: dt.datetime) -> str:
    return f"k{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"


def _new_entry(now: dt.datetime) -> KeyEntry:
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return KeyEntry(kid=_new_kid(now), private_key=private_pem, public_key=public_pem, created_at=now)


def new(now: dt.datetime | None = None) -> Keyring:
    """A ring with one fresh key, current."""
    entry = _new_entry(now or dt.datetime.now(dt.UTC))
    return Keyring(current=entry.kid, keys=(entry,))


def rotated(ring: Keyring, *, now: dt.datetime | None = None, overlap: dt.timedelta = DEFAULT_OVERLAP) -> Keyring:
    """A new current key; the old current verifies until ``now + overlap``; already retired keys are dropped."""
    now = now or dt.datetime.now(dt.UTC)
    fresh = _new_entry(now)
    kept = []
    for entry in ring.keys:
        if not entry.usable_at(now):
            continue
        if entry.kid == ring.current:
            # It never signs again, so its private half has no further use.
            kept.append(entry.model_copy(update={"retire_after": now + overlap, "private_key": None}))
        else:
            kept.append(entry)
    return Keyring(current=fresh.kid, keys=(fresh, *kept))


def private_key(entry: KeyEntry) -> ed25519.Ed25519PrivateKey:
    if entry.private_key is None:
        raise errors.KeyStoreError(f"key {entry.kid} has no private key", fix="sign with the ring's current key")
    key = serialization.load_pem_private_key(entry.private_key.encode(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise errors.KeyStoreError(f"key {entry.kid} is not an Ed25519 key", fix="generate a new ring")
    return key


def public_key(entry: KeyEntry) -> ed25519.Ed25519PublicKey:
    key = serialization.load_pem_public_key(entry.public_key.encode())
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise errors.KeyStoreError(f"key {entry.kid} is not an Ed25519 key", fix="generate a new ring")
    return key
