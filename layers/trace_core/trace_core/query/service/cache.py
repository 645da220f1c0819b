"""The verified local cache of dataset versions: download once, check sha256 and size, keep by version.

A committed dataset version never changes (its id is a pure function of its
identity, and single publication keeps the first manifest), so a cache keyed by
version id is immutable: once a version's files are verified they are used as
they are. Layout under ``root``::

    {dataset_version}/manifest.json      the manifest, as fetched and checked
    {dataset_version}/{file path}        each Parquet file, checked against the manifest
    {dataset_version}/.verified          written last: its content is the manifest's sha256

Files are downloaded to a temporary name, checked, then renamed, so a crash or
a mismatch never leaves a file that looks verified; two processes filling the
same version write identical bytes and the last rename wins harmlessly.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol

from trace_core.datasets import models as dataset_models
from trace_core.query.service import errors

MARKER = ".verified"
_CHUNK = 1024 * 1024


class BlobSource(Protocol):
    """Read access to the datasets bucket."""

    def get(self, key: str) -> bytes:
        """A small object (a manifest), whole."""

    def download(self, key: str, dest: Path) -> None:
        """Stream an object to a local file."""


class S3Blobs:
    """BlobSource over a boto3 S3 client (AWS, moto server, LocalStack)."""

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self.bucket = bucket

    def get(self, key: str) -> bytes:
        try:
            return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as exc:  # ClientError, EndpointConnectionError, ...
            raise errors.DatasetIntegrityError(f"cannot read s3://{self.bucket}/{key}: {exc}", key=key,
                                               reason="unreadable") from exc

    def download(self, key: str, dest: Path) -> None:
        try:
            self._s3.download_file(self.bucket, key, str(dest))
        except Exception as exc:
            raise errors.DatasetIntegrityError(f"cannot download s3://{self.bucket}/{key}: {exc}", key=key,
                                               reason="unreadable") from exc


def _digest(path: Path) -> tuple[int, str]:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest()


class VerifiedCache:
    """Local copies of dataset versions, verified against their manifests."""

    def __init__(self, root: Path, blobs: BlobSource) -> None:
        self.root = Path(root)
        self._blobs = blobs
        self._locks: collections.defaultdict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def _lock(self, version: str) -> threading.Lock:
        with self._guard:
            return self._locks[version]

    def files(self, *, dataset_version: str, storage_ref: str, manifest_sha256: str,
              dataset_uuid: uuid.UUID) -> tuple[Path, ...]:
        """The verified local files of one version, in manifest order (fetched on first use).

        ``manifest_sha256`` comes from the registry: the manifest fetched from ``storage_ref`` must match it,
        and every file must match the manifest's size and sha256, or DatasetIntegrityError names the object.
        """
        folder = self.root / dataset_version
        with self._lock(dataset_version):
            cached = self._verified(folder, manifest_sha256)
            if cached is not None:
                return cached
            folder.mkdir(parents=True, exist_ok=True)
            manifest = self._manifest(dataset_version, storage_ref, manifest_sha256, dataset_uuid)
            paths = []
            for item in manifest.files:
                paths.append(self._fetch(folder, storage_ref + item.path, item, dataset_version))
            (folder / "manifest.json").write_bytes(manifest.to_bytes())
            (folder / MARKER).write_text(manifest_sha256)
            return tuple(paths)

    def _verified(self, folder: Path, manifest_sha256: str) -> tuple[Path, ...] | None:
        marker = folder / MARKER
        try:
            if marker.read_text() != manifest_sha256:
                return None
            manifest = dataset_models.Manifest.from_bytes((folder / "manifest.json").read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return tuple(folder / item.path for item in manifest.files)

    def _manifest(self, version: str, storage_ref: str, expected_sha: str,
                  dataset_uuid: uuid.UUID) -> dataset_models.Manifest:
        key = storage_ref + "manifest.json"
        data = self._blobs.get(key)
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha:
            raise errors.DatasetIntegrityError(
                f"manifest {key} has sha256 {digest}, the registry recorded {expected_sha}",
                dataset_version=version, key=key, reason="manifest_sha256",
            )
        try:
            manifest = dataset_models.Manifest.from_bytes(data)
        except ValueError as exc:
            raise errors.DatasetIntegrityError(f"manifest {key} is invalid: {exc}", dataset_version=version, key=key,
                                               reason="manifest_invalid") from exc
        if manifest.dataset_version != version or manifest.dataset_uuid != dataset_uuid:
            raise errors.DatasetIntegrityError(
                f"manifest {key} describes {manifest.dataset_uuid}/{manifest.dataset_version}, "
                f"not the granted {dataset_uuid}/{version}",
                dataset_version=version, key=key, reason="manifest_identity",
            )
        return manifest

    def _fetch(self, folder: Path, key: str, item: dataset_models.ManifestFile, version: str) -> Path:
        dest = folder / item.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.partial")
        try:
            self._blobs.download(key, partial)
            size, digest = _digest(partial)
            if size != item.size or digest != item.sha256:
                what = "size" if size != item.size else "sha256"
                raise errors.DatasetIntegrityError(
                    f"{key} does not match its manifest ({what}: got {size} bytes / {digest}, "
                    f"expected {item.size} bytes / {item.sha256})",
                    dataset_version=version, key=key, reason=what,
                )
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)
        return dest
