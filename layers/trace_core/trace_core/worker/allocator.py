"""The worker process's memory allocator: jemalloc or mimalloc instead of glibc's malloc.

Cryo (Rust, in the worker's process) allocates per JSON value it decodes; under
glibc's malloc, `perf` put a sixth of a worker's CPU in ``_int_malloc``,
``_int_free`` and ``malloc_consolidate``, and on 2 shared cores that CPU is the
chain sync's throughput (docs/decisions/1001, point 10). An allocator can only be
chosen before the process starts, so :func:`apply` re-executes the worker's
own command line once with ``LD_PRELOAD`` naming it.

``TRACE_WORKER_ALLOCATOR``:

- ``auto`` (default): the system's jemalloc (``libjemalloc.so.2``, e.g. Debian's
  ``libjemalloc2``) if the dynamic loader finds it, else the mimalloc of the
  ``cmeel-mimalloc`` wheel (a dependency on Linux x86_64), else glibc's malloc;
- ``system``: glibc's malloc (no re-exec);
- a path to a shared library that replaces ``malloc``.

Linux only; elsewhere the worker runs as started.
"""

from __future__ import annotations

import ctypes.util
import importlib.metadata
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

_MIMALLOC_WHEEL = ("cmeel-mimalloc", "cmeel.prefix/lib/libmimalloc.so")


class AllocatorError(ValueError):
    """TRACE_WORKER_ALLOCATOR names a library that is not there."""


def _jemalloc() -> str | None:
    name = ctypes.util.find_library("jemalloc")  # from the loader's cache: a soname such as libjemalloc.so.2
    return name if name and name.startswith("libjemalloc") else None


def _mimalloc() -> str | None:
    dist, relative = _MIMALLOC_WHEEL
    try:
        path = Path(str(importlib.metadata.distribution(dist).locate_file(relative)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return str(path) if path.is_file() else None


def choose(setting: str, *, platform: str = sys.platform) -> str | None:
    """The library to preload for ``setting`` (None: keep glibc's malloc)."""
    if setting == "system" or not platform.startswith("linux"):
        return None
    if setting == "auto":
        return _jemalloc() or _mimalloc()
    if not Path(setting).is_file():
        raise AllocatorError(
            f"TRACE_WORKER_ALLOCATOR={setting!r}: no such file; expected auto, system or the path of a "
            "shared library that replaces malloc (e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2)"
        )
    return setting


def name_of(library: str | None) -> str:
    """A short name for logs: jemalloc, mimalloc, glibc or the file's name."""
    if library is None:
        return "glibc"
    base = Path(library).name
    return next((n for n in ("jemalloc", "mimalloc") if n in base), base)


def preloaded(library: str, environ: Mapping[str, str] = os.environ) -> bool:
    return library in environ.get("LD_PRELOAD", "").replace(":", " ").split()


def apply(setting: str) -> str | None:
    """Re-execute this process with the chosen allocator preloaded, unless it already is.

    Returns the library in use (None for glibc's malloc); returns only if no re-exec was needed.
    """
    library = choose(setting)
    if library is None or preloaded(library):
        return library
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(filter(None, [library, env.get("LD_PRELOAD", "")]))
    log.debug("re-executing with LD_PRELOAD=%s", env["LD_PRELOAD"])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), env)


def route_arrow(library: str | None) -> str:
    """Make pyarrow allocate through the process's malloc when one was preloaded; its pool's name.

    pyarrow's default pool is the mimalloc it bundles, which maps fresh huge pages for each Parquet
    rewrite: under ``perf`` the kernel zeroing them (``clear_page_erms``) was 4-6% of a chain-sync
    worker's CPU, and the rewrite took 54 ms of CPU per 1,000 blocks against 40 ms through the preloaded
    jemalloc (docs/benchmarks.md, "Where a Trace worker's CPU goes"). With glibc's malloc (no library),
    pyarrow keeps its own pool.
    """
    import pyarrow  # only processes that run Cryo get here

    if library is not None:
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    return str(pyarrow.default_memory_pool().backend_name)
