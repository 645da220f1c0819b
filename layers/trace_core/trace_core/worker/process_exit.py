"""How a process that has run Cryo ends: with its status, and without finalising the interpreter.

Cryo (Rust, in-process) runs its freezes on tokio threads that outlive the
freeze and still take and release CPython's thread state on their own
schedule. When the main thread finalises the interpreter while one of them
does, the process dies with SIGABRT ("PyGILState_Release: thread state ... must
be current when releasing", runtime state: finalizing) or SIGSEGV instead of
exiting with its status: about 1 exit in 10 after a single freeze on a 2-core
machine. Cryo has no call that stops its runtime, so a process that has loaded
Cryo does what finalisation would do for us (atexit callbacks, which include
``logging.shutdown``; flushing stdout and stderr) and then leaves with
``os._exit``, before any finalisation starts (docs/decisions/1302).

Skipped on that path, deliberately: joining non-daemon threads (our worker
threads are daemons; an abandoned operator must not keep the process alive)
and C-level atexit handlers (Cryo's among them).
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

Entry = TypeVar("Entry", bound=Callable[..., Any])


def end(status: int) -> NoReturn:
    """End this process now with ``status``: run the atexit callbacks, flush stdout/stderr, then ``os._exit``."""
    try:
        # CPython's own exit path runs exactly these; there is no public name for it.
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):  # closed or broken pipe: nothing more can be said there
                pass
        os._exit(status)


def entry_point(main: Entry) -> Entry:
    """Wrap a process's entry point so that, once Cryo is loaded, the process ends through :func:`end`.

    The status is the one Python would give: the return value or ``SystemExit`` code as ``sys.exit``
    reads it, 1 after an uncaught exception (its traceback printed as Python prints it), 130 after an
    uncaught KeyboardInterrupt. While Cryo is not loaded the wrapper changes nothing (the value is
    returned, the exception propagates), so call it only as the outermost frame of a process: once Cryo
    is loaded it never returns.
    """

    @functools.wraps(main)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            result = main(*args, **kwargs)
        except SystemExit as exc:
            if not _cryo_loaded():
                raise
            status = _exit_status(exc.code)
        except BaseException as exc:
            if not _cryo_loaded():
                raise
            sys.excepthook(type(exc), exc, exc.__traceback__)
            status = 128 + signal.SIGINT if isinstance(exc, KeyboardInterrupt) else 1
        else:
            if not _cryo_loaded():
                return result
            status = _exit_status(result)
        end(status)

    return run  # type: ignore[return-value]


def _cryo_loaded() -> bool:
    # Its runtime exists only after a freeze, and a freeze needs the module: a process that never
    # imported it finalises normally.
    return "cryo" in sys.modules


def _exit_status(code: object) -> int:
    """What ``sys.exit(code)`` makes the process's status (a non-integer is printed, then 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
