"""How fast each way of attaching Parquet answers a group-by (docs/decisions/0501-query-attach.md).

Slow (not in ``make test``): ``.venv/bin/pytest -m slow -s tests/integration/query/test_attach_speed.py``.
Prints the medians (strategies interleaved, so they share the machine's noise)
and checks the engine's choice (``read_parquet`` views over exactly the granted
files, external access off, locked, in a worker process, the grant's database
kept warm) stays within 1.3x of plain DuckDB on the same files.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from trace_core.query import attach, engine

pytestmark = pytest.mark.slow

GROUP_BY = "SELECT from_address, count(*) AS n, sum(value) AS total FROM transactions GROUP BY 1"
THREADS = 2


def _write(root: Path, rows: int, files: int) -> list[Path]:
    rng = np.random.default_rng(7)
    pool = np.array([f"0x{i:040x}" for i in range(1000)])
    out = []
    per = rows // files
    for index in range(files):
        table = pa.table({
            "block_number": np.arange(index * per, (index + 1) * per, dtype=np.int64) // 100,
            "from_address": pool[rng.integers(0, 1000, per)],
            "value": rng.integers(0, 10**12, per, dtype=np.int64),
            "gas_used": rng.integers(21_000, 500_000, per, dtype=np.int64),
        })
        path = root / f"{index:04d}.parquet"
        pq.write_table(table, path)
        out.append(path)
    return out


def _interleaved(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per strategy, running them in turn each round so they share the machine's noise."""
    for run in runs.values():
        run()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _locked(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


@pytest.mark.parametrize(("rows", "files"), [(1_000_000, 4), (10_000_000, 10)], ids=["1M", "10M"])
def test_attach_strategies(tmp_path: Path, rows: int, files: int) -> None:
    paths = _write(tmp_path, rows, files)
    names = [str(p) for p in paths]
    figures: dict[str, float] = {}

    plain = duckdb.connect(config={"threads": THREADS})
    view = duckdb.connect(config={"threads": THREADS})
    view.execute("SET allowed_paths = ?", [names])
    view.read_parquet(names).create_view("transactions")
    _locked(view)
    dataset = duckdb.connect(config={"threads": THREADS})
    dataset.register("transactions", ds.dataset(names, format="parquet"))
    _locked(dataset)
    loaded = ds.dataset(names, format="parquet").to_table()
    arrow = duckdb.connect(config={"threads": THREADS})
    arrow.register("transactions", loaded)
    _locked(arrow)

    relations = {"transactions": attach.RelationSource.parquet(paths)}
    limits = engine.ExecLimits(threads=THREADS, memory_mb=2048, max_rows=10_000, timeout_s=120)

    def config(reuse: bool) -> engine.EngineConfig:
        return engine.EngineConfig(workers=2, threads=THREADS, data_roots=(tmp_path,), reuse_databases=reuse,
                                   scratch_dir=tmp_path / f"scratch-{reuse}", max_memory_mb=2048,
                                   address_space_overhead_mb=3072)

    with engine.Engine(config(True)) as warm, engine.Engine(config(False)) as fresh:
        figures = _interleaved({
            "plain read_parquet (persistent connection)":
                lambda: plain.execute(GROUP_BY.replace("transactions", f"read_parquet({names!r})")).fetchall(),
            "read_parquet view + allowed_paths, locked": lambda: view.execute(GROUP_BY).fetchall(),
            "register(pyarrow.dataset), locked": lambda: dataset.execute(GROUP_BY).fetchall(),
            "in-memory Arrow table, locked (load excluded)": lambda: arrow.execute(GROUP_BY).fetchall(),
            "engine, warm database for the grant (end to end)": lambda: warm.execute(GROUP_BY, relations, limits),
            "engine, fresh database per query (end to end)": lambda: fresh.execute(GROUP_BY, relations, limits),
            "engine, trivial query, warm (end to end)":
                lambda: warm.execute("SELECT 1 AS one FROM transactions LIMIT 1", relations, limits),
        }, rounds=9)
    figures["load the files into Arrow (once per query if attached that way)"] = statistics.median(
        _timed(lambda: ds.dataset(names, format="parquet").to_table()) for _ in range(3))

    base = figures["plain read_parquet (persistent connection)"]
    print(f"\n{rows:,} rows in {files} files, {THREADS} threads, median of 9 interleaved rounds:")
    for name, seconds in figures.items():
        print(f"  {name:<66} {seconds * 1000:9.1f} ms  {seconds / base:5.2f}x")
    assert figures["engine, warm database for the grant (end to end)"] <= 1.3 * base + 0.02
