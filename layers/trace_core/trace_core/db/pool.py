"""One psycopg connection pool per process and database URL.

Created lazily on first use (never at import time) and reused by every handler
invocation that lands on a warm Lambda or a long-running service.
"""

from __future__ import annotations

import threading

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

_pools: dict[str, ConnectionPool] = {}
_lock = threading.Lock()


def get(url: str, *, max_size: int = 10) -> ConnectionPool:
    """The process-wide pool for ``url`` (opened on first call)."""
    with _lock:
        pool = _pools.get(url)
        if pool is None or pool.closed:
            pool = ConnectionPool(
                url,
                min_size=1,
                max_size=max_size,
                kwargs={"row_factory": dict_row, "autocommit": False},
                open=True,
                name="trace",
            )
            _pools[url] = pool
        return pool


def close_all() -> None:
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
