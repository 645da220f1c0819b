"""How fast each way of attaching Parquet answers a group-by (docs/decisions/0501-query-attach.md).

Slow (not in ``make test``): ``.venv/bin/pytest -m slow -s tests/integration/query/test_attach_speed.py``.
Prints the medians and checks the engine's choice (``read_parquet`` views over
exactly the granted files, external access off, locked, a fresh database per
query in a worker process) stays within 1.3x of plain DuckDB on the same files.
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


def _median(run: Callable[[], object], repeat: int = 7) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


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
    figures["plain read_parquet (persistent connection)"] = _median(
        lambda: plain.execute(GROUP_BY.replace("transactions", f"read_parquet({names!r})")).fetchall())

    view = duckdb.connect(config={"threads": THREADS})
    view.execute("SET allowed_paths = ?", [names])
    view.read_parquet(names).create_view("transactions")
    _locked(view)
    figures["read_parquet view + allowed_paths, locked"] = _median(lambda: view.execute(GROUP_BY).fetchall())

    dataset = duckdb.connect(config={"threads": THREADS})
    dataset.register("transactions", ds.dataset(names, format="parquet"))
    _locked(dataset)
    figures["register(pyarrow.dataset), locked"] = _median(lambda: dataset.execute(GROUP_BY).fetchall())

    loaded = ds.dataset(names, format="parquet").to_table()
    arrow = duckdb.connect(config={"threads": THREADS})
    arrow.register("transactions", loaded)
    _locked(arrow)
    figures["in-memory Arrow table, locked (load excluded)"] = _median(lambda: arrow.execute(GROUP_BY).fetchall())
    figures["  load into Arrow once"] = _median(lambda: ds.dataset(names, format="parquet").to_table(), repeat=3)

    cfg = engine.EngineConfig(workers=2, threads=THREADS, data_roots=(tmp_path,), scratch_dir=tmp_path / "scratch",
                              max_memory_mb=2048, address_space_overhead_mb=3072)
    relations = {"transactions": attach.RelationSource.parquet(paths)}
    limits = engine.ExecLimits(threads=THREADS, memory_mb=2048, max_rows=10_000, timeout_s=120)
    with engine.Engine(cfg) as eng:
        figures["engine: worker, fresh locked DB, views (end to end)"] = _median(
            lambda: eng.execute(GROUP_BY, relations, limits))
        figures["engine: trivial query (end to end)"] = _median(
            lambda: eng.execute("SELECT 1 AS one FROM transactions LIMIT 1", relations, limits), repeat=21)

    base = figures["plain read_parquet (persistent connection)"]
    print(f"\n{rows:,} rows in {files} files, {THREADS} threads, median of 7:")
    for name, seconds in figures.items():
        print(f"  {name:<55} {seconds * 1000:9.1f} ms  {seconds / base:5.2f}x")
    assert figures["engine: worker, fresh locked DB, views (end to end)"] <= 1.3 * base + 0.02
