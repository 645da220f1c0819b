"""The KeyStore port and its adapters: a 0600 file under ``home`` (Lite) and Secrets Manager (AWS, moto).

Both hold the same JSON key ring (:mod:`trace_core.auth.keyring`). Parsed keys
are cached in memory for ``refresh_s`` so verifying a token costs no I/O; a
token whose key id is not in the cached ring triggers a reload (such reloads at
most once per ``min_reload_s``, so random key ids cannot hammer the store),
which is how a verifier picks up a rotation made by another process.

Only minting creates a ring: a verifier that finds none refuses every token.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from trace_core import aws
from trace_core.auth import errors, keyring
from trace_core.settings import Settings


@dataclasses.dataclass(frozen=True)
class SigningKey:
    kid: str
    key: ed25519.Ed25519PrivateKey


class KeyStore(Protocol):
    """Current signing key and verification keys by key id."""

    def signing_key(self) -> SigningKey:
        """The current key (a new ring is created on first use)."""

    def verification_key(self, kid: str) -> ed25519.Ed25519PublicKey | None:
        """The public key for ``kid`` if it is in the ring and not retired; None otherwise."""

    def rotate(self, *, overlap: dt.timedelta = keyring.DEFAULT_OVERLAP) -> str:
        """Make a new key current (the previous one verifies for ``overlap``); returns the new kid."""


class _CachedKeyStore:
    """Caching and reload policy shared by the adapters; they supply load, create and save."""

    def __init__(self, *, refresh_s: float = 60.0, min_reload_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._refresh_s = refresh_s
        self._min_reload_s = min_reload_s
        self._clock = clock
        self._lock = threading.Lock()
        self._ring: keyring.Keyring | None = None
        self._loaded_at = float("-inf")
        self._forced_at = float("-inf")
        self._private: dict[str, ed25519.Ed25519PrivateKey] = {}
        self._public: dict[str, ed25519.Ed25519PublicKey] = {}

    # --- adapter hooks ---
    def _load(self) -> keyring.Keyring | None:
        raise NotImplementedError

    def _create(self, ring: keyring.Keyring) -> keyring.Keyring:
        """Store ``ring`` if no ring exists yet; return whichever ring is stored now."""
        raise NotImplementedError

    def _save_rotated(self, rotate: Callable[[keyring.Keyring], keyring.Keyring]) -> keyring.Keyring:
        """Apply ``rotate`` to the stored ring and store the result (serialised where the store allows)."""
        raise NotImplementedError

    # --- the port ---
    def _current_ring(self, *, force: bool = False) -> keyring.Keyring | None:
        with self._lock:
            now = self._clock()
            stale = self._ring is None or now - self._loaded_at >= self._refresh_s
            # Only reloads forced by unknown kids are rate-limited: a flood of random kids costs one
            # load a second, while the first token of a fresh rotation still reloads at once.
            forced = force and now - self._forced_at >= self._min_reload_s
            if forced:
                self._forced_at = now
            if stale or forced:
                self._set(self._load())
            return self._ring

    def _set(self, ring: keyring.Keyring | None) -> None:
        self._ring = ring
        self._loaded_at = self._clock()

    def signing_key(self) -> SigningKey:
        ring = self._current_ring()
        if ring is None:
            with self._lock:
                self._set(self._create(keyring.new()))
            ring = self._ring
        assert ring is not None
        key = self._private.get(ring.current)
        if key is None:
            entry = ring.entry(ring.current)
            assert entry is not None  # the ring's validator guarantees it
            key = self._private[ring.current] = keyring.private_key(entry)
        return SigningKey(ring.current, key)

    def verification_key(self, kid: str) -> ed25519.Ed25519PublicKey | None:
        ring = self._current_ring()
        entry = ring.entry(kid) if ring is not None else None
        if entry is None:
            ring = self._current_ring(force=True)
            entry = ring.entry(kid) if ring is not None else None
        if entry is None or not entry.usable_at(dt.datetime.now(dt.UTC)):
            return None
        key = self._public.get(kid)
        if key is None:
            key = self._public[kid] = keyring.public_key(entry)
        return key

    def rotate(self, *, overlap: dt.timedelta = keyring.DEFAULT_OVERLAP) -> str:
        def change(ring: keyring.Keyring) -> keyring.Keyring:
            return keyring.rotated(ring, overlap=overlap)

        ring = self._save_rotated(change)
        with self._lock:
            self._set(ring)
        return ring.current


class FileKeyStore(_CachedKeyStore):
    """The ring as a JSON file readable by its owner only (refused if group or others may read it)."""

    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(**options)
        self.path = Path(path)

    def _load(self) -> keyring.Keyring | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise errors.KeyStoreError(
                f"key ring {self.path} is accessible to group or others (mode {stat.filemode(info.st_mode)})",
                fix=f"chmod 600 {self.path}",
            )
        return keyring.Keyring.from_json(self.path.read_text(), source=str(self.path))

    def _write_new(self, ring: keyring.Keyring, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(ring.to_json())

    def _create(self, ring: keyring.Keyring) -> keyring.Keyring:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._write_new(ring, self.path)
        except FileExistsError:  # another process created it first: use theirs
            stored = self._load()
            assert stored is not None
            return stored
        return ring

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save_rotated(self, rotate: Callable[[keyring.Keyring], keyring.Keyring]) -> keyring.Keyring:
        with self._exclusive():
            ring = rotate(self._load() or keyring.new())
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.unlink(missing_ok=True)
            self._write_new(ring, tmp)
            os.replace(tmp, self.path)
        return ring


class SecretsManagerKeyStore(_CachedKeyStore):
    """The ring as the SecretString of one secret; takes a boto3 Secrets Manager client."""

    def __init__(self, client: Any, secret_id: str, **options: Any) -> None:
        super().__init__(**options)
        self._client = client
        self.secret_id = secret_id

    def _fail(self, exc: Exception, operation: str) -> errors.KeyStoreError:
        return errors.KeyStoreError(
            f"{operation} of secret {self.secret_id} failed: {exc}",
            fix="check the secret exists and this role may read it (secretsmanager:GetSecretValue)",
        )

    def _load(self) -> keyring.Keyring | None:
        try:
            response = self._client.get_secret_value(SecretId=self.secret_id)
        except self._client.exceptions.ResourceNotFoundException:
            return None
        except Exception as exc:  # botocore raises ClientError, EndpointConnectionError, ...
            raise self._fail(exc, "reading") from exc
        return keyring.Keyring.from_json(response["SecretString"], source=f"secret {self.secret_id}")

    def _create(self, ring: keyring.Keyring) -> keyring.Keyring:
        try:
            self._client.create_secret(
                Name=self.secret_id, SecretString=ring.to_json(),
                Description="Trace capability token signing keys (Ed25519 key ring)",
            )
        except self._client.exceptions.ResourceExistsException:
            stored = self._load()
            assert stored is not None
            return stored
        except Exception as exc:
            raise self._fail(exc, "creating") from exc
        return ring

    def _save_rotated(self, rotate: Callable[[keyring.Keyring], keyring.Keyring]) -> keyring.Keyring:
        current = self._load()
        if current is None:
            return self._create(rotate(keyring.new()))
        ring = rotate(current)
        try:
            self._client.put_secret_value(SecretId=self.secret_id, SecretString=ring.to_json())
        except Exception as exc:
            raise self._fail(exc, "updating") from exc
        return ring


def file_path(settings: Settings) -> Path:
    return settings.home / "keys" / "token-keyring.json"


def from_settings(settings: Settings, **options: Any) -> KeyStore:
    """The key store configured by ``TRACE_TOKEN_KEYS`` (``file`` under home, or ``secretsmanager``)."""
    if settings.token_keys == "secretsmanager":
        return SecretsManagerKeyStore(aws.client("secretsmanager", settings), settings.token_keys_secret, **options)
    return FileKeyStore(file_path(settings), **options)
