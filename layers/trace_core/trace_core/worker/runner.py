"""The Worker: long-poll wake-ups, claim, run operators, heartbeat, complete, ack.

Threads, each with one job:
- the receive loop (the caller's thread, :meth:`Worker.run`): receives up to
  the free slots; k wake-ups claim up to k due tasks of the queue in one
  statement (``claim_next``: a wake-up means "work may be due", Postgres says
  which); it hands the leases to the executors. When the queue is quiet it
  also polls ``claim_next`` every ``poll_seconds``, so a lost wake-up never
  strands a task;
  On a queue that carries signals, not messages (a worker pool's queue on
  pgqueue, decision 2302), it claims up to the free slots with ``claim_next``
  and waits for the next signal only when fewer tasks were due;
- ``concurrency`` executor threads run operators (with up to ``prefetch`` more
  leases queued for them while operators finish fast). While they finish very
  fast (``inline_below_seconds``) the receive loop runs them itself, one after
  another: handing a task of a few microseconds to a thread costs more than
  running it;
- the completer reports finished attempts in batches and frees their slots;
- the heartbeater extends every held lease (and its messages' visibility)
  every ``heartbeat_seconds`` (a third of the lease by default: two missed
  beats are survivable), those whose completion is still pending included,
  and cancels an operator whose lease was lost.

A message is acked (in one call per loop turn, or by the client in the
transaction that records the claim or the completion) only after its task's
completion was recorded, or when it has nothing left to do (its task was claimed by someone, finished, or is
unknown). Workers sharing a queue should register the same operators: a
wake-up for an operator this worker lacks is spent here, and the task waits
for a capable worker's poll.
Malformed messages are never acked: they reach the dead-letter store after
max receives. On stop, the loop takes no more work and either lets running
operators finish (``finish``, up to ``grace_seconds``) or gives their leases
back at once (``abandon``); a second stop request always abandons.
"""

from __future__ import annotations

import dataclasses
import logging
import queue as queue_mod
import threading
import time
from collections import Counter
from uuid import UUID

from trace_core.dispatcher import errors as dispatcher_errors
from trace_core.dispatcher import models
from trace_core.queue import base
from trace_core.settings import Settings
from trace_core.worker import client as client_mod
from trace_core.worker import config as config_mod
from trace_core.worker import operators, ports, telemetry, wakeups
from trace_core.worker import registry as registry_mod

log = logging.getLogger(__name__)

@dataclasses.dataclass
class _Running:
    lease: models.Lease
    messages: list[base.Message]
    ctx: operators.OperatorContext
    finished: bool = False
    lost: bool = False
    abandoned: bool = False


_STOP = object()


class Worker:
    """One worker: ``run()`` blocks until ``request_stop()`` and the shutdown it asks for are done."""

    def __init__(
        self,
        dispatcher: client_mod.DispatcherClient,
        driver: base.QueueDriver,
        settings: Settings,
        config: config_mod.WorkerConfig | None = None,
        registry: registry_mod.Registry | None = None,
    ) -> None:
        self.config = config or config_mod.WorkerConfig()
        self._client = dispatcher
        self._driver = driver
        # A queue that carries signals, not messages: the worker claims what is due when signalled.
        self._signals = driver if isinstance(driver, base.Signals) and driver.signal_only(self.config.queue) else None
        # The operators it runs (default: every platform operator and those of TRACE_OPERATOR_MODULES).
        self._registry = registry or registry_mod.for_pool(extra_modules=settings.operator_modules)
        self._ports = ports.WorkerPorts(settings, dispatcher)
        self._task_metrics = telemetry.TaskMetrics(settings.emit_metrics)
        self._running: dict[UUID, _Running] = {}
        self._acks: list[base.Message] = []  # done with, acked in one call before the next receive
        self._run_time: float | None = None
        self._lock = threading.Condition()
        self._jobs: queue_mod.Queue[object] = queue_mod.Queue()
        self._done: queue_mod.Queue[object] = queue_mod.Queue()
        self._stopping = threading.Event()
        self._stop_mode: config_mod.StopMode = self.config.on_stop
        self._beats_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stats: Counter[str] = Counter()

    # ------------------------------------------------------------ lifecycle
    def run(self) -> None:
        """Take work until asked to stop, then shut down as ``on_stop`` (or the stop request) says."""
        self._start_threads()
        last_poll = time.monotonic()
        backoff = 0.1
        try:
            while not self._stopping.is_set():
                free = self._wait_for_slots()
                if free == 0:
                    continue
                try:
                    if self._signals is not None:
                        self._claim_signalled(self._signals, free if self._fast() else 1)
                        backoff = 0.1
                        continue
                    self._flush_acks()
                    messages = self._receive(free if self._fast() else 1)
                    if messages:
                        self._handle(messages)
                    elif time.monotonic() - last_poll >= self.config.poll_seconds:
                        last_poll = time.monotonic()
                        self._poll(free)
                    backoff = 0.1
                except Exception as exc:  # noqa: BLE001 - queue or database hiccup: wait and go on
                    log.warning("worker %s: receive/claim failed (%s); retrying in %.1fs",
                                self.config.worker_id, exc, backoff)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            self._shutdown()

    def request_stop(self, mode: config_mod.StopMode | None = None) -> None:
        """Stop taking work. ``mode`` overrides ``on_stop``; asking twice always abandons."""
        if self._stopping.is_set():
            mode = "abandon"
        self._stop_mode = mode or self.config.on_stop
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._running)

    # ------------------------------------------------------------ receiving and claiming
    def _fast(self) -> bool:
        """Operators finish fast (recent run time under prefetch_below_seconds): batches pay off.

        While they do not (or before the first one finished), the worker takes one wake-up at a
        time, so it never holds slow tasks that another worker, idle, could run: with four
        one-second tasks due and two workers, each runs two instead of one worker all four.
        """
        return self._run_time is not None and self._run_time < self.config.prefetch_below_seconds

    def _capacity(self) -> int:
        return self.config.concurrency + (self.config.prefetch if self._fast() else 0)

    def _wait_for_slots(self) -> int:
        with self._lock:
            self._lock.wait_for(
                lambda: len(self._running) < self._capacity() or self._stopping.is_set(), timeout=1.0
            )
            return 0 if self._stopping.is_set() else max(0, self._capacity() - len(self._running))

    def _receive(self, free: int) -> list[base.Message]:
        """Long-poll for up to ``free`` wake-ups (the driver tops a batch up itself: SQS's 10 per call)."""
        return self._driver.receive(
            self.config.queue, max_messages=free, wait_seconds=self.config.receive_wait_seconds,
            visibility_seconds=self.config.lease_seconds,
        )

    def _handle(self, messages: list[base.Message]) -> None:
        by_task: dict[UUID, list[base.Message]] = {}
        for message in messages:
            task_id = wakeups.task_id_of(message.body)
            if task_id is None:
                # Left unacked: after max receives it is dead-lettered; until then it waits a while.
                self.stats["malformed"] += 1
                log.warning("worker: malformed wake-up %s on %s (receive %d): %.200r",
                            message.message_id, message.queue, message.receive_count, message.raw or message.body)
                self._driver.extend(message, self.config.malformed_retry_seconds)
                continue
            by_task.setdefault(task_id, []).append(message)
        if not by_task:
            return
        # k wake-ups say "k tasks of this queue may be due": claim up to k due tasks in one
        # statement (the batch is the throughput lever; see docs/decisions/0301). A claimed
        # task whose wake-up we hold keeps it until completion; every other wake-up has done
        # its job (its task is claimed here or elsewhere, finished, or unknown) and is acked now.
        leases = self._client.claim_next(
            worker_id=self.config.worker_id, operators=self._registry.names, queue=self.config.queue,
            lease_seconds=self.config.lease_seconds, limit=len(by_task), wakeups=by_task,
        )
        self._dispatch([self._start(lease, by_task.pop(lease.task.task_id, [])) for lease in leases])
        spent = [m for group in by_task.values() for m in group]
        self.stats["ignored"] += len(spent)
        if not self._client.acks_messages:  # else the claim acked them in its transaction
            self._defer_ack(spent)

    def _claim_signalled(self, signals: base.Signals, limit: int) -> None:
        """Claim up to ``limit`` due tasks; when fewer were due, wait for a signal (bounded: a lost one costs
        at most ``receive_wait_seconds``). The mark is taken before the claim, so a task created meanwhile
        is never waited past."""
        mark = signals.signal_mark(self.config.queue)
        leases = self._client.claim_next(
            worker_id=self.config.worker_id, operators=self._registry.names, queue=self.config.queue,
            lease_seconds=self.config.lease_seconds, limit=limit,
        )
        self._dispatch([self._start(lease, []) for lease in leases])
        if len(leases) < limit:
            signals.wait_for_signal(self.config.queue, mark, self.config.receive_wait_seconds)

    def _poll(self, free: int) -> None:
        leases = self._client.claim_next(
            worker_id=self.config.worker_id, operators=self._registry.names, queue=self.config.queue,
            lease_seconds=self.config.lease_seconds, limit=free,
        )
        if leases:
            log.info("worker: claimed %d task(s) without a wake-up", len(leases))
            self.stats["claimed_by_poll"] += len(leases)
        self._dispatch([self._start(lease, []) for lease in leases])

    def _start(self, lease: models.Lease, messages: list[base.Message]) -> _Running:
        self.stats["claimed"] += 1
        ctx = self._ports.context(lease, self._registry.get(lease.task.operator))
        running = _Running(lease=lease, messages=messages, ctx=ctx)
        ctx._heartbeat = lambda: self._beat_one(running)
        with self._lock:
            self._running[lease.task.task_id] = running
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"], len(self._running))
        return running

    def _dispatch(self, jobs: list[_Running]) -> None:
        """Run each job here while operators finish very fast (and we are not stopping); else queue it."""
        for job in jobs:
            run_time = self._run_time
            if run_time is not None and run_time < self.config.inline_below_seconds and not self._stopping.is_set():
                self.stats["inline"] += 1
                self._run(job)
            else:
                self._jobs.put(job)

    # ------------------------------------------------------------ executing
    def _execute_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            assert isinstance(job, _Running)
            self._run(job)

    def _run(self, job: _Running) -> None:
        started = time.monotonic()
        result = self._registry.run(job.ctx)
        elapsed = time.monotonic() - started
        with self._lock:  # EWMA of operator run time: decides whether to prefetch and to run inline
            self._run_time = elapsed if self._run_time is None else 0.8 * self._run_time + 0.2 * elapsed
        job.finished = True
        self._done.put((job, result))

    # ------------------------------------------------------------ completing
    def _complete_loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._done.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.config.completion_batch:
                try:
                    item = self._done.get_nowait()
                except queue_mod.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._complete(batch)  # type: ignore[arg-type]

    def _complete(self, batch: list[tuple[_Running, models.Success | models.Failure]]) -> None:
        todo = [(job, result) for job, result in batch if not job.abandoned]
        items = [client_mod.CompletionItem(job.lease, result, job.ctx.on_success, job.messages)
                 for job, result in todo]
        backoff = 0.1
        while items:
            try:
                outcomes = self._client.complete(items)
                break
            except Exception as exc:  # noqa: BLE001 - keep the results; the lease is heartbeaten meanwhile
                log.warning("worker: completing %d task(s) failed (%s); retrying in %.1fs", len(items), exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        else:
            outcomes = {}
        completed = failed = 0
        for job, _ in todo:
            outcome = outcomes.get(job.lease.task.task_id)
            if isinstance(outcome, dispatcher_errors.DispatcherError):
                self.stats["rejected"] += 1
                log.warning("worker: completion of task %s attempt %d rejected: %s",
                            job.lease.task.task_id, job.lease.attempt, outcome)
            elif outcome == "completed":  # not a success whose commit hook failed, or that was refused
                self.stats["succeeded"] += 1
                completed += 1
            else:
                self.stats["failed"] += 1
                failed += 1
        self._task_metrics.record(completed=completed, failed=failed)
        with self._lock:
            # The outcome is recorded: the wake-ups are done with. Unless the client acked them with
            # it, acking is deferred to the receive loop's next turn, so the slot frees without
            # waiting for another round trip.
            acked = {id(m) for item in items for m in item.messages} if self._client.acks_messages else set()
            self._acks.extend(m for job, _ in batch for m in job.messages if id(m) not in acked)
            for job, _ in batch:
                self._running.pop(job.lease.task.task_id, None)
            self._lock.notify_all()

    def _defer_ack(self, messages: list[base.Message]) -> None:
        if messages:
            with self._lock:
                self._acks.extend(messages)

    def _flush_acks(self) -> None:
        with self._lock:
            pending, self._acks = self._acks, []
        if not pending:
            return
        try:
            self._driver.ack(pending)
        except Exception as exc:  # noqa: BLE001 - an unacked wake-up only causes a harmless redelivery
            log.warning("worker: ack of %d message(s) failed: %s", len(pending), exc)

    # ------------------------------------------------------------ heartbeats
    def _heartbeat_loop(self) -> None:
        while not self._beats_stop.wait(self.config.beat_every):
            with self._lock:
                # A finished attempt stays here until its completion is recorded: its lease is kept
                # alive meanwhile (a completion retried through a database outage must not lose it).
                live = [r for r in self._running.values() if not (r.lost or r.abandoned)]
            if live:
                self._beat(live)
            self._flush_acks()  # in case the receive loop waits on busy slots

    def _beat(self, live: list[_Running]) -> None:
        try:
            outcomes = self._client.heartbeat([r.lease for r in live], lease_seconds=self.config.lease_seconds)
        except Exception as exc:  # noqa: BLE001 - try again next beat; two misses still leave time
            log.warning("worker: heartbeat of %d lease(s) failed: %s", len(live), exc)
            return
        held: dict[str, base.Message] = {}  # by receipt: wake-ups packed in one SQS message share it
        for running in live:
            outcome = outcomes.get(running.lease.task.task_id)
            if isinstance(outcome, dispatcher_errors.DispatcherError):
                if not running.finished:  # a finished one was most likely completed meanwhile
                    self._lost(running, outcome)
                continue
            held.update((message.receipt, message) for message in running.messages)
        for message in held.values():
            try:
                self._driver.extend(message, self.config.lease_seconds)
            except Exception as exc:  # noqa: BLE001 - the lease, not the message, guards the task
                log.warning("worker: extending message %s failed: %s", message.message_id, exc)

    def _beat_one(self, running: _Running) -> None:
        outcome = self._client.heartbeat([running.lease], lease_seconds=self.config.lease_seconds).get(
            running.lease.task.task_id
        )
        if isinstance(outcome, dispatcher_errors.DispatcherError):
            self._lost(running, outcome)
            raise outcome

    def _lost(self, running: _Running, why: Exception) -> None:
        running.lost = True
        running.ctx.cancelled.set()
        self.stats["lost"] += 1
        log.warning("worker: lease of task %s attempt %d lost: %s", running.lease.task.task_id,
                    running.lease.attempt, why)

    # ------------------------------------------------------------ threads and shutdown
    def _start_threads(self) -> None:
        specs = [(self._execute_loop, f"operator-{n}") for n in range(self.config.concurrency)]
        specs += [(self._complete_loop, "completer"), (self._heartbeat_loop, "heartbeater")]
        for target, name in specs:
            # Daemon threads: an abandoned operator still running must not keep the process alive.
            thread = threading.Thread(target=target, name=f"{self.config.worker_id}:{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _shutdown(self) -> None:
        if self._stop_mode == "finish":
            deadline = time.monotonic() + self.config.grace_seconds
            with self._lock:
                self._lock.wait_for(
                    lambda: not self._running or self._stop_mode == "abandon" or time.monotonic() > deadline,
                    timeout=max(0.0, self.config.grace_seconds),
                )
        self._abandon_all()
        for _ in range(self.config.concurrency):
            self._jobs.put(_STOP)
        self._done.put(_STOP)
        self._beats_stop.set()
        completer = next(t for t in self._threads if t.name.endswith(":completer"))
        completer.join(timeout=10)
        self._flush_acks()
        self._ports.close()

    def _abandon_all(self) -> None:
        with self._lock:
            leftovers = [r for r in self._running.values() if not r.finished]
        for running in leftovers:
            running.abandoned = True
            running.ctx.cancelled.set()
            outcome = self._client.abandon(running.lease, f"worker {self.config.worker_id} stopped")
            self.stats["abandoned"] += 1
            log.info("worker: gave back task %s attempt %d: %s", running.lease.task.task_id,
                     running.lease.attempt, getattr(outcome, "status", outcome))
            if running.messages:
                try:
                    self._driver.ack(running.messages)  # the abandon wrote a fresh wake-up
                except Exception as exc:  # noqa: BLE001
                    log.warning("worker: ack after abandon failed: %s", exc)
            with self._lock:
                self._running.pop(running.lease.task.task_id, None)
                self._lock.notify_all()
