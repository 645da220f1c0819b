"""A LISTEN connection that survives: reconnects with backoff and probes an idle connection.

Used by pgqueue (message wake-ups) and the Lite host (outbox wake-ups). It only
ever shortens waits: its users must also poll on a bounded interval, because a
notification can be lost while the connection is down (pg-boss #850,
https://github.com/timgit/pg-boss/issues/850). After every (re)connect it calls
``on_notify(None)`` so users look for work they may have missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

IDLE_PROBE_SECONDS = 5.0


class Listener:
    """LISTEN on ``channel`` in a daemon thread; ``on_notify(payload or None)`` per notification."""

    def __init__(
        self,
        conninfo: str,
        channel: str,
        on_notify: Callable[[str | None], None],
        *,
        application_name: str,
        connect: Callable[[], psycopg.Connection[Any]] | None = None,
        max_backoff: float = 1.0,
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._on_notify = on_notify
        self._application_name = application_name
        self._connect = connect or self._default_connect
        self._max_backoff = max_backoff
        self._closed = threading.Event()
        self._listening = threading.Event()
        self._backend_pid: int | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._lock:
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._loop, name=f"listen-{self._channel}", daemon=True)
                self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    @property
    def backend_pid(self) -> int | None:
        return self._backend_pid if self._listening.is_set() else None

    def wait_listening(self, timeout: float) -> bool:
        return self._listening.wait(timeout)

    def _default_connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self._conninfo, autocommit=True, application_name=self._application_name, connect_timeout=5
        )

    def _loop(self) -> None:
        backoff = 0.1
        while not self._closed.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._backend_pid = conn.info.backend_pid
                    self._listening.set()
                    backoff = 0.1
                    self._on_notify(None)  # anything sent while we were away: look now
                    idle = 0.0
                    while not self._closed.is_set():
                        got = False
                        for note in conn.notifies(timeout=0.5):
                            got = True
                            self._on_notify(note.payload or None)
                        idle = 0.0 if got else idle + 0.5
                        if idle >= IDLE_PROBE_SECONDS:
                            # A connection that died without a word (no RST) would wait forever: probe it.
                            conn.execute("SELECT 1")
                            idle = 0.0
            except psycopg.Error as exc:
                if not self._closed.is_set():
                    text = str(exc).strip().splitlines()
                    log.warning("LISTEN %s: connection lost (%s); users poll until it is back",
                                self._channel, text[0] if text else type(exc).__name__)
            finally:
                self._listening.clear()
            self._closed.wait(backoff)
            backoff = min(backoff * 2, self._max_backoff)
