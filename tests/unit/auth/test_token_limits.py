"""What a signed token may not claim: a lifetime over the documented maximum, or a reserved relation name."""

from __future__ import annotations

import datetime as dt
import uuid

import jwt
import pytest
from trace_core.auth import errors, grants, models, tokens

from tests.unit.auth.conftest import version_row

ISSUER = "trace-test"
ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _signed(store, *, iat: int, nbf: int, exp: int, grant_rows: list[dict] | None = None) -> str:
    # Signed with a current key but not minted by tokens._mint, as an old issuer or a stray tool might.
    signing = store.signing_key()
    payload = {"iss": ISSUER, "aud": tokens.USER_AUDIENCE, "sub": "s", "iat": iat, "nbf": nbf, "exp": exp,
               "jti": uuid.uuid4().hex, "kind": "user", "org": str(ORG), "grants": grant_rows or []}
    return jwt.encode(payload, signing.key, algorithm="EdDSA", headers={"kid": signing.kid})


def _now() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())


@pytest.mark.parametrize(
    ("start_offset", "lifetime"),
    [(0, tokens.MAX_TTL + dt.timedelta(seconds=1)), (0, dt.timedelta(days=3650)),
     (-3600, tokens.MAX_TTL)],  # valid from an hour ago for a full day: 25 h in all
    ids=["one-second-over", "ten-years", "nbf-before-iat"],
)
def test_a_token_valid_for_longer_than_the_maximum_is_refused(make_store, start_offset, lifetime):
    # GIVEN a correctly signed token whose validity window is longer than MAX_TTL
    store = make_store()
    now = _now()
    token = _signed(store, iat=now, nbf=now + start_offset, exp=now + int(lifetime.total_seconds()))
    # WHEN verified THEN it is refused as 'lifetime', naming the maximum
    with pytest.raises(errors.TokenInvalidError) as caught:
        tokens.verify(store, token, audience=tokens.USER_AUDIENCE, issuer=ISSUER)
    assert caught.value.problem == "lifetime"
    assert str(int(tokens.MAX_TTL.total_seconds())) in str(caught.value)


def test_a_token_of_exactly_the_maximum_lifetime_verifies(make_store):
    store = make_store()
    now = _now()
    token = _signed(store, iat=now, nbf=now, exp=now + int(tokens.MAX_TTL.total_seconds()))
    claims = tokens.verify(store, token, audience=tokens.USER_AUDIENCE, issuer=ISSUER)
    assert claims.expires_at - claims.issued_at == tokens.MAX_TTL


@pytest.mark.parametrize("name", ["sqlite_master", "duckdb_tables", "pg_class", "pragma_x", "information_schema"])
def test_a_reserved_relation_name_cannot_be_granted_or_carried(make_store, name):
    # GIVEN a relation name DuckDB reserves for its catalogs
    # WHEN a grant is built with it THEN a GrantError names the reserved prefix (a 4xx, not a 500 later)
    with pytest.raises(errors.GrantError, match="reserved"):
        grants.build([version_row("monad_local/blocks", 0, 100)], relations={"monad_local/blocks": name})
    with pytest.raises(errors.GrantError, match="reserved"):
        grants.parse_requests({"grants": [{"dataset": "monad_local/blocks", "relation": name}]})
    # AND a signed token carrying it is refused as malformed, before any query runs
    row = version_row("monad_local/blocks", 0, 100)
    grant = {"relation": name, "dataset_uuid": str(row["dataset_uuid"]), "dataset_key": row["dataset_key"],
             "versions": [{"dataset_version": row["dataset_version"], "storage_ref": row["storage_prefix"],
                           "range_start": 0, "range_end": 100}]}
    now = _now()
    store = make_store()
    with pytest.raises(errors.TokenInvalidError) as caught:
        tokens.verify(store, _signed(store, iat=now, nbf=now, exp=now + 60, grant_rows=[grant]),
                      audience=tokens.USER_AUDIENCE, issuer=ISSUER)
    assert caught.value.problem == "malformed" and "reserved" in str(caught.value)
    assert models.RESERVED_RELATION_PREFIXES
