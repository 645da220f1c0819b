"""The hardened engine with the gate switched off: its settings, limits and process model hold on their own."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from trace_core.query import engine, errors, landlock

from tests.integration.query import conftest

SMALL = engine.ExecLimits(timeout_s=10, memory_mb=256, threads=2, max_rows=1000)


def _settings(eng: engine.Engine, limits: engine.ExecLimits = SMALL) -> dict[str, str]:
    result = eng.execute("SELECT name, value FROM duckdb_settings()", {}, limits)
    return dict(result.rows())


@pytest.fixture(scope="module")
def faulty_engine(world: conftest.World) -> Iterator[engine.Engine]:
    """One worker, small ceilings and short waits: for timeouts, kills, memory and busy tests."""
    cfg = conftest.config(world, workers=1, max_memory_mb=256, address_space_overhead_mb=1280, kill_grace_s=1.0,
                          acquire_timeout_s=1.0, scratch_dir=world.root / "scratch" / "faulty")
    with engine.Engine(cfg) as eng:
        yield eng


@pytest.fixture
def one_worker_engine(world: conftest.World) -> Iterator[engine.Engine]:
    """One worker with the production address-space overhead: the faulty engine's small one leaves a warm
    database's second connection too little room to start DuckDB's threads (exit -11 or "can't start new
    thread", about 1 run in 2 on 2 cores)."""
    cfg = conftest.config(
        world,
        workers=1,
        address_space_overhead_mb=engine.EngineConfig.model_fields["address_space_overhead_mb"].default,
        scratch_dir=world.root / "scratch" / "one",
    )
    with engine.Engine(cfg) as eng:
        yield eng


def test_a_query_returns_arrow_rows_and_timings(query_engine: engine.Engine, world: conftest.World) -> None:
    # GIVEN the blocks relation WHEN a query runs THEN the rows come back exactly, with columns and timings
    result = query_engine.execute("SELECT count(*) AS n, max(number) AS top FROM blocks", world.relations("blocks"))
    assert result.columns == ["n", "top"]
    assert result.rows() == [(len(world.chain.blocks), len(world.chain.blocks) - 1)]
    assert not result.truncated
    assert result.result_bytes > 0 and 0 < result.execution_s <= result.duration_s


def test_settings_hold_and_are_locked_with_the_gate_off(raw_engine: engine.Engine) -> None:
    # GIVEN a query that never went through the gate WHEN it reads the settings it runs under
    limits = engine.ExecLimits(timeout_s=10, memory_mb=300, threads=1, max_temp_mb=100)
    settings = _settings(raw_engine, limits)
    # THEN external access is off, configuration locked, extensions cannot load, and the limits are the query's
    assert settings["enable_external_access"] == "false"
    assert settings["lock_configuration"] == "true"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["allow_community_extensions"] == "false"
    assert settings["allow_unsigned_extensions"] == "false"
    assert settings["python_enable_replacements"] == "false"
    assert settings["threads"] == "1"
    # the gate writes an explicit NULLS LAST / ASC back as the default: the default is pinned to them
    assert settings["default_null_order"] == "NULLS_LAST"
    assert settings["default_order"] == "ASC"
    assert settings["memory_limit"] in {"286.1 MiB", "300.0 MB"}
    assert settings["max_temp_directory_size"] in {"95.3 MiB", "100.0 MB"}


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SET enable_external_access = true", "configuration has been locked"),
        ("SET lock_configuration = false", "configuration has been locked"),
        ("SET memory_limit = '100GB'", "configuration has been locked"),
        ("SET allowed_directories = ['/']", "configuration has been locked"),
        ("RESET threads", "configuration has been locked"),
        ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
        ("INSTALL httpfs", ""),
        ("LOAD httpfs", ""),
        ("ATTACH '/tmp/trace-attach-test.db' AS x", "disabled by configuration"),
    ],
)
def test_hardening_refuses_without_the_gate_or_statement_check(raw_engine: engine.Engine, sql: str,
                                                                expected: str) -> None:
    # GIVEN the engine with only DuckDB's settings standing WHEN a forbidden statement runs THEN DuckDB refuses it
    with pytest.raises(errors.QueryFailedError) as info:
        raw_engine.execute(sql, {}, SMALL)
    assert expected.lower() in str(info.value).lower()
    assert not Path("/tmp/trace-attach-test.db").exists()


def test_the_engine_itself_runs_only_one_select(query_engine: engine.Engine) -> None:
    # GIVEN the service's engine WHEN a non-SELECT or two statements arrive without the gate
    # THEN DuckDB's parser refuses them
    for sql in ("COPY (SELECT 1) TO 'x.csv'", "SELECT 1; SELECT 2", "SET VARIABLE x = 1", "PRAGMA version"):
        with pytest.raises(errors.QueryFailedError) as info:
            query_engine.execute(sql, {}, SMALL)
        assert info.value.details["kind"] == "not_select"


def test_each_query_gets_a_fresh_database_and_temp_directory(raw_engine: engine.Engine) -> None:
    # GIVEN one query that leaves state behind (a variable, a table) and notes its temp directory
    first = raw_engine.execute("SELECT current_setting('temp_directory') AS t", {}, SMALL).rows()[0][0]
    raw_engine.execute("SET VARIABLE smuggled = 42", {}, SMALL)
    raw_engine.execute("CREATE TABLE left_behind AS SELECT 1 AS x", {}, SMALL)
    # WHEN later queries run
    second = raw_engine.execute("SELECT current_setting('temp_directory') AS t", {}, SMALL).rows()[0][0]
    # THEN nothing survives: no variable, no table, and each temp directory is gone after its query
    assert raw_engine.execute("SELECT getvariable('smuggled') AS v", {}, SMALL).rows() == [(None,)]
    with pytest.raises(errors.QueryFailedError, match="left_behind"):
        raw_engine.execute("SELECT * FROM left_behind", {}, SMALL)
    assert first != second
    assert not Path(first).exists()


def test_a_repeated_grant_reuses_its_locked_database(one_worker_engine: engine.Engine, world: conftest.World) -> None:
    # GIVEN one worker and the same grant queried twice
    sql = "SELECT current_setting('temp_directory') AS t, current_setting('lock_configuration') AS locked"
    first = one_worker_engine.execute(sql, world.relations("blocks"), SMALL).rows()
    second = one_worker_engine.execute(sql, world.relations("blocks"), SMALL).rows()
    # THEN the second query ran on the same locked database (its own connection), still locked
    assert first == second and first[0][1] is True
    # WHEN another grant comes THEN it gets a fresh database and the warm one is discarded with its directory
    third = one_worker_engine.execute(sql, world.relations("logs"), SMALL).rows()
    assert third[0][0] != first[0][0]
    assert not Path(first[0][0]).exists()


def test_rows_are_capped_with_truncation_reported(query_engine: engine.Engine) -> None:
    sql = "SELECT range AS i FROM range(100)"
    capped = query_engine.execute(sql, {}, engine.ExecLimits(max_rows=10))
    assert capped.truncated and capped.rows() == [(i,) for i in range(10)]
    exact = query_engine.execute(sql, {}, engine.ExecLimits(max_rows=100))
    assert not exact.truncated and exact.table.num_rows == 100
    none = query_engine.execute(sql, {}, engine.ExecLimits(max_rows=0))
    assert none.truncated and none.table.num_rows == 0 and none.columns == ["i"]


def test_result_bytes_are_capped(query_engine: engine.Engine) -> None:
    sql = "SELECT repeat('x', 1000) AS s FROM range(1000)"
    result = query_engine.execute(sql, {}, engine.ExecLimits(max_rows=10_000, max_result_bytes=20_000))
    assert result.truncated
    assert 1 <= result.table.num_rows < 1000 and result.table.nbytes <= 20_000


def test_exact_values_survive_the_trip(query_engine: engine.Engine, world: conftest.World) -> None:
    # GIVEN uint256-sized values stored as DECIMAL(38,0) WHEN summed THEN the answer is exact
    result = query_engine.execute("SELECT sum(value) AS s, max(value) AS m FROM transactions",
                                  world.relations("transactions"))
    total = sum(t["value"] for t in world.chain.transactions)
    assert result.rows() == [(Decimal(total), max(t["value"] for t in world.chain.transactions))]
    assert total > 2**63


def test_timeout_interrupts_and_the_pool_keeps_serving(query_engine: engine.Engine) -> None:
    started = time.monotonic()
    with pytest.raises(errors.QueryTimeoutError) as info:
        query_engine.execute("SELECT sum(range) FROM range(100000000000)", {}, engine.ExecLimits(timeout_s=1))
    assert time.monotonic() - started < 1 + query_engine.config.kill_grace_s + 1
    assert info.value.details["timeout_s"] == 1
    assert query_engine.execute("SELECT 42 AS x", {}).rows() == [(42,)]


def test_a_worker_that_ignores_the_watchdog_is_killed_and_replaced(faulty_engine: engine.Engine) -> None:
    # GIVEN the only worker is frozen (it cannot answer, not even to the interrupt)
    [pid] = faulty_engine.pids
    os.kill(pid, signal.SIGSTOP)
    try:
        # WHEN a query is sent THEN after its time limit and the grace period the worker is killed: a timeout error
        started = time.monotonic()
        with pytest.raises(errors.QueryTimeoutError, match="killed"):
            faulty_engine.execute("SELECT 1", {}, engine.ExecLimits(timeout_s=0.5, memory_mb=64))
        assert time.monotonic() - started < 0.5 + faulty_engine.config.kill_grace_s + 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # never leave a frozen process behind
    # AND a fresh worker takes its place
    deadline = time.monotonic() + 30
    while faulty_engine.pids in ([], [pid]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert faulty_engine.execute("SELECT 7 AS x", {}).rows() == [(7,)]
    assert pid not in faulty_engine.pids


def test_memory_beyond_duckdbs_limit_is_stopped(faulty_engine: engine.Engine) -> None:
    # GIVEN a buffer-managed aggregation over its DuckDB memory limit THEN QueryMemoryError, engine serving
    with pytest.raises(errors.QueryMemoryError) as info:
        faulty_engine.execute("SELECT length(list(range)::VARCHAR) FROM range(30000000)", {},
                              engine.ExecLimits(memory_mb=64, max_temp_mb=0))
    assert info.value.details["memory_mb"] == 64
    assert faulty_engine.execute("SELECT 1 AS x", {}).rows() == [(1,)]


def test_memory_outside_duckdbs_buffer_manager_is_stopped_by_the_address_space_limit(
    faulty_engine: engine.Engine,
) -> None:
    # GIVEN one 1.5 GB string, which DuckDB's memory_limit does not see, under a 1.5 GB address-space ceiling
    with pytest.raises(errors.QueryMemoryError):
        faulty_engine.execute("SELECT length(repeat('x', 1500000000)) AS n", {},
                              engine.ExecLimits(memory_mb=128, timeout_s=20))
    assert faulty_engine.execute("SELECT 2 AS x", {}).rows() == [(2,)]


def test_spilling_is_bounded_by_the_temp_limit(faulty_engine: engine.Engine) -> None:
    # GIVEN a sort bigger than its 64 MB memory limit
    sql = "SELECT count(*) FROM (SELECT md5(range::VARCHAR) AS h FROM range(1500000) ORDER BY h)"
    # WHEN it may spill 200 MB THEN it completes; WHEN only 1 MB THEN it stops with a clear memory error
    assert faulty_engine.execute(sql, {}, engine.ExecLimits(memory_mb=64, max_temp_mb=200)).rows() == [(1_500_000,)]
    with pytest.raises(errors.QueryMemoryError, match="spill files") as info:
        faulty_engine.execute(sql, {}, engine.ExecLimits(memory_mb=64, max_temp_mb=1))
    assert info.value.details["max_temp_mb"] == 1


def test_a_killed_idle_worker_is_replaced(query_engine: engine.Engine) -> None:
    # GIVEN a worker killed from outside while idle (and fully gone: all its threads exited)
    victim = query_engine.pids[0]
    os.kill(victim, signal.SIGKILL)
    _wait_dead(victim)
    # WHEN queries keep coming THEN each is answered, and the dead worker is replaced
    for _ in range(4):
        assert query_engine.execute("SELECT 3 AS x", {}).rows() == [(3,)]
    assert victim not in query_engine.pids


def _wait_dead(pid: int) -> None:
    """Until the process is a zombie with no thread left (a killed leader shows Z while its threads still exit)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            if "zombie" in status.lower() and "\nThreads:\t1\n" in status:
                return
        except FileNotFoundError:
            return
        time.sleep(0.01)


def test_workers_run_queries_in_parallel(raw_engine: engine.Engine) -> None:
    # GIVEN two workers WHEN two one-second queries start together THEN both finish in about one second
    results: list[float] = []

    def run() -> None:
        results.append(raw_engine.execute("SELECT sleep_ms(1000) AS s", {}, SMALL).duration_s)

    started = time.monotonic()
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    assert time.monotonic() - started < 1.9


def test_no_free_worker_is_a_busy_error(faulty_engine: engine.Engine) -> None:
    # GIVEN the single worker is busy for two seconds WHEN another query waits longer than acquire_timeout_s
    busy = threading.Thread(target=faulty_engine.execute, args=("SELECT sleep_ms(2000)", {}, SMALL))
    busy.start()
    time.sleep(0.2)
    try:
        with pytest.raises(errors.QueryBusyError):
            faulty_engine.execute("SELECT 1", {})
    finally:
        busy.join()


def test_limits_over_the_engines_ceilings_are_refused(faulty_engine: engine.Engine) -> None:
    with pytest.raises(errors.InvalidLimitsError) as info:
        faulty_engine.execute("SELECT 1", {}, engine.ExecLimits(memory_mb=100_000))
    assert info.value.details["field"] == "memory_mb"
    with pytest.raises(ValueError, match="timeout_s"):
        engine.ExecLimits(timeout_s=0)


def test_workers_are_confined_and_see_no_secrets_in_their_environment(query_engine: engine.Engine) -> None:
    # GIVEN the parent holds a canary in its environment THEN no worker's environment has it, or any AWS/TRACE key
    for pid in query_engine.pids:
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        assert os.environ[conftest.CANARY_ENV] not in environ
        assert "AWS_" not in environ and "TRACE_" not in environ
    if landlock.abi_version() > 0:
        assert query_engine.sandbox.startswith("landlock-abi-")


def test_a_closed_engine_refuses_queries_and_leaves_no_process(world: conftest.World) -> None:
    eng = engine.Engine(conftest.config(world, workers=1, landlock="off",
                                        scratch_dir=world.root / "scratch" / "closing")).start()
    assert eng.sandbox.startswith("none (") and "switched off" in eng.sandbox
    pids = eng.pids
    eng.close()
    with pytest.raises(errors.EngineClosedError):
        eng.execute("SELECT 1", {})
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert not any((world.root / "scratch" / "closing").glob("w*"))
