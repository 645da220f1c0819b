"""``python -m trace_core.worker``: the production worker (the Fargate ``worker`` and ``delivery`` services).

Settings come from the environment alone (never the Lite state file); the pool
(``TRACE_WORKER_POOL``) names the queue and the operators, as the platform declares
them; logs are JSON lines on stderr. ``trace-lite worker`` runs the same
:func:`trace_core.worker.serve.serve` with the Lite stack's endpoints.
"""

from __future__ import annotations

import logging
import sys

from trace_core import errors
from trace_core import settings as settings_mod
from trace_core.db import conninfo
from trace_core.worker import config, logs, process_exit, serve


@process_exit.entry_point  # a process that ran Cryo must not finalise (decision 1302)
def main() -> int:
    logs.configure("INFO", structured=True)  # from the start: a bad setting is logged as JSON too
    try:
        settings = settings_mod.get()
        logging.getLogger().setLevel(settings.log_level)
        worker_config = config.WorkerConfig(
            queue=serve.pool_of(settings).queue, concurrency=settings.worker_concurrency,
            lease_seconds=settings.lease_seconds,
        )
        serve.serve(settings, worker_config, conninfo.resolve(settings))
    except errors.TraceError as exc:
        logging.getLogger(__name__).error(exc.message, extra={"details": exc.details})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
