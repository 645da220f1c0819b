"""Data a store lost despite everything: found and re-extracted when `up` restarts the AWS endpoint.

S3 in Lite is on disk (:mod:`trace_core.lite.s3_store`), so this only matters
when the files went anyway (deleted by hand, a disk that failed, an endpoint the
user runs). Postgres still lists the versions; the availability check finds the
ones the store cannot serve, and chain sync re-extracts their ranges instead of
calling the job done (docs/decisions/1303-durable-lite.md).
"""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from trace_core import aws
from trace_core.chainsync import jobs
from trace_core.datasets import availability, objectstore
from trace_core.settings import Settings


def datasets_store(settings: Settings) -> objectstore.S3ObjectStore:
    """The datasets bucket at the stack's (or the configured) AWS endpoint."""
    return objectstore.S3ObjectStore(aws.s3_client(settings), settings.datasets_bucket)


def unreadable(settings: Settings) -> list[availability.Unreadable]:
    """Every committed, not superseded dataset version the store no longer holds in full."""
    with psycopg.connect(settings.database_url or "", row_factory=dict_row) as conn:
        return availability.unreadable_versions(conn, datasets_store(settings))


def recover(settings: Settings) -> list[availability.Unreadable]:
    """Re-extract the ranges of every chain_sync job whose versions the store lost; returns those versions."""
    with psycopg.connect(settings.database_url or "", row_factory=dict_row) as conn:
        return jobs.recover_lost_versions(conn, datasets_store(settings))
