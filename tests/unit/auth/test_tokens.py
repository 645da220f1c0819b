"""Capability tokens: what verifies, and every way a token must fail (each names its problem)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from trace_core.auth import errors, models, tokens

ISSUER = "trace-test"
ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _user(store, grants, **kw):
    return tokens.mint_user_token(store, issuer=ISSUER, org_id=ORG, subject="ada@example.com", grants=grants, **kw)


def _verify(store, token, audience=tokens.USER_AUDIENCE, issuer=ISSUER):
    return tokens.verify(store, token, audience=audience, issuer=issuer)


def _problem(store, token, **kw) -> str:
    with pytest.raises(errors.TokenInvalidError) as caught:
        _verify(store, token, **kw)
    return caught.value.problem


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_user_token_round_trips_its_grants(make_store, blocks_grant):
    # GIVEN a user token granting blocks pinned to two versions
    store = make_store()
    token = _user(store, [blocks_grant])
    # WHEN it is verified for the user audience
    claims = _verify(store, token)
    # THEN the claims carry the org, the subject and exactly the pinned versions
    assert claims.kind == "user" and claims.org_id == ORG and claims.principal == "user:ada@example.com"
    assert claims.grant_for("blocks") == blocks_grant
    assert claims.granted_versions == sorted(v.dataset_version for v in blocks_grant.versions)
    assert claims.key_id == store.signing_key().kid


def test_task_token_carries_task_and_attempt(make_store, blocks_grant):
    store = make_store()
    task_id = uuid.uuid4()
    token = tokens.mint_task_token(store, issuer=ISSUER, task_id=task_id, attempt=3, grants=[blocks_grant])
    claims = _verify(store, token, audience=tokens.TASK_AUDIENCE)
    assert (claims.kind, claims.task_id, claims.attempt) == ("task", task_id, 3)
    assert claims.principal == f"task:{task_id}#3"


def test_tampered_payload_fails_signature(make_store, blocks_grant):
    # GIVEN a valid token whose payload is edited to grant one more version
    store = make_store()
    header, payload, signature = _user(store, [blocks_grant]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["grants"][0]["versions"].append({"dataset_version": "f" * 32, "storage_ref": "cryo/x/",
                                            "range_start": 500, "range_end": 600})
    forged = f"{header}.{_b64(claims)}.{signature}"
    # THEN it is refused: the signature no longer verifies
    assert _problem(store, forged) == "signature"


def test_expired_token_is_refused(make_store, blocks_grant):
    store = make_store()
    token = _user(store, [blocks_grant], ttl=dt.timedelta(minutes=1),
                  now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    assert _problem(store, token) == "expired"


def test_token_from_the_future_is_refused(make_store, blocks_grant):
    store = make_store()
    token = _user(store, [blocks_grant], now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10))
    assert _problem(store, token) == "not_yet_valid"


def test_user_token_is_refused_by_the_task_audience_and_back(make_store, blocks_grant):
    store = make_store()
    user = _user(store, [blocks_grant])
    task = tokens.mint_task_token(store, issuer=ISSUER, task_id=uuid.uuid4(), attempt=1, grants=[blocks_grant])
    assert _problem(store, user, audience=tokens.TASK_AUDIENCE) == "audience"
    assert _problem(store, task, audience=tokens.USER_AUDIENCE) == "audience"


def test_other_issuer_is_refused(make_store, blocks_grant):
    store = make_store()
    assert _problem(store, _user(store, [blocks_grant]), issuer="someone-else") == "issuer"


def test_alg_none_is_refused(make_store, blocks_grant):
    # GIVEN a token re-encoded with alg "none" and no signature, keeping a real kid
    store = make_store()
    valid = _user(store, [blocks_grant])
    _, payload, _ = valid.split(".")
    for alg in ("none", "None", "NONE"):
        forged = f"{_b64({'alg': alg, 'typ': 'JWT', 'kid': store.signing_key().kid})}.{payload}."
        # THEN it is refused for its algorithm, before any key is used
        assert _problem(store, forged) == "algorithm"


def test_hs256_signed_with_the_public_key_is_refused(make_store, blocks_grant):
    # GIVEN the classic key-confusion forgery: HMAC keyed with our public key's PEM
    store = make_store()
    public_pem = store.signing_key().key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    valid = _verify(store, _user(store, [blocks_grant]))
    payload = {"iss": ISSUER, "aud": tokens.USER_AUDIENCE, "sub": "mallory", "iat": 0, "nbf": 0,
               "exp": int(valid.expires_at.timestamp()), "jti": "x", "kind": "user", "org": str(ORG), "grants": []}
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": valid.key_id})
    import hashlib
    import hmac

    signing_input = f"{header}.{_b64(payload)}"
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    assert _problem(store, f"{signing_input}.{signature}") == "algorithm"


def test_token_signed_by_another_key_with_our_kid_fails_signature(make_store, blocks_grant):
    # GIVEN an attacker's own Ed25519 key used with the kid of our current key
    store = make_store()
    kid = store.signing_key().kid
    payload = jwt.decode(_user(store, [blocks_grant]), options={"verify_signature": False})
    forged = jwt.encode(payload, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    assert _problem(store, forged) == "signature"


def test_token_of_another_ring_is_an_unknown_kid(make_store, blocks_grant):
    ours, theirs = make_store("ours"), make_store("theirs")
    ours.signing_key()
    assert _problem(ours, _user(theirs, [blocks_grant])) == "unknown_kid"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "e30.e30.", "x" * 50])
def test_garbage_is_refused_as_missing_or_malformed(make_store, token):
    store = make_store()
    store.signing_key()
    assert _problem(store, token) in ("missing", "malformed")


def test_missing_required_claim_is_malformed(make_store):
    store = make_store()
    signing = store.signing_key()
    no_exp = jwt.encode({"iss": ISSUER, "aud": tokens.USER_AUDIENCE, "sub": "s", "iat": 0, "nbf": 0, "jti": "j",
                         "kind": "user", "org": None, "grants": []},
                        signing.key, algorithm="EdDSA", headers={"kid": signing.kid})
    assert _problem(store, no_exp) == "malformed"


def test_unknown_claim_or_bad_grant_shape_is_malformed(make_store):
    # A correctly signed token that does not match what Trace issues is still refused.
    store = make_store()
    signing = store.signing_key()
    now = int(dt.datetime.now(dt.UTC).timestamp())
    base = {"iss": ISSUER, "aud": tokens.USER_AUDIENCE, "sub": "s", "iat": now, "nbf": now, "exp": now + 60,
            "jti": "j", "kind": "user", "org": str(ORG), "grants": []}
    for payload in ({**base, "admin": True}, {**base, "grants": [{"relation": "Blocks; drop"}]}):
        token = jwt.encode(payload, signing.key, algorithm="EdDSA", headers={"kid": signing.kid})
        assert _problem(store, token) == "malformed"


def test_ttl_over_a_day_is_refused_at_mint(make_store, blocks_grant):
    with pytest.raises(errors.GrantError) as caught:
        _user(make_store(), [blocks_grant], ttl=dt.timedelta(days=2))
    assert caught.value.details["field"] == "ttl"


def test_duplicate_relations_cannot_be_granted(blocks_grant):
    with pytest.raises(ValueError, match="same relation"):
        models.Claims(token_id="t", kind="user", subject="s", issuer="i", audience="a", org_id=None,
                      grants=(blocks_grant, blocks_grant), issued_at=dt.datetime.now(dt.UTC),
                      expires_at=dt.datetime.now(dt.UTC), key_id="k")
