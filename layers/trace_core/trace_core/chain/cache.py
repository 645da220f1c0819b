"""Seeded chains cached on disk, keyed by everything the chain is a function of.

An entry is a directory ``<cache_dir>/<key>/`` holding ``chain.json`` (the
:class:`~trace_core.chain.info.ChainInfo` of the chain when it was built) and,
when the chain was built by an anvil we started (see
:mod:`trace_core.lite.seeded_node`), ``state.json``: anvil's ``--dump-state`` file
written with ``--preserve-historical-states``, which a new anvil loads with
``--load-state`` keeping blocks, transactions, logs, traces *and* the state at
every block. (``anvil_dumpState`` over RPC keeps everything but the historical
state: eth_call at old blocks then fails, so it is not used; docs/chain.md.)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from trace_core.chain import activity, artifacts, info

INFO_FILE = "chain.json"
STATE_FILE = "state.json"


def key(params: activity.Params, chain_id: int) -> str:
    """A stable name for the chain ``params`` yield on ``chain_id`` with the committed contracts."""
    material = {
        "generator_version": activity.GENERATOR_VERSION,
        "params": params.model_dump(mode="json"),
        "chain_id": chain_id,
        "contracts": {name: c.code_hash() for name, c in sorted(artifacts.load().contracts.items())},
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"s{params.seed}-b{params.blocks}-{digest[:16]}"


def entry(cache_dir: Path, cache_key: str) -> Path:
    return cache_dir / cache_key


def read_info(cache_dir: Path, cache_key: str) -> info.ChainInfo | None:
    """The cached ChainInfo for ``cache_key``, or None (a damaged entry counts as missing)."""
    file = entry(cache_dir, cache_key) / INFO_FILE
    if not file.exists():
        return None
    try:
        return info.parse(file.read_text(), str(file))
    except Exception:  # noqa: BLE001 - a damaged entry is rebuilt, never trusted
        return None


def state_file(cache_dir: Path, cache_key: str) -> Path | None:
    """The cached anvil state with history for ``cache_key``, if there is one."""
    file = entry(cache_dir, cache_key) / STATE_FILE
    if file.exists() and read_info(cache_dir, cache_key) is not None:
        touch(cache_dir, cache_key)
        return file
    return None


def store(cache_dir: Path, cache_key: str, chain: info.ChainInfo, state: Path | None = None) -> Path:
    """Publish an entry atomically (rename of a complete directory); ``state`` is moved into it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".{cache_key}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    if state is not None:
        shutil.move(str(state), staging / STATE_FILE)
    (staging / INFO_FILE).write_text(info.dump(chain))
    target = entry(cache_dir, cache_key)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def discard(cache_dir: Path, cache_key: str) -> None:
    shutil.rmtree(entry(cache_dir, cache_key), ignore_errors=True)


def touch(cache_dir: Path, cache_key: str) -> None:
    with contextlib.suppress(OSError):
        os.utime(entry(cache_dir, cache_key))


def prune(cache_dir: Path, keep: int) -> list[str]:
    """Delete all but the ``keep`` most recently used entries; returns the deleted keys."""
    if not cache_dir.exists():
        return []
    entries = sorted(
        (p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    deleted = []
    for stale in entries[keep:]:
        shutil.rmtree(stale, ignore_errors=True)
        deleted.append(stale.name)
    return deleted


@contextlib.contextmanager
def lock(cache_dir: Path, cache_key: str, *, timeout: float = 900.0) -> Iterator[None]:
    """Hold an exclusive lock on ``cache_key`` so concurrent test sessions build an entry once."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{cache_key}.lock", "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"cache entry {cache_key} stayed locked for {timeout:.0f}s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
