"""One psycopg connection pool per process and database URL.

Created lazily on first use (never at import time) and reused by every handler
invocation that lands on a warm Lambda or a long-running service.

Every pool checks a connection before handing it out (one empty round trip), so
a Postgres restart costs no failed request: the first check that finds a
connection dead also sweeps the other idle ones, and the caller gets a fresh
connection (decision 1505).
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

_pools: dict[str, ConnectionPool] = {}
_lock = threading.Lock()


def open_pool(url: str, *, max_size: int, name: str, kwargs: dict[str, Any]) -> ConnectionPool:
    """An open pool of 1..``max_size`` connections that never hands out a connection a restart killed."""
    pool: ConnectionPool | None = None

    def check(conn: psycopg.Connection[Any]) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            # The server went away under this connection, so it did under its idle peers too:
            # drop them all now rather than meet them one by one (each with the pool's backoff).
            if pool is not None:
                threading.Thread(target=pool.check, name=f"{name}-sweep", daemon=True).start()
            raise

    pool = ConnectionPool(url, min_size=1, max_size=max_size, kwargs=kwargs, check=check, open=True, name=name)
    return pool


def get(url: str, *, max_size: int = 10) -> ConnectionPool:
    """The process-wide pool for ``url`` (opened on first call)."""
    with _lock:
        pool = _pools.get(url)
        if pool is None or pool.closed:
            pool = open_pool(url, max_size=max_size, name="trace",
                             kwargs={"row_factory": dict_row, "autocommit": False})
            _pools[url] = pool
        return pool


def close_all() -> None:
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
