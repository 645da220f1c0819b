"""Helpers for the sink's integration tests: a clean module database, publishing, and reading what landed."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from trace_core.db import pool as pool_mod
from trace_core.sink import service, store

ROOT = Path(__file__).resolve().parents[3]
DEFINITION = "6c1f1d5e-2b8a-4f0e-9d3c-7a5b4e3f2d10"


def event(key: str, **fields: Any) -> dict[str, Any]:
    """A valid alert event record."""
    return {"dedupe_key": key, "alert_definition_id": DEFINITION, "event_time": "2026-01-01T00:00:00Z"} | fields


def pointer(batch_id: uuid.UUID | str, sink: str = "alert_events") -> str:
    return f'{{"batch_id":"{batch_id}","sink":"{sink}"}}'


@pytest.fixture
def clean(database_url: str) -> str:
    """The module's database with no batch, data row, outbox row or queue message left from another test."""
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE state.sink_batches, data.alert_events, data.sink_outputs, state.outbox, "
                     "state.queue_messages, state.queue_dead, state.task_attempts, state.tasks CASCADE")
    return database_url


@pytest.fixture
def pool(clean: str) -> ConnectionPool:
    return pool_mod.get(clean, max_size=6)


@pytest.fixture
def sink_store(pool: ConnectionPool) -> store.PostgresSinkStore:
    return store.PostgresSinkStore(pool)


@pytest.fixture
def publish(clean: str) -> Callable[..., uuid.UUID]:
    """Publish a batch through the real producer path and commit it."""

    def do(sink: str, records: Sequence[Any], **kwargs: Any) -> uuid.UUID:
        with psycopg.connect(clean) as conn:
            return service.publish(conn, sink, records, **kwargs)

    return do


@pytest.fixture
def stage_raw(clean: str) -> Callable[..., uuid.UUID]:
    """Stage records that skipped the producer's validation (older code, a manual edit): what the sink must refuse."""

    def do(records: Any, *, sink: str = "alert_events", batch_id: uuid.UUID | None = None,
           queue: str | None = None) -> uuid.UUID:
        batch_id = batch_id or uuid.uuid4()
        with psycopg.connect(clean) as conn:
            conn.execute(
                "INSERT INTO state.sink_batches (batch_id, sink, records, record_count) VALUES (%s, %s, %s, %s)",
                (batch_id, sink, Jsonb(records), len(records)),
            )
            if queue:
                conn.execute("INSERT INTO state.outbox (queue, payload) VALUES (%s, %s)",
                             (queue, Jsonb({"batch_id": str(batch_id), "sink": sink})))
        return batch_id

    return do


@pytest.fixture
def rows(clean: str) -> Callable[..., list[dict[str, Any]]]:
    """Rows of data.alert_events (default) or data.sink_outputs, oldest first."""

    def read(table: str = "alert_events") -> list[dict[str, Any]]:
        query = {"alert_events": "SELECT * FROM data.alert_events ORDER BY received_at, dedupe_key",
                 "sink_outputs": "SELECT * FROM data.sink_outputs ORDER BY output_id"}[table]
        with psycopg.connect(clean, row_factory=dict_row) as conn:
            return conn.execute(query).fetchall()

    return read


@pytest.fixture
def batch_row(clean: str) -> Callable[[uuid.UUID], dict[str, Any]]:
    def read(batch_id: uuid.UUID) -> dict[str, Any]:
        with psycopg.connect(clean, row_factory=dict_row) as conn:
            row = conn.execute("SELECT * FROM state.sink_batches WHERE batch_id = %s", (batch_id,)).fetchone()
        assert row is not None
        return row

    return read


def make_attempt(url: str) -> tuple[uuid.UUID, int]:
    """A task with one attempt (the producer a batch records as its provenance)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("INSERT INTO state.tasks (operator) VALUES ('alert_evaluate') RETURNING task_id").fetchone()
        assert row is not None
        conn.execute("INSERT INTO state.task_attempts (task_id, attempt, worker_id, lease_expires_at) "
                     "VALUES (%s, 1, 'test', now() + interval '1 minute')", (row[0],))
    return row[0], 1


def make_org(url: str, slug: str) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO state.orgs (slug, name) VALUES (%s, %s) "
            "ON CONFLICT (slug) DO UPDATE SET name = excluded.name RETURNING org_id",
            (slug, slug),
        ).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def outbox(clean: str) -> Callable[[], list[dict[str, Any]]]:
    def read() -> list[dict[str, Any]]:
        with psycopg.connect(clean, row_factory=dict_row) as conn:
            return conn.execute("SELECT queue, payload FROM state.outbox ORDER BY outbox_id").fetchall()

    return read
