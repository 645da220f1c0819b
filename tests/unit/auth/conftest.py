from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from trace_core.auth import grants, keys, models


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., keys.FileKeyStore]:
    """Factory: a file key store in the test's tmp dir (each name is a separate ring)."""

    def make(name: str = "ring", **options: object) -> keys.FileKeyStore:
        return keys.FileKeyStore(tmp_path / "keys" / f"{name}.json", **options)  # type: ignore[arg-type]

    return make


def version_row(key: str, start: int, end: int, version: str | None = None) -> dict[str, object]:
    version = version or uuid.uuid5(uuid.NAMESPACE_URL, f"{key}{start}{end}").hex
    dataset_uuid = uuid.uuid5(uuid.NAMESPACE_URL, key)
    return {"dataset_key": key, "dataset_uuid": dataset_uuid, "dataset_version": version,
            "storage_prefix": f"cryo/10143/{dataset_uuid}/{start}_{end}/{version}/",
            "range_start": start, "range_end": end}


@pytest.fixture
def blocks_grant() -> models.Grant:
    return grants.build([version_row("monad_local/blocks", 0, 100), version_row("monad_local/blocks", 100, 200)])[0]
