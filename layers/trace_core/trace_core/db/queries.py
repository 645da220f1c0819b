"""Named SQL blocks from a package's ``.sql`` file (``-- name: <name>`` headers).

Every package keeps its Postgres SQL in a ``queries.sql`` of named blocks;
this is the one loader. The text ships with the package and is never built
from input, so it is typed as a literal.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from typing import LiteralString, cast

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, LiteralString]:
    """Split ``-- name: x`` blocks into ``{"x": "SELECT ..."}``; a name defined twice is an error."""
    parts = _HEADER.split(text)
    found: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise ValueError(f"query {name!r} is defined twice")
        found[name] = cast(LiteralString, body.strip())
    return found


@functools.cache
def load(package: str, file_name: str = "queries.sql") -> dict[str, LiteralString]:
    """Every named block of ``package/file_name``, keyed by name."""
    try:
        return parse((importlib.resources.files(package) / file_name).read_text())
    except ValueError as exc:
        raise ValueError(f"{package}/{file_name}: {exc}") from exc
