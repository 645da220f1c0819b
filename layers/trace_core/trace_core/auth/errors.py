"""Errors of capability tokens, key stores and grants."""

from __future__ import annotations

from typing import Literal

from trace_core import errors

# Why a token was refused; the HTTP layer answers 401 for every one of them.
TokenProblem = Literal[
    "missing",        # no Bearer token at all
    "malformed",      # not a JWT, or its header/claims are not what we issue
    "algorithm",      # any algorithm but the pinned one (alg: none, HS256 with our public key, ...)
    "unknown_kid",    # no verification key with that key id (never issued, or retired)
    "signature",      # the signature does not verify (tampered, or signed by another key)
    "expired",
    "not_yet_valid",
    "audience",
    "issuer",
    "stale_task",     # a task token whose attempt is no longer the live one
    "lifetime",       # signed, but valid for longer than tokens.MAX_TTL (we never issue such a token)
]


class AuthError(errors.TraceError):
    """Root of authentication and authorisation errors."""


class TokenInvalidError(AuthError):
    """The token cannot be trusted. ``problem`` is one of :data:`TokenProblem`."""

    def __init__(self, message: str, *, problem: TokenProblem, **details: object) -> None:
        super().__init__(message, problem=problem, **details)
        self.problem: TokenProblem = problem


class KeyStoreError(AuthError):
    """The signing keys cannot be loaded or saved. ``fix`` says what to do."""


class GrantError(AuthError):
    """A grant request is malformed or names something that cannot be granted (``field``, ``expected``)."""
