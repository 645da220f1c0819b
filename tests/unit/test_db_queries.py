"""The one named-query loader every package uses for its .sql files."""

from __future__ import annotations

import pytest
from trace_core.db import queries


def test_blocks_are_split_by_name_and_comments_kept():
    found = queries.parse("-- name: a\nSELECT 1;\n-- name: b\n-- why\nSELECT 2;\n")
    assert found == {"a": "SELECT 1;", "b": "-- why\nSELECT 2;"}


def test_every_pgqueue_query_is_loaded_by_name():
    loaded = queries.load("trace_core.queue", "pgqueue.sql")
    assert set(loaded) == {"publish", "signal", "receive", "ack", "extend", "dead_letter", "depth", "dead"}
    assert all("-- name:" not in text for text in loaded.values())


def test_a_query_defined_twice_is_refused_naming_the_file(tmp_path, monkeypatch):
    package = tmp_path / "dupq"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "q.sql").write_text("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"dupq/q.sql: query 'a' is defined twice"):
        queries.load("dupq", "q.sql")


@pytest.mark.parametrize("package", ["trace_core.dispatcher", "trace_core.chainsync", "trace_core.datasets",
                                     "trace_core.auth", "trace_core.query.service", "trace_core.sink"])
def test_every_package_sql_file_loads(package):
    assert queries.load(package)
