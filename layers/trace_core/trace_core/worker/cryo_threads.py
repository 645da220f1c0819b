"""How many threads Cryo's async runtime gets in a worker process (``TRACE_WORKER_CRYO_THREADS``).

Cryo (Rust, in the worker's process) runs every freeze of a process on one
tokio runtime, built at the process's first freeze with one thread per core
unless ``TOKIO_WORKER_THREADS`` says otherwise. A host that runs several
worker processes therefore runs cores x processes Cryo threads, which contend
with each other and with the node when it shares the cores (decision 1001,
point 11). Setting ``TRACE_WORKER_CRYO_THREADS`` to cores / worker processes
keeps the host at one Cryo thread per core. Unset, Cryo keeps its default.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

VARIABLE = "TOKIO_WORKER_THREADS"  # read by tokio when the runtime is built


def cores() -> int:
    """The cores this process may run on (what tokio counts by default)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def apply(threads: int | None, environ: MutableMapping[str, str] = os.environ) -> int:
    """Set the runtime's size before Cryo's first freeze in this process; returns the size in effect."""
    if threads is not None:
        environ[VARIABLE] = str(threads)
    value = environ.get(VARIABLE, "")
    return int(value) if value.isdigit() and int(value) > 0 else cores()
