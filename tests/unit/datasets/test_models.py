"""Manifests and staged versions: deterministic bytes, exact coverage of the range, consistent totals."""

from __future__ import annotations

import uuid

import pydantic
import pytest
from trace_core.datasets import models, naming

TASK = uuid.UUID("11111111-2222-3333-4444-555555555555")
HASH_A = "0x" + "aa" * 32
HASH_B = "0x" + "bb" * 32


def staged_file(start: int, end: int, *, rows: int = 3, size: int = 100, schema: str = "c" * 64,
                attempt: int = 1) -> models.StagedFile:
    name = naming.cryo_file_name("network_10143", "blocks", start, end)
    return models.StagedFile(
        name=name, staging_key=naming.staging_key(TASK, attempt, "blocks", name), size=size,
        sha256=naming.sha256_hex(f"{start}-{end}".encode()), row_count=rows, schema_hash=schema,
        range_start=start, range_end=end,
    )


def staged(files: tuple[models.StagedFile, ...], *, start: int = 0, end: int = 20, attempt: int = 1,
           **extra: object) -> models.StagedVersion:
    return models.StagedVersion(
        task_id=TASK, attempt=attempt, chain_id=10143, dataset_key="monad_local/blocks", cryo_dataset="blocks",
        range_start=start, range_end=end, config_hash="0123456789abcdef", extract={"chunk_blocks": 10},
        cryo_version="0.3.2", first_parent_hash=HASH_A, last_block_hash=HASH_B, files=files, **extra,
    )


def test_manifest_bytes_are_deterministic_and_carry_no_provenance():
    # GIVEN the same outputs staged by two different attempts
    one = staged((staged_file(0, 10), staged_file(10, 20)))
    two = staged((staged_file(0, 10, attempt=2), staged_file(10, 20, attempt=2)), attempt=2)
    # WHEN their manifests are built THEN the bytes (and digests) are identical
    assert one.manifest().to_bytes() == two.manifest().to_bytes()
    assert one.manifest().sha256 == two.manifest().sha256
    assert b"attempt" not in one.manifest().to_bytes() and str(TASK).encode() not in one.manifest().to_bytes()


def test_manifest_totals_and_links_are_recorded():
    manifest = staged((staged_file(0, 10, rows=4, size=10), staged_file(10, 20, rows=6, size=20))).manifest()
    assert (manifest.row_count, manifest.bytes) == (10, 30)
    assert (manifest.first_parent_hash, manifest.last_block_hash) == (HASH_A, HASH_B)
    assert [f.path for f in manifest.files] == [
        "network_10143__blocks__00000000_to_00000009.parquet", "network_10143__blocks__00000010_to_00000019.parquet"]
    assert models.Manifest.from_bytes(manifest.to_bytes()) == manifest


@pytest.mark.parametrize("files,problem", [
    ((staged_file(0, 10),), "cover"),  # a gap at the end
    ((staged_file(0, 10), staged_file(11, 20)), "tile"),  # a hole
    ((staged_file(0, 12), staged_file(10, 20)), "tile"),  # an overlap
    ((staged_file(10, 20), staged_file(0, 10)), "tile"),  # out of order
])
def test_files_must_tile_the_range_exactly(files, problem):
    with pytest.raises(pydantic.ValidationError, match=problem):
        staged(files)


def test_files_of_one_version_share_a_schema():
    with pytest.raises(pydantic.ValidationError, match="schema"):
        staged((staged_file(0, 10), staged_file(10, 20, schema="d" * 64)))


def test_staged_files_must_sit_under_their_attempts_prefix():
    with pytest.raises(pydantic.ValidationError, match="staging prefix"):
        staged((staged_file(0, 10, attempt=2), staged_file(10, 20, attempt=2)), attempt=1)


def test_a_manifest_with_wrong_totals_or_version_is_refused():
    good = staged((staged_file(0, 10), staged_file(10, 20))).manifest().model_dump()
    with pytest.raises(pydantic.ValidationError, match="row_count"):
        models.Manifest.model_validate({**good, "row_count": good["row_count"] + 1})
    with pytest.raises(pydantic.ValidationError, match="dataset_version"):
        models.Manifest.model_validate({**good, "dataset_version": "0" * 32})
    with pytest.raises(pydantic.ValidationError, match="path"):
        models.Manifest.model_validate({**good, "files": [{**good["files"][0], "path": "../escape"}, good["files"][1]]})
