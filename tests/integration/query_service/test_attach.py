"""Trusted attach on real Postgres and S3: grants -> registry -> manifest -> verified local cache.

A granted version is fetched once, checked (manifest digest against the
registry, every file's size and sha256 against the manifest), and kept by
version; tampering anywhere fails closed and leaves nothing that looks verified.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from trace_core.auth import grants as auth_grants
from trace_core.db import pool as db_pool
from trace_core.query.service import cache, errors, grants


class CountingBlobs(cache.S3Blobs):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def get(self, key: str) -> bytes:
        self.calls += 1
        return super().get(key)

    def download(self, key: str, dest: Path) -> None:
        self.calls += 1
        super().download(key, dest)


def _grant(versions, relation=None):
    rows = [{"dataset_key": v.dataset_key, "dataset_uuid": v.dataset_uuid, "dataset_version": v.dataset_version,
             "storage_prefix": v.storage_prefix, "range_start": v.range_start, "range_end": v.range_end}
            for v in versions]
    [grant] = auth_grants.build(rows, relations={versions[0].dataset_key: relation} if relation else None)
    return grant


@pytest.fixture
def make_resolver(database_url, s3, buckets, tmp_path):
    def make(root: Path | None = None, blobs: cache.BlobSource | None = None) -> grants.Resolver:
        blobs = blobs or CountingBlobs(s3, buckets["datasets"])
        return grants.Resolver(grants.PostgresVersions(db_pool.get(database_url)),
                               cache.VerifiedCache(root or tmp_path / "cache", blobs))

    return make


def test_a_dataset_spanning_ranges_is_one_relation_of_verified_files(publish, make_resolver, s3, buckets):
    # GIVEN blocks committed as two versions, four files
    first, second = publish("blocks", 0, 100), publish("blocks", 100, 200)
    # WHEN the grant is resolved
    relation = make_resolver().resolve([_grant([second, first])])["blocks"]
    # THEN it is one relation over both versions' files, in range order, byte-identical to S3
    assert relation.versions == tuple(sorted([first.dataset_version, second.dataset_version]))
    assert len(relation.files) == 4
    numbers = [pq.read_table(f)["block_number"].to_pylist() for f in relation.files]
    assert [n for chunk in numbers for n in chunk] == list(range(200))
    for path in relation.files:
        version = first if first.dataset_version in str(path) else second
        remote = s3.get_object(Bucket=buckets["datasets"], Key=version.storage_prefix + path.name)["Body"].read()
        assert hashlib.sha256(remote).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_warm_resolution_does_no_io_and_a_new_process_reuses_the_cache(publish, make_resolver, s3, buckets,
                                                                        tmp_path):
    version = publish("blocks", 200, 300)
    blobs = CountingBlobs(s3, buckets["datasets"])
    resolver = make_resolver(tmp_path / "shared", blobs)
    resolver.resolve([_grant([version])])
    fetched = blobs.calls
    assert fetched == 3  # the manifest and two files
    # WHEN resolved again THEN nothing is fetched
    resolver.resolve([_grant([version])])
    assert blobs.calls == fetched
    # AND another resolver (a restarted service) over the same cache fetches nothing either
    again = CountingBlobs(s3, buckets["datasets"])
    make_resolver(tmp_path / "shared", again).resolve([_grant([version])])
    assert again.calls == 0


def test_a_tampered_file_fails_closed(publish, make_resolver, s3, buckets, tmp_path):
    # GIVEN a committed version whose second file is replaced in S3 after commit
    version = publish("blocks", 300, 400)
    key = f"{version.storage_prefix}{'monad_local__blocks__00000350_to_00000399.parquet'}"
    s3.put_object(Bucket=buckets["datasets"], Key=key, Body=b"PAR1 not what was committed PAR1")
    # WHEN resolved THEN the integrity error names the object and nothing is left marked verified
    with pytest.raises(errors.DatasetIntegrityError) as caught:
        make_resolver(tmp_path / "c1").resolve([_grant([version])])
    assert caught.value.details["key"] == key and caught.value.details["reason"] == "size"
    folder = tmp_path / "c1" / version.dataset_version
    assert not (folder / cache.MARKER).exists()
    assert not [p for p in folder.rglob("*") if p.name.endswith(".partial")]


def test_same_size_tampering_is_caught_by_sha256(publish, make_resolver, s3, buckets, tmp_path):
    version = publish("blocks", 400, 450)
    key = version.storage_prefix + "monad_local__blocks__00000400_to_00000449.parquet"
    original = s3.get_object(Bucket=buckets["datasets"], Key=key)["Body"].read()
    flipped = original[:-10] + bytes([original[-10] ^ 0xFF]) + original[-9:]
    s3.put_object(Bucket=buckets["datasets"], Key=key, Body=flipped)
    with pytest.raises(errors.DatasetIntegrityError) as caught:
        make_resolver(tmp_path / "c2").resolve([_grant([version])])
    assert caught.value.details["reason"] == "sha256"


def test_a_tampered_manifest_fails_closed(publish, make_resolver, s3, buckets, tmp_path):
    version = publish("blocks", 450, 500)
    manifest = s3.get_object(Bucket=buckets["datasets"], Key=version.manifest_key)["Body"].read()
    s3.put_object(Bucket=buckets["datasets"], Key=version.manifest_key, Body=manifest.replace(b'"cryo_version"',
                                                                                             b' "cryo_version"'))
    with pytest.raises(errors.DatasetIntegrityError) as caught:
        make_resolver(tmp_path / "c3").resolve([_grant([version])])
    assert caught.value.details["reason"] == "manifest_sha256"


def test_a_version_the_registry_does_not_know_as_committed_is_refused(publish, make_resolver, tmp_path):
    version = publish("blocks", 500, 550)
    forged = version.model_copy(update={"dataset_version": uuid.uuid4().hex})
    with pytest.raises(errors.DatasetIntegrityError) as caught:
        make_resolver(tmp_path / "c4").resolve([_grant([forged])])
    assert caught.value.details["reason"] == "not_committed"


def test_a_storage_ref_that_disagrees_with_the_registry_is_refused(publish, make_resolver, tmp_path):
    # A grant pointing a real version at another prefix (e.g. another dataset's files) is refused.
    version, other = publish("blocks", 550, 600), publish("logs", 550, 600)
    moved = version.model_copy(update={"storage_prefix": other.storage_prefix})
    with pytest.raises(errors.DatasetIntegrityError) as caught:
        make_resolver(tmp_path / "c5").resolve([_grant([moved])])
    assert caught.value.details["reason"] == "registry_mismatch"
