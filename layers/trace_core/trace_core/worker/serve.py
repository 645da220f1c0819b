"""A worker process from start to stop: the one function behind ``python -m trace_core.worker`` and
``trace-lite worker``.

The two entry points differ only in what they pass in: the production one its settings
from the environment and its pool's queue (JSON logs), the Lite one the running stack's
endpoints and its command line's options (text logs).
"""

from __future__ import annotations

import gc
import logging
import signal
from typing import Any

from trace_core import errors, platform
from trace_core.db import pool
from trace_core.queue import factory
from trace_core.settings import Settings
from trace_core.worker import allocator, cryo_threads, direct, runner
from trace_core.worker import config as worker_config
from trace_core.worker import registry as registry_mod

log = logging.getLogger(__name__)


def pool_of(settings: Settings) -> platform.WorkerPool:
    """The worker pool this process serves (``TRACE_WORKER_POOL``), as the platform declares it."""
    found = platform.PLATFORM.worker_pools.get(settings.worker_pool)
    if found is None:
        raise errors.ConfigError(
            f"TRACE_WORKER_POOL={settings.worker_pool!r}: no such worker pool; expected one of "
            + ", ".join(sorted(platform.PLATFORM.worker_pools)), variable="TRACE_WORKER_POOL",
        )
    return found


def registry_for(settings: Settings) -> registry_mod.Registry:
    """The operators of this process's pool, plus those of ``TRACE_OPERATOR_MODULES``."""
    return registry_mod.for_pool(pool_of(settings).operators, extra_modules=settings.operator_modules)


def prepare_for_cryo(settings: Settings) -> tuple[str | None, int]:
    """Set up a process that runs Cryo: its allocator (may re-execute the process first) and Cryo's threads.

    Returns the allocator library in use (None: glibc's malloc) and the runtime's thread count.
    """
    try:
        malloc = allocator.apply(settings.worker_allocator)
    except allocator.AllocatorError as exc:
        raise errors.ConfigError(str(exc), variable="TRACE_WORKER_ALLOCATOR") from exc
    allocator.route_arrow(malloc)
    return malloc, cryo_threads.apply(settings.worker_cryo_threads)


def serve(settings: Settings, config: worker_config.WorkerConfig, database_url: str) -> dict[str, int]:
    """Run a worker in this process until SIGTERM/SIGINT (a second signal abandons at once); its stats."""
    registry = registry_for(settings)
    malloc, threads = prepare_for_cryo(settings) if registry.runs_cryo else (None, 0)
    driver = factory.driver_for(settings)
    the_worker = runner.Worker(
        direct.for_driver(pool.get(database_url, max_size=settings.db_pool_max), driver),
        driver, settings, config, registry=registry,
    )

    def stop(signum: int, _: Any) -> None:
        the_worker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "worker %s ready: pool=%s queue=%s operators=%s concurrency=%d lease=%ds malloc=%s cryo_threads=%d",
        config.worker_id, settings.worker_pool, config.queue, ",".join(registry.names), config.concurrency,
        config.lease_seconds, allocator.name_of(malloc), threads,
    )
    # A worker allocates many short-lived objects per task. With the default thresholds (a young
    # collection every 700 allocations, each also walking what startup left behind) the cyclic
    # GC took about a quarter of the worker's CPU (docs/decisions/0304): freeze what startup
    # made and collect young objects every 10,000 allocations.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        the_worker.run()
    finally:
        getattr(driver, "close", lambda: None)()
        pool.close_all()
    log.info("worker %s stopped: %s", config.worker_id, dict(the_worker.stats))
    return dict(the_worker.stats)
