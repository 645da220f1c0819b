"""Mint and verify capability tokens (JWT, EdDSA over Ed25519).

Verification pins the algorithm before looking at anything else, finds the key
by the header's ``kid`` (never by the header's ``alg`` or an embedded key),
and requires signature, ``exp``, ``nbf``, ``iat``, audience and issuer, with a
small leeway for clock skew. Anything else in the token is validated into
:class:`~trace_core.auth.models.Claims`; a token that does not match what we
issue is refused as ``malformed``.

Audiences: ``trace-query`` for users (``POST /v1/query``), ``trace-task-query``
for tasks (``POST /v1/task-query``); a token for one is refused by the other.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import jwt
from pydantic import ValidationError

from trace_core.auth import errors, keys, models

ALGORITHM = "EdDSA"
USER_AUDIENCE = "trace-query"
TASK_AUDIENCE = "trace-task-query"
LEEWAY = dt.timedelta(seconds=5)
MAX_TTL = dt.timedelta(hours=24)
DEFAULT_USER_TTL = dt.timedelta(hours=1)
DEFAULT_TASK_TTL = dt.timedelta(minutes=15)
_REQUIRED = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]
# Bounds the work done on hostile input before the signature is checked.
MAX_TOKEN_BYTES = 1024 * 1024


def _check_ttl(ttl: dt.timedelta) -> None:
    if not dt.timedelta(0) < ttl <= MAX_TTL:
        raise errors.GrantError(f"ttl must be in (0, {MAX_TTL}], got {ttl}", field="ttl", expected=f"<= {MAX_TTL}")


def _mint(
    store: keys.KeyStore,
    *,
    issuer: str,
    audience: str,
    subject: str,
    kind: str,
    org_id: uuid.UUID | None,
    grants: Sequence[models.Grant],
    ttl: dt.timedelta,
    now: dt.datetime | None,
    extra: dict[str, Any],
) -> str:
    _check_ttl(ttl)
    now = now or dt.datetime.now(dt.UTC)
    signing = store.signing_key()
    payload = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
        "kind": kind,
        "org": str(org_id) if org_id else None,
        "grants": [g.model_dump(mode="json") for g in grants],
        **extra,
    }
    # Validate what we sign with the same model the verifier uses: we never issue a token it would refuse.
    _claims(payload, kid=signing.kid)
    return jwt.encode(payload, signing.key, algorithm=ALGORITHM, headers={"kid": signing.kid})


def mint_user_token(
    store: keys.KeyStore,
    *,
    issuer: str,
    org_id: uuid.UUID,
    subject: str,
    grants: Sequence[models.Grant],
    ttl: dt.timedelta = DEFAULT_USER_TTL,
    now: dt.datetime | None = None,
) -> str:
    """A Bearer token for ``POST /v1/query``: the user ``subject`` of ``org_id`` may read ``grants``."""
    return _mint(store, issuer=issuer, audience=USER_AUDIENCE, subject=subject, kind=models.USER, org_id=org_id,
                 grants=grants, ttl=ttl, now=now, extra={})


def mint_task_token(
    store: keys.KeyStore,
    *,
    issuer: str,
    task_id: uuid.UUID,
    attempt: int,
    grants: Sequence[models.Grant],
    org_id: uuid.UUID | None = None,
    ttl: dt.timedelta = DEFAULT_TASK_TTL,
    now: dt.datetime | None = None,
) -> str:
    """A token for ``POST /v1/task-query``, valid only while ``attempt`` is the task's live attempt."""
    return _mint(store, issuer=issuer, audience=TASK_AUDIENCE, subject=f"task:{task_id}", kind=models.TASK,
                 org_id=org_id, grants=grants, ttl=ttl, now=now,
                 extra={"task": {"id": str(task_id), "attempt": attempt}})


def _claims(payload: dict[str, Any], *, kid: str) -> models.Claims:
    task = payload.get("task") or {}
    known = {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "kind", "org", "grants", "task"}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise errors.TokenInvalidError(f"token carries unknown claim {unknown[0]!r}", problem="malformed")
    try:
        return models.Claims(
            token_id=payload["jti"],
            kind=payload["kind"],
            subject=payload["sub"],
            issuer=payload["iss"],
            audience=payload["aud"],
            org_id=payload.get("org"),
            grants=payload.get("grants", []),
            issued_at=dt.datetime.fromtimestamp(payload["iat"], dt.UTC),
            expires_at=dt.datetime.fromtimestamp(payload["exp"], dt.UTC),
            key_id=kid,
            task_id=task.get("id") if isinstance(task, dict) else None,
            attempt=task.get("attempt") if isinstance(task, dict) else None,
        )
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise errors.TokenInvalidError(f"token claims are not what Trace issues: {exc}", problem="malformed") from exc


def unverified_header(token: str) -> dict[str, Any]:
    """The token's header without any check, for the audit log only (never trust it)."""
    try:
        return dict(jwt.get_unverified_header(token))
    except jwt.PyJWTError:
        return {}


def verify(store: keys.KeyStore, token: str, *, audience: str, issuer: str) -> models.Claims:
    """The claims of ``token`` if it was signed by a current key for ``audience`` and ``issuer``.

    Raises TokenInvalidError with ``problem`` naming the first check that failed.
    """
    if not token or len(token) > MAX_TOKEN_BYTES:
        raise errors.TokenInvalidError("a Bearer token is required", problem="missing" if not token else "malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise errors.TokenInvalidError(f"not a JWT: {exc}", problem="malformed") from exc
    alg = header.get("alg")
    if alg is None:
        raise errors.TokenInvalidError("token header names no algorithm", problem="malformed")
    if alg != ALGORITHM:
        raise errors.TokenInvalidError(f"token algorithm {alg!r} is not accepted (only {ALGORITHM})",
                                       problem="algorithm")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise errors.TokenInvalidError("token header has no key id (kid)", problem="malformed")
    key = store.verification_key(kid)
    if key is None:
        raise errors.TokenInvalidError(f"unknown or retired signing key {kid[:64]!r}", problem="unknown_kid")
    try:
        payload = jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=audience, issuer=issuer,
            leeway=LEEWAY, options={"require": _REQUIRED, "verify_signature": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise errors.TokenInvalidError("token has expired", problem="expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise errors.TokenInvalidError("token is not valid yet", problem="not_yet_valid") from exc
    except jwt.InvalidAudienceError as exc:
        raise errors.TokenInvalidError(f"token is not for {audience}", problem="audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise errors.TokenInvalidError(f"token was not issued by {issuer}", problem="issuer") from exc
    except jwt.InvalidSignatureError as exc:
        raise errors.TokenInvalidError("token signature does not verify", problem="signature") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise errors.TokenInvalidError(str(exc), problem="algorithm") from exc
    except jwt.PyJWTError as exc:
        raise errors.TokenInvalidError(f"token is invalid: {exc}", problem="malformed") from exc
    _check_lifetime(payload)
    return _claims(payload, kid=kid)


def _check_lifetime(payload: dict[str, Any]) -> None:
    # The documented maximum lifetime holds for every token, not only the ones this code minted: a key
    # that signed a longer one (an old issuer, a leaked tool) must not buy a token that outlives the limit.
    iat, nbf, exp = payload["iat"], payload["nbf"], payload["exp"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (iat, nbf, exp)):
        raise errors.TokenInvalidError("token times (iat, nbf, exp) must be numbers", problem="malformed")
    lifetime = exp - min(iat, nbf)
    if lifetime > MAX_TTL.total_seconds():
        raise errors.TokenInvalidError(
            f"token is valid for {lifetime:.0f} s; the maximum lifetime is {MAX_TTL.total_seconds():.0f} s",
            problem="lifetime",
        )
