"""The named-query file: every block parses, every name the core uses exists, parameters are bound."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from trace_core.db import queries as named
from trace_core.dispatcher import queries

PACKAGE = Path(queries.__file__).parent


def test_parse_splits_named_blocks_and_refuses_duplicates():
    assert named.parse("-- name: a\nSELECT 1;\n-- name: b\nSELECT 2;") == {"a": "SELECT 1;", "b": "SELECT 2;"}
    with pytest.raises(ValueError, match="twice"):
        named.parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")


def test_every_name_used_in_the_code_exists():
    used = set()
    for source in PACKAGE.glob("*.py"):
        used |= set(re.findall(r'queries\.get\("([a-z_]+)"\)', source.read_text()))
    assert used and used <= set(named.parse((PACKAGE / "queries.sql").read_text()))


def test_no_query_formats_values_into_sql():
    text = (PACKAGE / "queries.sql").read_text()
    assert "{" not in text.replace("'{}'", "")  # no str.format placeholders; only %(name)s binds
