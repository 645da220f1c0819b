"""Pure naming rules: dataset ids, deterministic version ids and every object key.

Nothing here does I/O. Keys are pure functions of their inputs, so a retry
writes the same keys (Cryo's habit) and anyone can recompute where a version
lives from the registry row alone.

Layout in the datasets bucket::

    staging/{task_id}/attempt-{n}/{cryo_dataset}/{file}          one attempt's outputs
    cryo/{chain_id}/{dataset_uuid}/{start}_{end}/{version}/{file}   a committed version
    cryo/{chain_id}/{dataset_uuid}/{start}_{end}/{version}/manifest.json

Ranges are end-exclusive everywhere (``{start}_{end}`` holds block end-1, not
end); only Cryo's own file names are end-inclusive, as Cryo writes them.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from trace_core.datasets import errors

# Fixed forever: changing it would move every dataset to a new uuid.
DATASET_NAMESPACE = uuid.UUID("5b0f3c1e-7d8a-4e0b-9c57-1f6f2a7f0d42")

STAGING_ROOT = "staging/"
VERSIONS_ROOT = "cryo/"
MANIFEST_NAME = "manifest.json"

_NETWORK = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DATASET = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")
_DATASET_KEY = re.compile(r"^([a-z0-9][a-z0-9_-]{0,62})/([a-z0-9][a-z0-9_]{0,62})$")
_HEX = re.compile(r"^[0-9a-f]+$")
_STAGING = re.compile(r"^staging/([0-9a-f-]{36})/attempt-(\d+)/")
# Cryo pads block numbers to at least 8 digits (`{:0>8}`).
_CRYO_FILE = re.compile(
    r"^(?P<network>[^_].*?)__(?P<dataset>[a-z0-9_]+)__(?P<first>\d{8,})_to_(?P<last>\d{8,})\.parquet$"
)


def canonical_json(value: Any) -> bytes:
    """The one JSON encoding used for hashing: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_range(range_start: int, range_end: int) -> None:
    """Raise unless ``[range_start, range_end)`` is a non-empty end-exclusive block range."""
    if isinstance(range_start, bool) or not isinstance(range_start, int) or range_start < 0:
        raise errors.InvalidDatasetInputError(
            f"range_start must be a block number >= 0, got {range_start!r}",
            field="range_start", expected="integer >= 0",
        )
    if isinstance(range_end, bool) or not isinstance(range_end, int) or range_end <= range_start:
        raise errors.InvalidDatasetInputError(
            f"range_end must be greater than range_start={range_start} (ranges are end-exclusive), "
            f"got {range_end!r}",
            field="range_end", expected=f"integer > {range_start}",
        )


def split_dataset_key(key: str) -> tuple[str, str]:
    """``"monad_local/blocks"`` -> ``("monad_local", "blocks")``: the namespace and Cryo's dataset."""
    match = _DATASET_KEY.match(key) if isinstance(key, str) else None
    if not match:
        raise errors.InvalidDatasetInputError(
            f"dataset_key must look like 'namespace/dataset' (lowercase letters, digits, _; - in the "
            f"namespace), got {key!r}",
            field="dataset_key", expected="network/dataset, e.g. monad_local/blocks",
        )
    return match[1], match[2]


def dataset_key(network: str, cryo_dataset: str) -> str:
    """The registry key of ``cryo_dataset`` under the namespace ``network`` (e.g. ``monad_local``)."""
    for field, value, pattern in (("namespace", network, _NETWORK), ("cryo_dataset", cryo_dataset, _DATASET)):
        if not isinstance(value, str) or not pattern.match(value):
            raise errors.InvalidDatasetInputError(
                f"{field} must be lowercase letters, digits and _, got {value!r}",
                field=field, expected=pattern.pattern,
            )
    return f"{network}/{cryo_dataset}"


def dataset_uuid(key: str) -> uuid.UUID:
    """The dataset's uuid: derived from its key, so every deployment agrees on it."""
    split_dataset_key(key)
    return uuid.uuid5(DATASET_NAMESPACE, key)


def version_id(*, chain_id: int, dataset_key: str, range_start: int, range_end: int, config_hash: str) -> str:
    """The deterministic dataset version: first 32 hex of sha256 over the canonical identity."""
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise errors.InvalidDatasetInputError(
            f"chain_id must be a positive integer, got {chain_id!r}", field="chain_id", expected="integer > 0"
        )
    split_dataset_key(dataset_key)
    check_range(range_start, range_end)
    if not isinstance(config_hash, str) or not _HEX.match(config_hash) or not 8 <= len(config_hash) <= 64:
        raise errors.InvalidDatasetInputError(
            f"config_hash must be 8-64 lowercase hex characters, got {config_hash!r}",
            field="config_hash", expected="lowercase hex, 8-64 characters",
        )
    identity = {
        "chain_id": chain_id,
        "dataset": dataset_key,
        "range_start": range_start,
        "range_end": range_end,
        "config_hash": config_hash,
    }
    return sha256_hex(canonical_json(identity))[:32]


def version_prefix(*, chain_id: int, dataset_uuid: uuid.UUID, range_start: int, range_end: int, version: str) -> str:
    """Where a committed version's objects live (ends with ``/``)."""
    check_range(range_start, range_end)
    return f"{VERSIONS_ROOT}{chain_id}/{dataset_uuid}/{range_start}_{range_end}/{version}/"


def manifest_key(prefix: str) -> str:
    return prefix + MANIFEST_NAME


def staging_prefix(task_id: uuid.UUID, attempt: int) -> str:
    """The prefix owned by one attempt of one task (ends with ``/``)."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise errors.InvalidDatasetInputError(
            f"attempt must be >= 1, got {attempt!r}", field="attempt", expected="integer >= 1"
        )
    return f"{STAGING_ROOT}{uuid.UUID(str(task_id))}/attempt-{attempt}/"


def staging_key(task_id: uuid.UUID, attempt: int, cryo_dataset: str, file_name: str) -> str:
    return f"{staging_prefix(task_id, attempt)}{cryo_dataset}/{file_name}"


def parse_staging_prefix(key: str) -> tuple[uuid.UUID, int] | None:
    """``(task_id, attempt)`` of a staging key or prefix, or None if it is not one."""
    match = _STAGING.match(key)
    return (uuid.UUID(match[1]), int(match[2])) if match else None


def cryo_file_name(network: str, cryo_dataset: str, range_start: int, range_end: int) -> str:
    """The file Cryo writes for ``[range_start, range_end)``: its names hold the last block, inclusive."""
    check_range(range_start, range_end)
    return f"{network}__{cryo_dataset}__{range_start:08d}_to_{range_end - 1:08d}.parquet"


def parse_cryo_file_name(name: str) -> tuple[str, str, int, int] | None:
    """``(network, dataset, range_start, range_end)`` (end-exclusive) of a Cryo file name, or None."""
    match = _CRYO_FILE.match(name)
    if not match:
        return None
    return match["network"], match["dataset"], int(match["first"]), int(match["last"]) + 1
