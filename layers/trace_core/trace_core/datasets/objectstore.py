"""The ObjectStore port, its S3 adapter and an in-memory fake for unit tests.

One contract suite (tests/integration/datasets/test_objectstore_contract.py)
runs against both, so the fake cannot drift from S3's behaviour.
"""

from __future__ import annotations

import base64
import builtins
import dataclasses
import datetime as dt
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from trace_core.datasets import errors

# Above this a single CopyObject is refused by S3; boto3's managed copy then uses multipart.
_SINGLE_COPY_LIMIT = 5 * 1024**3
# Below this a file goes up in one PutObject; above it, boto3's managed (multipart) upload.
_SINGLE_PUT_LIMIT = 64 * 1024**2


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: dt.datetime


class ObjectStore(Protocol):
    """Keys of one bucket. Every method raises ObjectStoreError (or ObjectNotFoundError) on failure."""

    def put_file(self, key: str, path: Path, *, sha256: str | None = None) -> ObjectInfo:
        """Upload a local file (streamed from disk, multipart when large).

        ``sha256`` (hex), when the caller has it: the store refuses bytes that do not match it
        (S3 checks it server-side on single-request uploads; moto does not check it).
        """

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> ObjectInfo:
        """Store a small object from memory."""

    def get(self, key: str) -> bytes:
        """The whole object; ObjectNotFoundError if absent."""

    def head(self, key: str) -> ObjectInfo | None:
        """Size and time of an object, or None if absent."""

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""

    def list_prefixes(self, prefix: str) -> builtins.list[str]:
        """The "folders" directly under ``prefix`` (which ends with ``/``), each ending with ``/``."""

    def copy(self, source_key: str, dest_key: str, *, size: int | None = None) -> None:
        """Server-side copy inside the bucket (the bytes never pass through this process).

        ``size``: the source's size when the caller knows it (saves a HEAD request).
        """

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many."""


def _require_prefix(prefix: str) -> None:
    # An empty prefix would mean "the whole bucket": never what a caller of delete_prefix means.
    if not prefix or not prefix.endswith("/"):
        raise errors.InvalidDatasetInputError(
            f"prefix must be non-empty and end with '/', got {prefix!r}", field="prefix", expected="a/b/"
        )


class S3ObjectStore:
    """ObjectStore over one S3 bucket; takes a boto3 S3 client (AWS, moto server or LocalStack)."""

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self.bucket = bucket

    def _fail(self, exc: Exception, key: str, operation: str) -> errors.ObjectStoreError:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            return errors.ObjectNotFoundError(f"no object s3://{self.bucket}/{key}", key=key, operation=operation)
        return errors.ObjectStoreError(
            f"{operation} s3://{self.bucket}/{key} failed: {exc}", key=key, operation=operation
        )

    def put_file(self, key: str, path: Path, *, sha256: str | None = None) -> ObjectInfo:
        size = Path(path).stat().st_size
        if size < _SINGLE_PUT_LIMIT:
            # One request, and no transfer manager (threads, futures) per file; S3 verifies the length,
            # and the sha256 when given, so a HEAD afterwards would tell nothing new.
            extra = {"ChecksumSHA256": base64.b64encode(bytes.fromhex(sha256)).decode()} if sha256 else {}
            try:
                with open(path, "rb") as body:
                    self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentLength=size, **extra)
            except Exception as exc:
                raise self._fail(exc, key, "put_file") from exc
            return ObjectInfo(key=key, size=size, last_modified=dt.datetime.now(dt.UTC))
        try:
            self._s3.upload_file(str(path), self.bucket, key)
        except Exception as exc:  # boto3 raises S3UploadFailedError, ClientError, EndpointConnectionError...
            raise self._fail(exc, key, "put_file") from exc
        info = self.head(key)
        if info is None:
            raise errors.ObjectStoreError(f"s3://{self.bucket}/{key} vanished after upload", key=key,
                                          operation="put_file")
        return info

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> ObjectInfo:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode())
        except Exception as exc:
            raise self._fail(exc, key, "put_bytes") from exc
        return ObjectInfo(key=key, size=len(data), last_modified=dt.datetime.now(dt.UTC))

    def get(self, key: str) -> bytes:
        try:
            return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as exc:
            raise self._fail(exc, key, "get") from exc

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._s3.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            failure = self._fail(exc, key, "head")
            if isinstance(failure, errors.ObjectNotFoundError):
                return None
            raise failure from exc
        return ObjectInfo(key=key, size=int(response["ContentLength"]), last_modified=response["LastModified"])

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(key=item["Key"], size=int(item["Size"]), last_modified=item["LastModified"])
        except Exception as exc:
            raise self._fail(exc, prefix, "list") from exc

    def list_prefixes(self, prefix: str) -> builtins.list[str]:
        _require_prefix(prefix)
        found: builtins.list[str] = []
        try:
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        except Exception as exc:
            raise self._fail(exc, prefix, "list_prefixes") from exc
        return sorted(found)

    def copy(self, source_key: str, dest_key: str, *, size: int | None = None) -> None:
        source = {"Bucket": self.bucket, "Key": source_key}
        try:
            if size is None:
                info = self.head(source_key)
                if info is None:
                    raise errors.ObjectNotFoundError(
                        f"no object s3://{self.bucket}/{source_key}", key=source_key, operation="copy"
                    )
                size = info.size
            if size < _SINGLE_COPY_LIMIT:  # a missing source fails with NoSuchKey
                self._s3.copy_object(Bucket=self.bucket, Key=dest_key, CopySource=source)
            else:
                self._s3.copy(source, self.bucket, dest_key)
        except errors.ObjectStoreError:
            raise
        except Exception as exc:
            raise self._fail(exc, source_key, "copy") from exc

    def delete_prefix(self, prefix: str) -> int:
        _require_prefix(prefix)
        keys = [info.key for info in self.list(prefix)]
        deleted = 0
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            batch = keys[start : start + 1000]
            try:
                response = self._s3.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except Exception as exc:
                raise self._fail(exc, prefix, "delete_prefix") from exc
            failed = response.get("Errors", [])
            if failed:
                raise errors.ObjectStoreError(
                    f"deleting under s3://{self.bucket}/{prefix} failed for {failed[0].get('Key')}: "
                    f"{failed[0].get('Message')}",
                    key=failed[0].get("Key", prefix), operation="delete_prefix",
                )
            deleted += len(batch)
        return deleted


class MemoryObjectStore:
    """In-memory ObjectStore for unit tests; behaves like S3ObjectStore (the contract suite checks it)."""

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, dt.datetime]] = {}
        self._lock = threading.Lock()

    def _store(self, key: str, data: bytes) -> ObjectInfo:
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            self._objects[key] = (data, now)
        return ObjectInfo(key=key, size=len(data), last_modified=now)

    def put_file(self, key: str, path: Path, *, sha256: str | None = None) -> ObjectInfo:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise errors.ObjectStoreError(f"cannot read {path}: {exc}", key=key, operation="put_file") from exc
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise errors.ObjectStoreError(f"{path} does not match sha256 {sha256}", key=key, operation="put_file")
        return self._store(key, data)

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> ObjectInfo:
        return self._store(key, bytes(data))

    def get(self, key: str) -> bytes:
        with self._lock:
            found = self._objects.get(key)
        if found is None:
            raise errors.ObjectNotFoundError(f"no object {key}", key=key, operation="get")
        return found[0]

    def head(self, key: str) -> ObjectInfo | None:
        with self._lock:
            found = self._objects.get(key)
        return None if found is None else ObjectInfo(key=key, size=len(found[0]), last_modified=found[1])

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._lock:
            items = sorted((k, v) for k, v in self._objects.items() if k.startswith(prefix))
        for key, (data, at) in items:
            yield ObjectInfo(key=key, size=len(data), last_modified=at)

    def list_prefixes(self, prefix: str) -> builtins.list[str]:
        _require_prefix(prefix)
        with self._lock:
            keys = [k for k in self._objects if k.startswith(prefix)]
        return sorted({prefix + k[len(prefix) :].split("/", 1)[0] + "/" for k in keys if "/" in k[len(prefix) :]})

    def copy(self, source_key: str, dest_key: str, *, size: int | None = None) -> None:
        self._store(dest_key, self.get(source_key))

    def delete_prefix(self, prefix: str) -> int:
        _require_prefix(prefix)
        with self._lock:
            doomed = [k for k in self._objects if k.startswith(prefix)]
            for key in doomed:
                del self._objects[key]
        return len(doomed)

    def set_last_modified(self, key: str, at: dt.datetime) -> None:
        """Test helper: age an object (S3 cannot do this; tests on S3 pass ``now`` instead)."""
        with self._lock:
            data, _ = self._objects[key]
            self._objects[key] = (data, at)
