"""The dispatcher's SQL: named blocks of ``queries.sql``, bound by name."""

from __future__ import annotations

from typing import LiteralString

from trace_core.db import queries


def get(name: str) -> LiteralString:
    """The text of the named query (a KeyError names an unknown one)."""
    return queries.load("trace_core.dispatcher")[name]
