"""What the dispatcher's Lambda handlers need, built once per process on first use (never at import).

Tests (and the Lite host) pass their own with :func:`injected`.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator

from psycopg_pool import ConnectionPool

from trace_core import settings as settings_mod
from trace_core.db import conninfo
from trace_core.db import pool as pool_mod
from trace_core.queue import base


class Deps:
    """Settings, the connection pool and (built lazily, for the drainer only) the queue driver."""

    def __init__(
        self, settings: settings_mod.Settings, pool: ConnectionPool, driver: base.QueueDriver | None = None
    ) -> None:
        self.settings = settings
        self.pool = pool
        self._driver = driver

    @functools.cached_property
    def driver(self) -> base.QueueDriver:
        if self._driver is not None:
            return self._driver
        from trace_core.queue import factory  # only the drainer needs it: keep the API's cold start small

        return factory.driver_for(self.settings)


_override: Deps | None = None


@functools.cache
def _build() -> Deps:
    settings = settings_mod.get()
    return Deps(settings, pool_mod.get(conninfo.resolve(settings), max_size=settings.db_pool_max))


_thread = threading.local()


def get() -> Deps:
    """The dependencies injected for this thread, else for the process, else built from settings on first call."""
    here: Deps | None = getattr(_thread, "deps", None)
    if here is not None:
        return here
    return _override if _override is not None else _build()


@contextlib.contextmanager
def injected(deps: Deps) -> Iterator[Deps]:
    """Use ``deps`` for every handler call inside the block."""
    global _override  # noqa: PLW0603 - the process-wide override, swapped for the block only
    previous, _override = _override, deps
    try:
        yield deps
    finally:
        _override = previous


@contextlib.contextmanager
def injected_in_thread(deps: Deps) -> Iterator[Deps]:
    """Use ``deps`` for handler calls this thread makes inside the block (the Lite host runs each
    function with its own settings, in threads that serve other functions meanwhile)."""
    previous = getattr(_thread, "deps", None)
    _thread.deps = deps
    try:
        yield deps
    finally:
        _thread.deps = previous
