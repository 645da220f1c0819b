"""A circuit breaker per principal: whoever keeps crashing sandbox workers is refused for a while.

A query that kills its worker (a DuckDB crash the gate could not foresee) costs
a worker restart and the queries that worker would have served. After
``crashes`` such crashes within ``window_s`` the principal's queries are
refused for ``cooldown_s`` (429 ``circuit_open``, with Retry-After), before the
gate runs. State is per process and in memory: a restart forgets it, which
only gives the principal the same few crashes again.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable

from trace_core.query.service import errors


class CrashBreaker:
    """Counts worker crashes per principal and opens the circuit past the threshold. Thread-safe."""

    def __init__(self, *, crashes: int, window_s: float, cooldown_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.crashes = crashes
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: dict[str, collections.deque[float]] = {}
        self._open_until: dict[str, float] = {}

    def check(self, principal: str) -> None:
        """Raise CircuitOpenError if ``principal`` is being refused."""
        with self._lock:
            until = self._open_until.get(principal)
            now = self._clock()
            if until is None:
                return
            if now >= until:
                del self._open_until[principal]
                return
        retry = max(1, math.ceil(until - now))
        raise errors.CircuitOpenError(
            f"your recent queries crashed the query engine {self.crashes} times within {self.window_s:g}s; "
            f"queries are refused for {self.cooldown_s:g}s: retry after {retry}s",
            retry_after_s=retry, crashes=self.crashes,
        )

    def record_crash(self, principal: str) -> bool:
        """Count one crash; True when this one opened the circuit."""
        with self._lock:
            now = self._clock()
            recent = self._recent.setdefault(principal, collections.deque())
            recent.append(now)
            while recent and recent[0] <= now - self.window_s:
                recent.popleft()
            if len(recent) < self.crashes:
                return False
            recent.clear()
            self._open_until[principal] = now + self.cooldown_s
            return True
