"""Trusted attach's validation of what the caller hands the engine (pure, no DuckDB)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from trace_core.query import attach, errors


@pytest.fixture
def parquet_file(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "blocks" / "0.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1")
    return path


def test_valid_sources_are_folded_and_resolved(parquet_file: Path, tmp_path: Path) -> None:
    # GIVEN a relative-looking path through a symlinked directory and an Arrow table
    link = tmp_path / "link"
    link.symlink_to(parquet_file.parent)
    checked = attach.validate({
        "Blocks": attach.RelationSource.parquet([link / "0.parquet"]),
        "hot": attach.RelationSource.arrow(pa.table({"a": [1]})),
    }, data_roots=[tmp_path / "data"])
    # THEN names are folded and files resolved to the real path beneath the data root
    assert list(checked) == ["blocks", "hot"]
    assert checked["blocks"].files == (parquet_file.resolve(),)


@pytest.mark.parametrize(
    ("relations", "fragment"),
    [
        ({"x.parquet": attach.RelationSource.arrow(pa.table({"a": [1]}))}, "plain identifier"),
        ({"sqlite_master": attach.RelationSource.arrow(pa.table({"a": [1]}))}, "system catalog"),
        ({"a": attach.RelationSource()}, "exactly one"),
        ({"a": attach.RelationSource(files=(Path("/x"),), table=pa.table({"a": [1]}))}, "exactly one"),
        ({"a": attach.RelationSource.parquet(["/nonexistent/x.parquet"])}, "not a readable regular file"),
        ({"a": attach.RelationSource.parquet(["/data/*.parquet"])}, "glob"),
        ({"a": "files"}, "RelationSource"),
    ],
    ids=["name", "reserved", "empty", "both", "missing", "glob", "type"],
)
def test_bad_sources_name_the_relation_and_what_was_expected(relations: dict, fragment: str) -> None:
    with pytest.raises(errors.InvalidRelationError) as info:
        attach.validate(relations)
    assert fragment in str(info.value)
    assert info.value.details["expected"]


def test_duplicate_names_differing_in_case_are_refused(parquet_file: Path) -> None:
    source = attach.RelationSource.parquet([parquet_file])
    with pytest.raises(errors.InvalidRelationError, match="twice"):
        attach.validate({"blocks": source, "BLOCKS": source})


def test_files_outside_the_data_roots_are_refused(parquet_file: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.parquet"
    outside.write_bytes(b"PAR1")
    with pytest.raises(errors.InvalidRelationError, match="outside the engine's data roots"):
        attach.validate({"blocks": attach.RelationSource.parquet([outside])}, data_roots=[parquet_file.parent])


def test_redactions_name_relations_instead_of_paths(parquet_file: Path) -> None:
    mapping = attach.redactions({"blocks": attach.RelationSource.parquet([parquet_file])})
    assert mapping == {str(parquet_file): "<blocks[0]>"}
