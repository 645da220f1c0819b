"""The file key store: created 0600 on first use, refused when readable by others, rotation with overlap."""

from __future__ import annotations

import datetime as dt
import os
import stat
import uuid

import pytest
from trace_core.auth import errors, keyring, tokens

ISSUER = "trace-test"


def _token(store, grant):
    return tokens.mint_user_token(store, issuer=ISSUER, org_id=uuid.uuid4(), subject="s", grants=[grant])


def _verify(store, token):
    return tokens.verify(store, token, audience=tokens.USER_AUDIENCE, issuer=ISSUER)


def test_ring_is_created_on_first_signing_with_owner_only_permissions(make_store):
    store = make_store()
    assert not store.path.exists()
    store.signing_key()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_verifier_never_creates_a_ring(make_store):
    store = make_store()
    assert store.verification_key("k-anything") is None
    assert not store.path.exists()


def test_ring_readable_by_others_is_refused_naming_the_fix(make_store):
    store = make_store()
    store.signing_key()
    os.chmod(store.path, 0o644)
    fresh = make_store()  # a new process: nothing cached
    with pytest.raises(errors.KeyStoreError) as caught:
        fresh.signing_key()
    assert "chmod 600" in caught.value.details["fix"]


def test_corrupt_ring_is_refused_naming_the_field(make_store):
    store = make_store()
    store.path.parent.mkdir(parents=True)
    fd = os.open(store.path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'{"format": "trace.keyring/1", "current": "k1", "keys": []}')
    os.close(fd)
    with pytest.raises(errors.KeyStoreError, match="keys"):
        store.signing_key()


def test_token_signed_with_the_previous_key_verifies_during_the_overlap(make_store, blocks_grant):
    # GIVEN a token signed before a rotation
    store = make_store()
    before = _token(store, blocks_grant)
    old_kid = store.signing_key().kid
    # WHEN the ring rotates
    new_kid = store.rotate()
    # THEN new tokens use the new kid, and the old token still verifies
    assert new_kid != old_kid and store.signing_key().kid == new_kid
    assert _verify(store, before).key_id == old_kid
    assert _verify(store, _token(store, blocks_grant)).key_id == new_kid


def test_previous_key_stops_verifying_after_the_overlap(make_store, blocks_grant):
    store = make_store()
    before = _token(store, blocks_grant)
    store.rotate(overlap=dt.timedelta(0))
    with pytest.raises(errors.TokenInvalidError) as caught:
        _verify(store, before)
    assert caught.value.problem == "unknown_kid"


def test_rotation_drops_retired_keys_and_private_halves(make_store):
    store = make_store()
    first = store.signing_key().kid
    second = store.rotate(overlap=dt.timedelta(0))
    store.rotate()
    ring = keyring.Keyring.from_json(store.path.read_text(), source="test")
    assert first not in [k.kid for k in ring.keys]
    assert ring.entry(second) is not None and ring.entry(second).private_key is None


def test_verifier_picks_up_a_rotation_made_by_another_process(make_store, blocks_grant):
    # GIVEN a verifier that has the ring cached, and a minter (another process) that rotates
    verifier = make_store(min_reload_s=0.0)
    minter = make_store()
    _verify(verifier, _token(minter, blocks_grant))
    minter.rotate()
    # WHEN a token with the new kid arrives THEN the verifier reloads once and accepts it
    assert _verify(verifier, _token(minter, blocks_grant)).key_id == minter.signing_key().kid


def test_unknown_kids_do_not_reload_more_than_once_per_interval(make_store):
    loads = []
    store = make_store(min_reload_s=3600.0)
    store.signing_key()
    original = store._load

    def counting():
        loads.append(1)
        return original()

    store._load = counting  # type: ignore[method-assign]
    for n in range(20):
        assert store.verification_key(f"k-random-{n}") is None
    assert len(loads) <= 1
