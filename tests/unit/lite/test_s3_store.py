"""Where the durable moto server keeps each S3 object: a pure, collision-free function of bucket and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from trace_core.lite import s3_store

ROOT = Path("/data/s3")


def test_keys_map_to_readable_paths_under_their_bucket():
    path = s3_store.object_path(ROOT, "datasets", "cryo/10143/ab-cd/0_20/v1/manifest.json")
    assert path == ROOT / "datasets/cryo/10143/ab-cd/0_20/v1/manifest.json@obj"


@pytest.mark.parametrize("key", ["../../etc/passwd", "a/./b", "/leading", "a//b", "trailing/", "..", "%2E", "a@obj/b"])
def test_no_key_escapes_its_bucket(key: str):
    path = s3_store.object_path(ROOT, "datasets", key)
    assert ROOT / "datasets" in path.parents
    assert ".." not in path.parts and "." not in path.parts


def test_distinct_keys_never_share_a_file_or_turn_a_file_into_a_folder():
    keys = ["a", "a/b", "a@obj", "a/b/c", "", "/", "//", ".", "%2E", "a b", "a%20b", "a/", "é"]
    paths = [s3_store.object_path(ROOT, "bucket", k) for k in keys]
    assert len(set(paths)) == len(keys)
    files, folders = set(paths), {p for path in paths for p in path.parents}
    assert not files & folders
