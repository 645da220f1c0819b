"""The named-query loader shared by pgqueue and the CLI."""

from __future__ import annotations

import pytest
from trace_core.queue import sql


def test_every_pgqueue_query_is_loaded_by_name():
    queries = sql.load("trace_core.queue", "pgqueue.sql")
    assert set(queries) == {"publish", "receive", "ack", "extend", "dead_letter", "depth", "dead"}
    assert queries["ack"].startswith("-- Only the current delivery's receipt deletes")
    assert all("-- name:" not in text for text in queries.values())


def test_a_query_defined_twice_is_refused(tmp_path, monkeypatch):
    package = tmp_path / "dupq"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "q.sql").write_text("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="'a' is defined twice"):
        sql.load("dupq", "q.sql")
