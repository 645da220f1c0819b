"""The Lite org's bundle signing key: made on first use under ``TRACE_HOME``, registered with the registry.

The private key never leaves ``$TRACE_HOME/udf/signing.key`` (mode 0600); the registry holds only the
public key. On AWS an org registers the public key of a key it keeps itself (docs/specs/udf.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from trace_core.udf import models, signing
from trace_core.udf.service import Registry

KEY_FILE = Path("udf") / "signing.key"


def private_key(home: Path) -> bytes:
    """The Lite signing key, made (0600, in a 0700 directory) on first use."""
    path = home / KEY_FILE
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = signing.generate_private_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


class KeyRegistry(Registry, Protocol):
    def add_key(self, org: str, public_key: bytes) -> models.SigningKey: ...


def registered(registry: KeyRegistry, org: str, key: bytes) -> models.SigningKey:
    """The registry's record of ``key``'s public half for ``org``, registered now if it was not."""
    public = signing.public_key(key)
    found = registry.get_key(org, signing.key_id(public))
    return found if found is not None else registry.add_key(org, public)
