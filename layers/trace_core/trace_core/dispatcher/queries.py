"""The dispatcher's SQL: named blocks of ``queries.sql``, loaded once and bound by name."""

from __future__ import annotations

import functools
import importlib.resources
import re
from typing import LiteralString, cast

_BLOCK = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split ``-- name: x`` blocks into ``{"x": "SELECT ..."}``."""
    parts = _BLOCK.split(text)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        if name in found:
            raise ValueError(f"query {name!r} is defined twice")
        found[name] = body.strip()
    return found


@functools.cache
def _all() -> dict[str, str]:
    return parse((importlib.resources.files("trace_core.dispatcher") / "queries.sql").read_text())


def get(name: str) -> LiteralString:
    """The text of the named query (a KeyError names an unknown one)."""
    # Shipped with the package, never built from input: safe to treat as a literal.
    return cast(LiteralString, _all()[name])
