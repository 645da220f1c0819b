"""Secrets out of URLs before anyone sees them: RPC API keys, passwords, tokens.

Providers put API keys in three places, all handled here (docs/decisions/1305):
the userinfo (``https://user:KEY@host``), the query string (``?apikey=KEY``) and
the path (``https://monad-testnet.g.alchemy.com/v2/KEY``,
``https://rpc.ankr.com/monad_testnet/KEY``, ``https://mainnet.infura.io/v3/KEY``).
:func:`url` masks one URL; :func:`text` masks every URL inside a message. Both
are pure and err on the side of masking: a masked harmless segment costs
nothing, a leaked key costs a rotation.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MASK", "text", "url"]

MASK = "***"

# Query parameters whose values are credentials (matched anywhere in the name: api_key, x-token, dkey).
_SECRET_PARAM = re.compile(r"key|token|secret|passw|pwd|auth|sig|credential|session|jwt|bearer", re.IGNORECASE)
_TOKENISH = re.compile(r"^[A-Za-z0-9_\-.~]+$")
_VERSION_SEGMENT = re.compile(r"^v\d+$")
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`]+")
_TRAILING = ".,;:)]}!?"


def _looks_like_key(segment: str) -> bool:
    """An opaque credential rather than a word: long, and a mix of letters and digits (or very long)."""
    if not _TOKENISH.match(segment):
        return False
    has_digit = any(c.isdigit() for c in segment)
    has_alpha = any(c.isalpha() for c in segment)
    return (len(segment) >= 16 and has_digit and has_alpha) or len(segment) >= 32


def _path(path: str) -> str:
    segments = path.split("/")
    out = []
    for i, segment in enumerate(segments):
        after_version = i > 0 and _VERSION_SEGMENT.match(segments[i - 1]) is not None
        out.append(MASK if segment and (after_version or _looks_like_key(segment)) else segment)
    return "/".join(out)


def _query(query: str) -> str:
    pairs = []
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        if sep and value and (_SECRET_PARAM.search(name) or _looks_like_key(value)):
            value = MASK
        pairs.append(f"{name}{sep}{value}")
    return "&".join(pairs)


def _userinfo(userinfo: str) -> str:
    user, sep, password = userinfo.partition(":")
    if sep:
        return f"{user}:{MASK}" if password else f"{user}:"
    return MASK if _looks_like_key(user) else user  # a key given as the user name


def url(value: str) -> str:
    """``value`` with every credential replaced by ``***``; scheme, host, port and plain path kept.

    Text that is not a URL with a scheme and host comes back unchanged.
    """
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if not parts.scheme or not parts.netloc:
        return value
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{_userinfo(userinfo)}@{hostport}"
    out = f"{parts.scheme}://{netloc}{_path(parts.path)}"
    if parts.query:
        out += f"?{_query(parts.query)}"
    if parts.fragment:
        out += f"#{_query(parts.fragment)}"
    return out


def text(message: str) -> str:
    """``message`` with every URL in it passed through :func:`url` (error messages, log lines)."""

    def one(match: re.Match[str]) -> str:
        found = match.group(0)
        stripped = found.rstrip(_TRAILING)
        return url(stripped) + found[len(stripped):]

    return _URL_IN_TEXT.sub(one, message)
