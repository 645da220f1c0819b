from __future__ import annotations

import threading

import psycopg
import pytest
from trace_core import errors
from trace_core.db import migrate

EXPECTED_TABLES = {
    "orgs", "users", "roles", "jobs", "tasks", "task_attempts", "outbox", "dead_tasks",
    "datasets", "dataset_versions", "audit_log", "schema_migrations",
}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'state'")
        return {r[0] for r in rows}


def test_migrations_create_state_and_data_schemas(make_database):
    url = make_database(migrated=False)
    applied = migrate.apply(url)
    assert applied == [m.version for m in migrate.available()]
    assert _tables(url) >= EXPECTED_TABLES
    with psycopg.connect(url) as conn:
        schemas = {r[0] for r in conn.execute("SELECT schema_name FROM information_schema.schemata")}
    assert {"state", "data"} <= schemas


def test_rerunning_migrations_is_a_no_op(make_database):
    url = make_database(migrated=False)
    migrate.apply(url)
    before = migrate.current_version(url)
    assert migrate.apply(url) == []
    assert migrate.current_version(url) == before


def test_concurrent_migrators_apply_each_migration_once(make_database):
    # GIVEN an empty database WHEN four processes' worth of migrators race THEN each version applies once
    url = make_database(migrated=False)
    results: list[list[int]] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate.apply(url))
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in migrate.available()]
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM state.schema_migrations").fetchone()[0]
    assert count == len(migrate.available())


def test_failing_migration_leaves_previous_version(make_database):
    url = make_database(migrated=False)
    good = migrate.available()
    migrate.apply(url)
    broken = migrate.Migration(
        version=9999,
        name="broken",
        sql="CREATE TABLE state.half_done (id int); SELECT * FROM state.no_such_table;",
    )
    with pytest.raises(errors.MigrationError) as info:
        migrate.apply(url, [*good, broken])
    assert "9999_broken" in str(info.value)
    assert migrate.current_version(url) == good[-1].version
    assert "half_done" not in _tables(url)  # the failed migration's first statement rolled back


def test_edited_applied_migration_is_refused(make_database):
    url = make_database(migrated=False)
    first = migrate.available()[0]
    migrate.apply(url, [first])
    edited = migrate.Migration(first.version, first.name, first.sql + "\n-- edited\n")
    with pytest.raises(errors.MigrationError, match="changed after it was applied"):
        migrate.apply(url, [edited])


def test_migration_files_are_numbered_without_gaps():
    versions = [m.version for m in migrate.available()]
    assert versions == list(range(1, len(versions) + 1))
