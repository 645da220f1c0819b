"""An anvil we start ourselves, already seeded: from the cache when we can, else built and cached.

Used by the test fixture ``seeded_chain`` (and open to the demo / Lite stack). It lives in
``lite`` because it runs a local anvil (:mod:`trace_core.lite.anvil`); the chain it loads is
:mod:`trace_core.chain`'s (seeding, cache).
Because we own the process, a cache hit keeps everything, historical state
included: the chain is built once by an anvil started with ``--dump-state
--preserve-historical-states --prune-history N``, stopped (anvil writes the dump
on exit), and every later node starts with ``--load-state`` of that file.

``--prune-history N`` (N above the chain length) keeps every block's state in
memory and none on disk: anvil otherwise spills states past 500 blocks to
``~/.foundry/anvil/tmp`` (gigabytes for long chains) and leaves them there when
it is stopped by a signal.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from trace_core.chain import cache, errors, info, rpc, seeder
from trace_core.lite import anvil, procs

GENESIS_TIMESTAMP = 1_735_689_600
"""2025-01-01T00:00:00Z: a fixed genesis, so the same seed and size give the same block hashes."""

HEADROOM_BLOCKS = 1_000
"""States kept in memory beyond the seeded chain, for blocks a test mines on top of it."""


@dataclasses.dataclass
class SeededNode:
    """A running anvil holding a seeded chain. ``stop()`` ends it (also safe to call twice)."""

    url: str
    info: info.ChainInfo
    proc: subprocess.Popen[bytes]
    from_cache: bool

    def stop(self) -> None:
        if self.proc.poll() is None:
            procs.stop(self.proc.pid)
        self.proc.wait(timeout=10)


def _history_flags(blocks: int) -> list[str]:
    return ["--prune-history", str(blocks + HEADROOM_BLOCKS)]


def start_seeded(
    *,
    seed: int,
    blocks: int,
    cache_dir: Path,
    log_dir: Path,
    chain_id: int = 10143,
    port: int | None = None,
) -> SeededNode:
    """Start anvil on 127.0.0.1 holding the chain of ``(seed, blocks)``; build and cache it on a miss."""
    params = seeder.params_for(seed, blocks, GENESIS_TIMESTAMP)
    cache_key = cache.key(params, chain_id)
    with cache.lock(cache_dir, cache_key):
        state = cache.state_file(cache_dir, cache_key)
        from_cache = state is not None
        if state is None:
            _build(params.seed, params.blocks, cache_dir, cache_key, log_dir, chain_id)
            state = cache.state_file(cache_dir, cache_key)
            if state is None:
                raise errors.ChainError(f"building {cache_key} left no cache entry in {cache_dir}")
        recorded = cache.read_info(cache_dir, cache_key)
        if recorded is None:
            raise errors.ChainError(f"cache entry {cache_key} in {cache_dir} has no readable {cache.INFO_FILE}")
        port = port or procs.free_port()
        proc = anvil.start(
            port,
            log_dir / f"anvil-{cache_key}-{port}.log",
            chain_id=chain_id,
            load_state=state,
            extra=_history_flags(blocks),
        )
    url = anvil.url(port)
    node = SeededNode(url=url, info=recorded.model_copy(update={"rpc_url": url}), proc=proc, from_cache=from_cache)
    try:
        _check_loaded(node)
    except Exception:
        node.stop()
        cache.discard(cache_dir, cache_key)
        raise
    return node


def _build(seed: int, blocks: int, cache_dir: Path, cache_key: str, log_dir: Path, chain_id: int) -> None:
    """Seed a private anvil that dumps its state with history on exit, then cache that dump."""
    dump = cache_dir / f".{cache_key}.state.json"
    dump.unlink(missing_ok=True)
    port = procs.free_port()
    proc = anvil.start(
        port,
        log_dir / f"anvil-build-{cache_key}.log",
        chain_id=chain_id,
        extra=[
            "--timestamp", str(GENESIS_TIMESTAMP),
            *_history_flags(blocks),
            "--preserve-historical-states",
            "--dump-state", str(dump),
        ],
    )
    try:
        built = seeder.seed(anvil.url(port), seed=seed, blocks=blocks)
    except BaseException:
        procs.stop(proc.pid)
        proc.wait(timeout=30)
        dump.unlink(missing_ok=True)
        raise
    procs.stop(proc.pid)  # SIGTERM: anvil writes --dump-state as it exits
    proc.wait(timeout=30)
    if built.cache_key != cache_key:
        raise errors.ChainError(f"built chain has cache key {built.cache_key}, expected {cache_key}")
    if not dump.exists() or dump.stat().st_size == 0:
        raise errors.ChainError(f"anvil wrote no state dump at {dump} on exit", fix=f"see {log_dir}")
    cache.store(cache_dir, cache_key, built.model_copy(update={"rpc_url": ""}), state=dump)


def _check_loaded(node: SeededNode) -> None:
    """The loaded node must end at the recorded block hash and answer state queries at old blocks."""
    with rpc.RpcClient(node.url) as client:
        last = client.call("eth_getBlockByNumber", [rpc.quantity(node.info.last_block), False])
        if last is None or last["hash"] != node.info.last_block_hash:
            raise errors.ChainError(
                f"cached chain {node.info.cache_key} loaded with block {node.info.last_block} = "
                f"{last and last['hash']}, expected {node.info.last_block_hash}; the entry was discarded"
            )
        if not seeder.has_historical_state(client, node.info.deployer, node.info.first_block):
            raise errors.ChainError(
                f"cached chain {node.info.cache_key} lost its historical state on load; the entry was discarded"
            )
