"""Admission to the sandbox: per-principal concurrency limits and a fair queue.

Without it the engine's workers went to whoever asked first, so one principal
sending long queries on every worker made everyone else wait or get 503. Now:

- a principal runs at most ``per_principal`` queries at once, and may have at
  most ``queued_per_principal`` more waiting; past that it is refused at once
  (429 ``too_many_queries``) with the seconds until its earliest running query
  is likely to end (``retry_after_s``: twice the recent typical run time past its
  start, never past its deadline; the deadline while nothing has finished yet);
- when a slot frees, it goes to the waiting principal with the fewest running
  queries (then the longest waiting), so a light user is served before a heavy
  user's backlog;
- a request that waits ``max_wait_s`` without a slot is refused (503 ``busy``),
  also with ``retry_after_s``.

Slots equal the engine's workers, so an admitted query finds a worker free.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from trace_core.query.service import errors

# Requests waiting at once, over all principals: each holds a server thread while it waits
# (Starlette's pool has 40), so past this the wait is refused rather than starving token checks.
MAX_WAITING = 24


@dataclasses.dataclass(eq=False)
class _Waiter:
    principal: str
    seq: int


class Admission:
    """Grants sandbox slots fairly between principals. Thread-safe."""

    def __init__(self, *, slots: int, per_principal: int, queued_per_principal: int, max_wait_s: float,
                 run_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = slots
        self.per_principal = min(per_principal, slots)
        self.queued_per_principal = queued_per_principal
        self.max_wait_s = max_wait_s
        self.run_s = run_s  # a running query's longest possible run: the basis of Retry-After
        self._clock = clock
        self._cond = threading.Condition()
        self._running: dict[str, list[float]] = {}  # principal -> when each running query must end by
        self._typical_s: float | None = None  # moving average of recent run times
        self._waiting: list[_Waiter] = []
        self._seq = itertools.count()

    @contextmanager
    def slot(self, principal: str) -> Iterator[None]:
        """Hold a slot for ``principal`` while the block runs; raises the refusal to send otherwise."""
        ends_by = self._acquire(principal)
        try:
            yield
        finally:
            self._release(principal, ends_by)

    def _acquire(self, principal: str) -> float:
        with self._cond:
            running = len(self._running.get(principal, ()))
            waiting = sum(1 for w in self._waiting if w.principal == principal)
            if running + waiting >= self.per_principal + self.queued_per_principal:
                retry = self._retry_after(self._running.get(principal, []))
                raise errors.ConcurrencyLimitError(
                    f"you already have {running} queries running and {waiting} waiting (at most "
                    f"{self.per_principal} + {self.queued_per_principal}); retry after {retry}s",
                    retry_after_s=retry, running=running, waiting=waiting,
                )
            if len(self._waiting) >= MAX_WAITING:
                raise self._busy(0.0)
            waiter = _Waiter(principal, next(self._seq))
            self._waiting.append(waiter)
            started = self._clock()
            try:
                while self._next() is not waiter:
                    remaining = started + self.max_wait_s - self._clock()
                    if remaining <= 0:
                        raise self._busy(self.max_wait_s)
                    self._cond.wait(remaining)
            finally:
                self._waiting.remove(waiter)
                self._cond.notify_all()  # the next waiter in line may now be eligible
            ends_by = self._clock() + self.run_s
            self._running.setdefault(principal, []).append(ends_by)
            return ends_by

    def _release(self, principal: str, ends_by: float) -> None:
        with self._cond:
            took = max(0.0, self._clock() - (ends_by - self.run_s))
            self._typical_s = took if self._typical_s is None else 0.8 * self._typical_s + 0.2 * took
            mine = self._running[principal]
            mine.remove(ends_by)
            if not mine:
                del self._running[principal]
            self._cond.notify_all()

    def _next(self) -> _Waiter | None:
        """The waiter to admit now, if any: fewest running for its principal, then first come."""
        if sum(len(v) for v in self._running.values()) >= self.slots:
            return None
        eligible = [w for w in self._waiting if len(self._running.get(w.principal, ())) < self.per_principal]
        return min(eligible, key=lambda w: (len(self._running.get(w.principal, ())), w.seq), default=None)

    def _busy(self, waited_s: float) -> errors.QueryBusyError:
        retry = self._retry_after([end for ends in self._running.values() for end in ends])
        return errors.QueryBusyError(
            f"every query worker stayed busy for {waited_s:g}s; retry after {retry}s",
            waited_s=waited_s, retry_after_s=retry,
        )

    def _retry_after(self, ends: list[float]) -> int:
        now = self._clock()
        if self._typical_s is not None:  # a query started at (end - run_s) likely ends 2 typical runs later
            ends = [min(end, max(now, end - self.run_s + 2 * self._typical_s)) for end in ends]
        soonest = min(ends, default=now + 1)
        return max(1, math.ceil(soonest - now))
