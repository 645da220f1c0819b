"""The availability check: which committed versions a listing of the store does not hold in full."""

from __future__ import annotations

import datetime as dt
import uuid

from trace_core.datasets import availability, naming
from trace_core.datasets.objectstore import ObjectInfo

DATASET = uuid.uuid4()
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def version(start: int, end: int, size: int = 300) -> availability.StoredVersion:
    vid = naming.version_id(chain_id=1, dataset_key="n/blocks", range_start=start, range_end=end, config_hash="ab" * 8)
    prefix = naming.version_prefix(chain_id=1, dataset_uuid=DATASET, range_start=start, range_end=end, version=vid)
    return availability.StoredVersion(vid, DATASET, "n/blocks", start, end, prefix, naming.manifest_key(prefix), size)


def objects(v: availability.StoredVersion, *sizes: int, manifest: bool = True) -> list[ObjectInfo]:
    found = [ObjectInfo(f"{v.storage_prefix}part-{i}.parquet", s, NOW) for i, s in enumerate(sizes)]
    return found + ([ObjectInfo(v.manifest_key, 999, NOW)] if manifest else [])


def test_complete_versions_are_readable():
    a, b = version(0, 10), version(10, 20)
    assert availability.check([a, b], objects(a, 100, 200) + objects(b, 300)) == []


def test_a_missing_manifest_or_missing_bytes_make_a_version_unreadable():
    a, b, c = version(0, 10), version(10, 20), version(20, 30)
    listing = objects(a, 100, 200, manifest=False) + objects(b, 100) + objects(c, 300)
    found = {u.dataset_version: u.reason for u in availability.check([a, b, c], listing)}
    assert set(found) == {a.dataset_version, b.dataset_version}
    assert "manifest.json is missing" in found[a.dataset_version]
    assert found[b.dataset_version].startswith("100 of its 300 bytes")


def test_objects_of_a_neighbouring_version_never_count_for_another():
    a, b = version(0, 10), version(10, 20)
    # b's files are all there; a has only its manifest
    assert [u.dataset_version for u in availability.check([a, b], objects(a, manifest=True) + objects(b, 300))] \
        == [a.dataset_version]


def test_one_listing_covers_every_version_of_a_dataset():
    a, b = version(0, 10), version(10, 20)
    prefix = availability.listing_prefix([a.storage_prefix, b.storage_prefix])
    assert prefix == f"cryo/1/{DATASET}/"
    assert availability.listing_prefix([a.storage_prefix]) == a.storage_prefix
