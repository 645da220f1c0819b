"""Ed25519 keys, key ids and manifest signatures (pure; ``cryptography`` does the arithmetic).

Keys travel as raw bytes: 32 for a private key (the seed), 32 for a public key. A key id is the
first 32 hex digits of the sha256 of the raw public key, so it is a pure function of the key and
two orgs can never register different keys under one id by accident.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from trace_core.udf import manifest as manifest_mod

KEY_BYTES = 32
KEY_ID_HEX_DIGITS = 32


def generate_private_key() -> bytes:
    """A new private key (its 32 raw bytes). Keep it secret; register only its public key."""
    return ed25519.Ed25519PrivateKey.generate().private_bytes_raw()


def public_key(private_key: bytes) -> bytes:
    """The 32 raw bytes of the public key of ``private_key``."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def key_id(public: bytes) -> str:
    """The id of a public key: the first 32 hex digits of sha256(raw public key)."""
    if len(public) != KEY_BYTES:
        raise ValueError(f"an Ed25519 public key is {KEY_BYTES} bytes, not {len(public)}")
    return hashlib.sha256(public).hexdigest()[:KEY_ID_HEX_DIGITS]


def sign(private_key: bytes, message: bytes) -> str:
    """The Ed25519 signature of ``message`` as 128 lowercase hex digits."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(private_key).sign(message).hex()


def verify(public: bytes, message: bytes, signature: str) -> bool:
    """Whether ``signature`` (hex) is ``public``'s signature of ``message``. Never raises on bad input."""
    try:
        raw = bytes.fromhex(signature)
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(raw, message)
    except (ValueError, InvalidSignature):
        return False
    return True


def sign_manifest(manifest: manifest_mod.Manifest, private_key: bytes) -> manifest_mod.Manifest:
    """``manifest`` with ``key_id`` set to the signer's and ``signature`` over its canonical bytes."""
    unsigned = manifest.model_copy(update={"key_id": key_id(public_key(private_key)), "signature": None})
    return unsigned.model_copy(update={"signature": sign(private_key, unsigned.canonical_bytes())})


def verify_manifest(manifest: manifest_mod.Manifest, public: bytes) -> bool:
    """Whether ``manifest`` carries a valid signature by ``public`` over its canonical bytes."""
    return manifest.signature is not None and verify(public, manifest.canonical_bytes(), manifest.signature)
