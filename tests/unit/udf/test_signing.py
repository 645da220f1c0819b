"""Ed25519 signing: round trip, key ids, and tamper detection."""

from __future__ import annotations

import hashlib

from trace_core.udf import signing

from tests.unit.udf import bundles
from tests.unit.udf.bundles import FILES


def test_sign_and_verify_round_trip() -> None:
    private = signing.generate_private_key()
    public = signing.public_key(private)
    signature = signing.sign(private, b"message")
    assert len(private) == len(public) == 32 and len(signature) == 128
    assert signing.verify(public, b"message", signature)
    assert signing.sign(private, b"message") == signature  # Ed25519 is deterministic


def test_a_tampered_message_signature_or_key_does_not_verify() -> None:
    private = signing.generate_private_key()
    public = signing.public_key(private)
    signature = signing.sign(private, b"message")
    flipped = format(int(signature, 16) ^ (1 << 200), "0128x")
    assert not signing.verify(public, b"messagE", signature)
    assert not signing.verify(public, b"message", flipped)
    assert not signing.verify(signing.public_key(signing.generate_private_key()), b"message", signature)
    assert not signing.verify(public, b"message", "not hex")
    assert not signing.verify(public, b"message", signature[:-2])
    assert not signing.verify(b"short", b"message", signature)


def test_a_key_id_is_the_sha256_prefix_of_the_raw_public_key() -> None:
    public = signing.public_key(signing.generate_private_key())
    assert signing.key_id(public) == hashlib.sha256(public).hexdigest()[:32]


def test_sign_manifest_sets_the_key_id_and_signs_the_canonical_bytes() -> None:
    signer, other = bundles.new_signer(), bundles.new_signer()
    unsigned = bundles.signed(FILES, other).model_copy(update={"signature": None})
    signed = signing.sign_manifest(unsigned, signer.private_key)
    assert signed.key_id == signer.key_id
    assert signing.verify_manifest(signed, signer.public_key)
    assert not signing.verify_manifest(signed, other.public_key)
    assert not signing.verify_manifest(signed.model_copy(update={"version": 2}), signer.public_key)
    assert not signing.verify_manifest(unsigned, signer.public_key)
