"""Which pinned versions a principal gets, and what its relations are called. Pure functions.

Relation names are deterministic: when every granted dataset is in one
namespace, a relation is named after Cryo's dataset (``blocks``,
``transactions``, ``logs``, ...); when several namespaces are granted, each is
qualified as ``<namespace>_<dataset>`` (``-`` becomes ``_``), e.g.
``monad_local_blocks``. A dataset spanning many ranges is one relation.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trace_core.auth import errors, models

_KEY = re.compile(r"^([a-z0-9][a-z0-9_-]{0,62})/([a-z0-9][a-z0-9_]{0,62})$")


def _split(key: str) -> tuple[str, str]:
    match = _KEY.match(key)
    if not match:
        raise errors.GrantError(f"dataset must look like 'namespace/dataset', got {key!r}", field="dataset",
                                expected="namespace/dataset, e.g. monad_local/blocks")
    return match[1], match[2]


def relation_names(dataset_keys: Iterable[str]) -> dict[str, str]:
    """``{dataset_key: relation}`` for the datasets granted together."""
    keys = sorted(set(dataset_keys))
    qualify = len({_split(k)[0] for k in keys}) > 1
    names: dict[str, str] = {}
    for key in keys:
        namespace, dataset = _split(key)
        names[key] = f"{namespace.replace('-', '_')}_{dataset}" if qualify else dataset
    taken: dict[str, str] = {}
    for key, name in names.items():
        if name in taken or not re.match(r"^[a-z]", name):
            raise errors.GrantError(
                f"datasets {taken.get(name, key)} and {key} cannot be granted together: both would be "
                f"relation {name!r}" if name in taken else f"relation name {name!r} must start with a letter",
                field="datasets", expected="datasets whose relation names differ",
            )
        taken[name] = key
    return names


def build(
    rows: Iterable[Mapping[str, Any]],
    *,
    datasets: Collection[str] | None = None,
    relations: Mapping[str, str] | None = None,
) -> list[models.Grant]:
    """One grant per dataset from version rows (``dataset_key``, ``dataset_uuid``, ``dataset_version``,
    ``storage_prefix``, ``range_start``, ``range_end``), e.g. ``chainsync.jobs.visible_versions``.

    ``datasets`` keeps only these dataset keys or Cryo dataset names; ``relations`` overrides names by key.
    """
    wanted = set(datasets) if datasets is not None else None
    by_key: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        key = str(row["dataset_key"])
        if wanted is not None and key not in wanted and _split(key)[1] not in wanted:
            continue
        by_key.setdefault(key, []).append(row)
    names = relation_names(by_key)
    names.update({k: v for k, v in (relations or {}).items() if k in by_key})
    grants = []
    for key, found in sorted(by_key.items()):
        uuids = {str(r["dataset_uuid"]) for r in found}
        if len(uuids) != 1:
            raise errors.GrantError(f"dataset {key} has rows for several dataset uuids", field="dataset_uuid",
                                    expected="one uuid per dataset key")
        try:
            grants.append(models.Grant(
                relation=names[key], dataset_uuid=found[0]["dataset_uuid"], dataset_key=key,
                versions=tuple(
                    models.PinnedVersion(dataset_version=r["dataset_version"], storage_ref=r["storage_prefix"],
                                         range_start=r["range_start"], range_end=r["range_end"])
                    for r in sorted(found, key=lambda r: int(r["range_start"]))
                ),
            ))
        except ValidationError as exc:
            raise errors.GrantError(f"cannot grant {key}: {exc.errors()[0]['msg']}", field="versions",
                                    expected="committed, disjoint versions") from exc
    return grants


class GrantRequest(BaseModel):
    """One entry of a task payload's ``grants``: a dataset, optionally a block window and a relation name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}/[a-z0-9][a-z0-9_]{0,62}$")
    relation: models.RelationName | None = None
    from_block: models.BlockNumber | None = None
    to_block: models.BlockNumber | None = None


def parse_requests(payload: Mapping[str, Any]) -> list[GrantRequest]:
    """The grant requests of a task payload (``payload["grants"]``); empty when it asks for none."""
    raw = payload.get("grants")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise errors.GrantError("payload.grants must be a list of {dataset, relation?, from_block?, to_block?}",
                                field="payload.grants", expected="list")
    requests = []
    for index, item in enumerate(raw):
        try:
            requests.append(GrantRequest.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise errors.GrantError(f"payload.grants[{index}].{where}: {first['msg']}",
                                    field=f"payload.grants[{index}].{where}", expected=first["msg"]) from exc
    return requests


def for_requests(rows: Sequence[Mapping[str, Any]], requests: Sequence[GrantRequest]) -> list[models.Grant]:
    """Grants for a task's requests from the visible version rows: the versions inside each block window."""
    selected: list[Mapping[str, Any]] = []
    for request in requests:
        low = request.from_block if request.from_block is not None else 0
        high = request.to_block if request.to_block is not None else 2**63 - 1
        selected.extend(r for r in rows if r["dataset_key"] == request.dataset
                        and int(r["range_start"]) < high and int(r["range_end"]) > low)
    relations = {r.dataset: r.relation for r in requests if r.relation}
    return build(selected, relations=relations)
