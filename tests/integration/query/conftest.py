"""A granted dataset, an ungranted one and a secret on disk, and hardened engines over them."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trace_core.query import attach, engine

from tests.fixtures.query import dataset

CANARY_ENV = "TRACE_TEST_QUERY_CANARY"


@dataclasses.dataclass(frozen=True)
class World:
    root: Path
    data_root: Path  # the verified cache: granted and ungranted versions
    files: dict[str, list[Path]]  # granted relation -> range files
    other: Path  # an ungranted version's file in the same cache
    secret: Path  # a canary outside the cache
    token: str  # the canary's content (also in CANARY_ENV)
    marker: str  # a value only the ungranted file holds
    chain: dataset.Chain

    def relations(self, *names: str) -> dict[str, attach.RelationSource]:
        return {name: attach.RelationSource.parquet(self.files[name]) for name in names or self.files}

    def placeholders(self) -> dict[str, str]:
        return {"secret": str(self.secret), "secret_dir": str(self.secret.parent), "other": str(self.other),
                "data": str(self.files["blocks"][0]), "canary_env": CANARY_ENV}

    def fingerprint(self) -> dict[str, str]:
        """Every file under the root outside the engines' scratch, with its sha256: writes must not change it."""
        out = {}
        for directory, subdirs, names in os.walk(self.root):
            subdirs[:] = sorted(d for d in subdirs if not (Path(directory) == self.root and d == "scratch"))
            for name in sorted(names):
                path = Path(directory) / name
                out[str(path.relative_to(self.root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        return out


@pytest.fixture(scope="session")
def chain() -> dataset.Chain:
    return dataset.build()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, chain: dataset.Chain) -> Iterator[World]:
    root = tmp_path_factory.mktemp("query-world")
    data_root = root / "cache"
    files = dataset.write(chain, data_root / "v1")
    token = secrets.token_hex(16)
    marker = f"UNGRANTED-{token}"
    other = data_root / "v0-ungranted" / "00000000_to_00000100.parquet"
    other.parent.mkdir(parents=True)
    pq.write_table(pa.table({"note": [marker], "value": [1]}), other)
    secret = root / "secret" / "canary.txt"
    secret.parent.mkdir()
    secret.write_text(f"{token}\n")
    previous = os.environ.get(CANARY_ENV)
    os.environ[CANARY_ENV] = token
    try:
        yield World(root=root, data_root=data_root, files=files, other=other, secret=secret, token=token,
                    marker=marker, chain=chain)
    finally:
        if previous is None:
            os.environ.pop(CANARY_ENV, None)
        else:
            os.environ[CANARY_ENV] = previous


def config(world: World, **overrides: object) -> engine.EngineConfig:
    """Test-sized ceilings, the world's cache as the only data root, scratch under the world's root."""
    values: dict[str, object] = {
        "workers": 2, "data_roots": (world.data_root,), "scratch_dir": world.root / "scratch",
        "max_memory_mb": 1024, "address_space_overhead_mb": 2048, "max_temp_mb": 1024, "kill_grace_s": 2.0,
    }
    values.update(overrides)
    return engine.EngineConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def query_engine(world: World) -> Iterator[engine.Engine]:
    """The engine as the service runs it (DuckDB's single-SELECT check on)."""
    with engine.Engine(config(world, scratch_dir=world.root / "scratch" / "checked")) as eng:
        yield eng


@pytest.fixture(scope="module")
def raw_engine(world: World) -> Iterator[engine.Engine]:
    """The engine with its own statement check off: only DuckDB's settings and the OS limits stand."""
    with engine.Engine(config(world, verify_statement=False, scratch_dir=world.root / "scratch" / "raw")) as eng:
        yield eng
