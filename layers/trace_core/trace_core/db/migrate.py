"""Versioned SQL migrations, applied idempotently and safely from several processes.

Files are ``migrations/NNNN_what.sql``. Each runs in its own transaction with
its row in ``state.schema_migrations``: a failing migration leaves the schema at
the previous version. A session advisory lock serialises concurrent migrators;
the second one finds the work done and applies nothing. An applied migration
whose file changed is refused (its checksum no longer matches).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import re

import psycopg

from trace_core import errors

# Any constant works; it only has to be the same for every Trace process.
ADVISORY_LOCK_KEY = 0x7472616365  # "trace"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """Every migration shipped in the package, in version order."""
    folder = importlib.resources.files("trace_core.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise errors.MigrationError("two migrations share a version number", versions=versions)
    return found


_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS state;
CREATE TABLE IF NOT EXISTS state.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


def apply(url: str, migrations: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations to the database at ``url``; returns the versions applied."""
    todo = available() if migrations is None else migrations
    applied_now: list[int] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            with conn.transaction():
                conn.execute(_BOOTSTRAP)
            done = {
                row[0]: row[1]
                for row in conn.execute("SELECT version, checksum FROM state.schema_migrations").fetchall()
            }
            for migration in todo:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise errors.MigrationError(
                            f"migration {migration.version:04d}_{migration.name} changed after it was applied",
                            version=migration.version,
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        conn.execute(
                            "INSERT INTO state.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.Error as exc:
                    raise errors.MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed: {exc}",
                        version=migration.version,
                    ) from exc
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now


def current_version(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(max(version), 0) FROM state.schema_migrations"
        ).fetchone()
        return int(row[0]) if row else 0
