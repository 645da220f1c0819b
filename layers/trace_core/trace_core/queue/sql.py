"""Named SQL blocks from a package's ``.sql`` file (``-- name: <name>`` headers)."""

from __future__ import annotations

import functools
import importlib.resources
import re
from typing import LiteralString, cast

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@functools.cache
def load(package: str, file_name: str) -> dict[str, LiteralString]:
    """Every named block of ``package/file_name``, keyed by name (text as written, comments kept)."""
    text = (importlib.resources.files(package) / file_name).read_text()
    parts = _HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{file_name}: query {name!r} is defined twice")
        # The file ships with the package: its text is as literal as a string constant.
        queries[name] = cast(LiteralString, body.strip())
    return queries
