"""Domain values of the dataset registry: manifests, staged outputs and registry rows.

A manifest is deterministic: it holds no task, attempt or timestamp (those are
provenance and live in the registry row), so the same data always serialises
to the same bytes and the same sha256. That is what lets the commit protocol
tell an idempotent re-publication from a conflicting one.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trace_core.datasets import naming

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
BlockHash = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
BlockNumber = Annotated[int, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
VersionId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
ConfigHash = Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")]
# Segments may not start with '.', so no path can climb out of its prefix ("..") or hide.
RelativePath = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*(/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*)*$", max_length=512)
]

MANIFEST_FORMAT = "trace.dataset_manifest/1"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_coverage(files: tuple[Any, ...], range_start: int, range_end: int) -> None:
    """Files must tile ``[range_start, range_end)`` exactly, in order: no gap, no overlap."""
    cursor = range_start
    for item in files:
        if item.range_start != cursor or item.range_end <= item.range_start:
            raise ValueError(
                f"files must tile [{range_start}, {range_end}) in order; "
                f"{item.name if hasattr(item, 'name') else item.path} covers [{item.range_start}, {item.range_end}) "
                f"where block {cursor} was expected next"
            )
        cursor = item.range_end
    if cursor != range_end:
        raise ValueError(f"files cover [{range_start}, {cursor}) but the range is [{range_start}, {range_end})")


class ManifestFile(_Frozen):
    """One Parquet object of a version; ``path`` is relative to the version prefix."""

    path: RelativePath
    size: Count
    sha256: Sha256
    row_count: Count
    range_start: BlockNumber
    range_end: BlockNumber


class Manifest(_Frozen):
    """``manifest.json``: the only index of a committed version's objects (never list the prefix)."""

    format: Literal["trace.dataset_manifest/1"] = "trace.dataset_manifest/1"
    dataset_key: str
    dataset_uuid: uuid.UUID
    cryo_dataset: str
    chain_id: Annotated[int, Field(gt=0)]
    dataset_version: VersionId
    range_start: BlockNumber
    range_end: BlockNumber  # exclusive
    config_hash: ConfigHash
    extract: dict[str, Any] = Field(description="the extraction config whose hash is config_hash")
    cryo_version: str
    schema_hash: Sha256
    row_count: Count
    bytes: Count
    first_parent_hash: BlockHash | None = None
    last_block_hash: BlockHash | None = None
    files: tuple[ManifestFile, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        _check_coverage(self.files, self.range_start, self.range_end)
        if self.row_count != sum(f.row_count for f in self.files):
            raise ValueError("row_count must equal the sum of the files' row counts")
        if self.bytes != sum(f.size for f in self.files):
            raise ValueError("bytes must equal the sum of the files' sizes")
        expected = naming.version_id(
            chain_id=self.chain_id, dataset_key=self.dataset_key, range_start=self.range_start,
            range_end=self.range_end, config_hash=self.config_hash,
        )
        if self.dataset_version != expected:
            raise ValueError(f"dataset_version must be {expected} for this identity")
        return self

    def to_bytes(self) -> builtins.bytes:
        """Canonical JSON: the bytes stored in S3 and hashed into the registry."""
        return naming.canonical_json(self.model_dump(mode="json"))

    @property
    def sha256(self) -> str:
        return naming.sha256_hex(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: builtins.bytes) -> Manifest:
        return cls.model_validate_json(data)


class StagedFile(_Frozen):
    """A file uploaded under an attempt's staging prefix."""

    name: RelativePath
    staging_key: str
    size: Count
    sha256: Sha256
    row_count: Count
    schema_hash: Sha256
    range_start: BlockNumber
    range_end: BlockNumber


class StagedVersion(_Frozen):
    """Everything an attempt produced for one dataset and range, ready to be committed."""

    task_id: uuid.UUID
    attempt: Annotated[int, Field(ge=1)]
    chain_id: Annotated[int, Field(gt=0)]
    dataset_key: str
    cryo_dataset: str
    range_start: BlockNumber
    range_end: BlockNumber
    config_hash: ConfigHash
    extract: dict[str, Any]
    cryo_version: str
    first_parent_hash: BlockHash | None = None
    last_block_hash: BlockHash | None = None
    files: tuple[StagedFile, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> StagedVersion:
        _, cryo_dataset = naming.split_dataset_key(self.dataset_key)
        if cryo_dataset != self.cryo_dataset:
            raise ValueError(f"dataset_key {self.dataset_key} does not name cryo dataset {self.cryo_dataset}")
        _check_coverage(self.files, self.range_start, self.range_end)
        if len({f.schema_hash for f in self.files}) != 1:
            raise ValueError("all files of a version must share one Parquet schema")
        prefix = naming.staging_prefix(self.task_id, self.attempt)
        for item in self.files:
            if not item.staging_key.startswith(prefix):
                raise ValueError(f"{item.staging_key} is not under this attempt's staging prefix {prefix}")
        return self

    @property
    def dataset_version(self) -> str:
        return naming.version_id(
            chain_id=self.chain_id, dataset_key=self.dataset_key, range_start=self.range_start,
            range_end=self.range_end, config_hash=self.config_hash,
        )

    @property
    def dataset_uuid(self) -> uuid.UUID:
        return naming.dataset_uuid(self.dataset_key)

    @property
    def schema_hash(self) -> str:
        return self.files[0].schema_hash

    def manifest(self, dataset_uuid: uuid.UUID | None = None) -> Manifest:
        """The manifest this version will have once committed (``dataset_uuid``: the registry's)."""
        return Manifest(
            dataset_key=self.dataset_key,
            dataset_uuid=dataset_uuid or self.dataset_uuid,
            cryo_dataset=self.cryo_dataset,
            chain_id=self.chain_id,
            dataset_version=self.dataset_version,
            range_start=self.range_start,
            range_end=self.range_end,
            config_hash=self.config_hash,
            extract=self.extract,
            cryo_version=self.cryo_version,
            schema_hash=self.schema_hash,
            row_count=sum(f.row_count for f in self.files),
            bytes=sum(f.size for f in self.files),
            first_parent_hash=self.first_parent_hash,
            last_block_hash=self.last_block_hash,
            files=tuple(
                ManifestFile(
                    path=f.name, size=f.size, sha256=f.sha256, row_count=f.row_count,
                    range_start=f.range_start, range_end=f.range_end,
                )
                for f in self.files
            ),
        )


class Dataset(_Frozen):
    """A row of ``state.datasets``."""

    dataset_uuid: uuid.UUID
    key: str
    chain_id: int
    cryo_dataset: str
    schema_hash: str | None
    created_at: dt.datetime


class DatasetVersion(_Frozen):
    """A row of ``state.dataset_versions`` joined with its dataset's key and chain."""

    dataset_version: str
    dataset_uuid: uuid.UUID
    dataset_key: str
    chain_id: int
    range_start: int
    range_end: int
    config_hash: str
    storage_prefix: str
    manifest_key: str
    manifest_sha256: str | None
    row_count: int | None
    bytes: int | None
    schema_hash: str | None
    first_parent_hash: str | None
    last_block_hash: str | None
    cryo_version: str | None
    status: Literal["staged", "committed"]
    created_by_task: uuid.UUID | None
    created_by_attempt: int | None
    created_at: dt.datetime
    committed_at: dt.datetime | None
