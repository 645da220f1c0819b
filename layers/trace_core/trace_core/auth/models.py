"""Grants and claims: what a capability token says its bearer may read.

A grant names one relation (``blocks``) and pins it to a fixed set of
committed dataset versions, each with its storage ref (the version's prefix in
the datasets bucket). A query made with the token sees exactly those versions,
whatever commits later (invariant 9). All values are frozen with
``extra="forbid"``: claims we did not issue fail validation.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# Prefixes of DuckDB's system catalogs: a relation of such a name could never be read (the gate refuses
# it), so it cannot be granted either; keep in step with query.gate.rules.context.RESERVED_PREFIXES.
RESERVED_RELATION_PREFIXES: tuple[str, ...] = ("sqlite_", "duckdb_", "pg_", "pragma_", "information_schema")


def _not_reserved(value: str) -> str:
    if value.startswith(RESERVED_RELATION_PREFIXES):
        raise ValueError(
            f"relation name {value!r} is reserved for DuckDB's system catalogs (it starts with one of "
            + ", ".join(RESERVED_RELATION_PREFIXES) + ")"
        )
    return value


RelationName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$"), AfterValidator(_not_reserved)]
VersionId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
DatasetKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}/[a-z0-9][a-z0-9_]{0,62}$")]
# A version's prefix in the datasets bucket: relative, '/'-separated, no '..', ends with '/'.
def _no_parent(value: str) -> str:
    if any(part in (".", "..") for part in value.split("/")):
        raise ValueError("storage_ref must not contain '.' or '..' segments")
    return value


StorageRef = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*/$", max_length=512), AfterValidator(_no_parent)
]
BlockNumber = Annotated[int, Field(ge=0)]
USER: Literal["user"] = "user"
TASK: Literal["task"] = "task"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PinnedVersion(_Frozen):
    """One committed dataset version covering ``[range_start, range_end)``."""

    dataset_version: VersionId
    storage_ref: StorageRef
    range_start: BlockNumber
    range_end: BlockNumber

    @model_validator(mode="after")
    def _range(self) -> PinnedVersion:
        if self.range_end <= self.range_start:
            raise ValueError(f"range_end must be greater than range_start ({self.range_start}), got {self.range_end}")
        return self


class Grant(_Frozen):
    """Read access to one relation: a dataset pinned to versions that tile disjoint ranges."""

    relation: RelationName
    dataset_uuid: uuid.UUID
    dataset_key: DatasetKey
    versions: Annotated[tuple[PinnedVersion, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _disjoint(self) -> Grant:
        ids = [v.dataset_version for v in self.versions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"grant {self.relation}: a dataset version is listed twice")
        ordered = sorted(self.versions, key=lambda v: v.range_start)
        for before, after in itertools.pairwise(ordered):
            # Overlapping versions would count the same blocks twice.
            if after.range_start < before.range_end:
                raise ValueError(
                    f"grant {self.relation}: versions {before.dataset_version} and {after.dataset_version} overlap"
                )
        return self

    @property
    def version_ids(self) -> tuple[str, ...]:
        return tuple(sorted(v.dataset_version for v in self.versions))


class Claims(_Frozen):
    """The verified content of a capability token."""

    token_id: str
    kind: Literal["user", "task"]
    subject: str
    issuer: str
    audience: str
    org_id: uuid.UUID | None
    grants: tuple[Grant, ...]
    issued_at: dt.datetime
    expires_at: dt.datetime
    key_id: str
    task_id: uuid.UUID | None = None
    attempt: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Claims:
        names = [g.relation for g in self.grants]
        if len(set(names)) != len(names):
            raise ValueError("two grants name the same relation")
        if (self.kind == TASK) != (self.task_id is not None and self.attempt is not None):
            raise ValueError("task tokens, and only they, carry task_id and attempt")
        return self

    @property
    def principal(self) -> str:
        """Who is asking, as the audit log records it."""
        return f"task:{self.task_id}#{self.attempt}" if self.kind == TASK else f"user:{self.subject}"

    def grant_for(self, relation: str) -> Grant | None:
        return next((g for g in self.grants if g.relation == relation), None)

    @property
    def granted_versions(self) -> list[str]:
        return sorted(v for g in self.grants for v in g.version_ids)
