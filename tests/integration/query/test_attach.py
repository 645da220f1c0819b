"""Trusted attach through the real engine: range files as one relation, pinning, Arrow tables, exact file access."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trace_core.query import attach, engine, errors

from tests.fixtures.query import dataset
from tests.integration.query import conftest


def test_a_dataset_spanning_many_ranges_is_one_relation(query_engine: engine.Engine, world: conftest.World) -> None:
    # GIVEN blocks committed as four range files
    assert len(world.files["blocks"]) == 4
    # WHEN one query reads the relation THEN it sees every range as one table
    result = query_engine.execute("SELECT count(*), min(number), max(number) FROM blocks", world.relations("blocks"))
    assert result.rows() == [(dataset.BLOCKS, 0, dataset.BLOCKS - 1)]


def test_a_query_sees_exactly_the_pinned_files(query_engine: engine.Engine, world: conftest.World,
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    # GIVEN a grant resolved to the first two ranges of blocks (its pinned versions)
    pinned = attach.RelationSource.parquet(world.files["blocks"][:2])
    # WHEN a newer version commits into the same directory before the query runs
    newer = world.files["blocks"][0].parent / "99999900_to_99999999.parquet"
    pq.write_table(dataset.table("blocks", [{**world.chain.blocks[0], "number": 99_999_900}]), newer)
    try:
        result = query_engine.execute("SELECT count(*), max(number) FROM blocks", {"blocks": pinned})
    finally:
        newer.unlink()
    # THEN the query sees exactly the pinned ranges, not the new file
    assert result.rows() == [(2 * dataset.RANGE, 2 * dataset.RANGE - 1)]


def test_arrow_and_parquet_relations_join(query_engine: engine.Engine, world: conftest.World) -> None:
    # GIVEN hot rows as an Arrow table beside cold Parquet blocks
    hot = pa.table({"number": [5, 6, 7], "label": ["a", "b", "c"]})
    relations = {**world.relations("blocks"), "hot": attach.RelationSource.arrow(hot)}
    # WHEN both are queried together THEN they join like any two relations
    result = query_engine.execute("SELECT h.label, b.miner FROM hot AS h JOIN blocks AS b USING (number) ORDER BY 1",
                                  relations)
    miners = {b["number"]: b["miner"] for b in world.chain.blocks}
    assert result.rows() == [("a", miners[5]), ("b", miners[6]), ("c", miners[7])]


def test_only_the_granted_files_are_readable_with_the_gate_off(raw_engine: engine.Engine,
                                                               world: conftest.World) -> None:
    relations = world.relations("blocks")
    # GIVEN a granted file, read by path without the gate: allowed (it is granted data anyway)
    granted = raw_engine.execute(f"SELECT count(*) FROM read_parquet('{world.files['blocks'][0]}')", relations)
    assert granted.rows() == [(dataset.RANGE,)]
    # WHEN an ungranted version in the same cache, or a granted file of a relation not attached, is read
    for path in (world.other, world.files["transactions"][0]):
        with pytest.raises(errors.QueryFailedError) as info:
            raw_engine.execute(f"SELECT * FROM read_parquet('{path}')", relations)
        # THEN DuckDB refuses it
        assert "disabled by configuration" in str(info.value)


def test_attach_failures_name_the_relation_not_the_cache_path(query_engine: engine.Engine,
                                                             world: conftest.World) -> None:
    # GIVEN a "verified" file that is not Parquet at all
    broken = world.data_root / "broken" / "00000000_to_00000100.parquet"
    broken.parent.mkdir(exist_ok=True)
    broken.write_bytes(b"not parquet")
    # WHEN attached THEN the caller gets InvalidRelationError, and the message hides the cache layout
    with pytest.raises(errors.InvalidRelationError) as info:
        query_engine.execute("SELECT 1", {"blocks": attach.RelationSource.parquet([broken])})
    assert "<blocks[0]>" in str(info.value)
    assert str(broken) not in str(info.value)


def test_files_with_different_schemas_are_an_attach_error(query_engine: engine.Engine,
                                                          world: conftest.World) -> None:
    odd = world.data_root / "odd" / "00000100_to_00000200.parquet"
    odd.parent.mkdir(exist_ok=True)
    pq.write_table(pa.table({"number": ["not a number"]}), odd)
    relation = attach.RelationSource.parquet([world.files["blocks"][0], odd])
    with pytest.raises((errors.InvalidRelationError, errors.QueryFailedError)):
        query_engine.execute("SELECT sum(number) FROM blocks", {"blocks": relation})


def test_files_outside_the_data_roots_never_reach_a_worker(query_engine: engine.Engine,
                                                           world: conftest.World) -> None:
    outside = world.root / "elsewhere.parquet"
    pq.write_table(pa.table({"a": [1]}), outside)
    with pytest.raises(errors.InvalidRelationError, match="data roots"):
        query_engine.execute("SELECT * FROM t", {"t": attach.RelationSource.parquet([outside])})
