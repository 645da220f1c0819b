"""One contract for every ObjectStore: the in-memory fake and S3 (moto server over HTTP) alike."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from trace_core.datasets import errors, objectstore


@pytest.fixture(params=["memory", "s3"])
def store(request: pytest.FixtureRequest) -> objectstore.ObjectStore:
    if request.param == "memory":
        return objectstore.MemoryObjectStore()
    return request.getfixturevalue("make_s3_store")()


def test_put_get_head_round_trip(store, tmp_path: Path):
    # GIVEN a file and some bytes WHEN stored THEN they read back byte for byte with their sizes
    path = tmp_path / "f.bin"
    path.write_bytes(b"\x00\x01" * 5000)
    info = store.put_file("a/f.bin", path)
    assert info.size == 10_000
    store.put_bytes("a/m.json", b'{"x":1}', content_type="application/json")
    assert store.get("a/f.bin") == path.read_bytes()
    assert store.get("a/m.json") == b'{"x":1}'
    head = store.head("a/m.json")
    assert head is not None and head.size == 7 and head.last_modified.tzinfo is not None


def test_put_file_with_its_sha256(store, tmp_path: Path):
    # GIVEN a file and its digest (what staging passes) WHEN uploaded THEN stored as is
    path = tmp_path / "f.parquet"
    path.write_bytes(b"PAR1" * 2500)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert store.put_file("s/f.parquet", path, sha256=digest).size == 10_000
    assert store.get("s/f.parquet") == path.read_bytes()
    # AND a copy told the source's size is the same full copy
    store.copy("s/f.parquet", "v/f.parquet", size=10_000)
    assert store.get("v/f.parquet") == path.read_bytes()


def test_missing_objects(store):
    assert store.head("nope") is None
    with pytest.raises(errors.ObjectNotFoundError) as caught:
        store.get("nope")
    assert caught.value.details["key"] == "nope"
    with pytest.raises(errors.ObjectNotFoundError):
        store.copy("nope", "elsewhere")
    with pytest.raises(errors.ObjectNotFoundError):
        store.copy("nope", "elsewhere", size=10)


def test_list_is_by_prefix_in_key_order(store):
    for key in ("p/b", "p/a", "p/sub/c", "q/d"):
        store.put_bytes(key, key.encode())
    assert [i.key for i in store.list("p/")] == ["p/a", "p/b", "p/sub/c"]
    assert [i.size for i in store.list("p/")] == [3, 3, 7]
    assert list(store.list("zzz/")) == []


def test_list_prefixes_returns_direct_children_only(store):
    for key in ("staging/t1/attempt-1/x", "staging/t1/attempt-2/y", "staging/t2/attempt-1/z", "staging/file"):
        store.put_bytes(key, b"1")
    assert store.list_prefixes("staging/") == ["staging/t1/", "staging/t2/"]
    assert store.list_prefixes("staging/t1/") == ["staging/t1/attempt-1/", "staging/t1/attempt-2/"]
    assert store.list_prefixes("empty/") == []


def test_copy_is_a_full_copy(store):
    store.put_bytes("src/k", b"payload")
    store.copy("src/k", "dst/k")
    assert store.get("dst/k") == b"payload"
    assert store.get("src/k") == b"payload"


def test_delete_prefix_deletes_only_that_prefix(store):
    for n in range(5):
        store.put_bytes(f"gone/{n}", b"x")
    store.put_bytes("gone-not/0", b"x")
    store.put_bytes("kept/0", b"x")
    assert store.delete_prefix("gone/") == 5
    assert [i.key for i in store.list("")] == ["gone-not/0", "kept/0"]
    assert store.delete_prefix("gone/") == 0


@pytest.mark.parametrize("bad", ["", "no-slash"])
def test_prefix_operations_refuse_an_unbounded_prefix(store, bad):
    # An empty prefix would mean "the whole bucket": refused, naming the field.
    with pytest.raises(errors.InvalidDatasetInputError) as caught:
        store.delete_prefix(bad)
    assert caught.value.details["field"] == "prefix"


def test_s3_errors_are_translated(make_s3_store, s3_client):
    # GIVEN a store whose bucket does not exist WHEN used THEN a TraceError names the key and operation
    store = objectstore.S3ObjectStore(s3_client, "no-such-bucket-here")
    with pytest.raises(errors.ObjectStoreError) as caught:
        store.put_bytes("k", b"x")
    assert caught.value.details == {"key": "k", "operation": "put_bytes"}


def test_every_put_to_s3_carries_the_bodys_sha256_for_s3_to_verify(make_s3_store, moto_url, tmp_path: Path):
    # GIVEN the object store's own client (as the worker and the CLI build it)
    from trace_core import aws, settings

    client = aws.s3_client(settings.load({"AWS_ENDPOINT_URL": moto_url, "AWS_DEFAULT_REGION": "us-east-1"}))
    store = objectstore.S3ObjectStore(client, make_s3_store().bucket)
    sent: list[dict[str, str]] = []
    client.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(
        {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}))
    path = tmp_path / "f.parquet"
    path.write_bytes(b"PAR1" * 2500)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    # WHEN a staged file and a manifest are written
    store.put_file("s/f.parquet", path, sha256=digest)
    store.put_bytes("v/manifest.json", b'{"x":1}', content_type="application/json")
    # THEN each request names its body's sha256 (S3 refuses bytes that do not match it), so the
    # signature need not hash the body again, also over a local endpoint's plain HTTP
    expected = [digest, hashlib.sha256(b'{"x":1}').hexdigest()]
    assert [base64.b64decode(h["x-amz-checksum-sha256"]).hex() for h in sent] == expected
    assert [h["X-Amz-Content-SHA256"] for h in sent] == ["UNSIGNED-PAYLOAD"] * 2
    assert store.get("s/f.parquet") == path.read_bytes()
