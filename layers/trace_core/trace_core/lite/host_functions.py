"""Loading Lambda handlers from ``functions/<name>/handler.py`` and invoking them like Lambda does.

A function is imported as the module ``<root dir name>.<name>.handler`` with
the root's parent on ``sys.path`` (so ``functions.dispatcher_api.handler`` from
the repo root), unchanged. One invocation per function at a time: a Lambda
execution environment serves one event at a time, and handlers may rely on it
(Powertools resolvers keep the current event on themselves). A function given
its own ``deps`` (settings loaded from its own environment, the host's pool and
queue driver) runs with them, as a Lambda runs with its own environment.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trace_core import errors
from trace_core.dispatcher import deps as deps_mod
from trace_core.lite import host_events

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


class Function:
    """One loaded handler with its own lock (one execution environment)."""

    def __init__(
        self, name: str, handler: Handler, *, timeout_seconds: float = 30.0, deps: deps_mod.Deps | None = None
    ) -> None:
        self.name = name
        self.handler = handler
        self.timeout_seconds = timeout_seconds
        self.deps = deps
        self._lock = threading.Lock()
        self.invocations = 0
        self.errors = 0

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run the handler on ``event``; its exceptions propagate (the caller maps them as Lambda would)."""
        own = deps_mod.injected_in_thread(self.deps) if self.deps is not None else contextlib.nullcontext()
        with self._lock, own:
            self.invocations += 1
            context = host_events.LambdaContext(self.name, timeout_seconds=self.timeout_seconds)
            started = time.monotonic()
            try:
                return self.handler(event, context)
            except Exception:
                self.errors += 1
                log.exception("function %s failed (request %s)", self.name, context.aws_request_id)
                raise
            finally:
                elapsed = time.monotonic() - started
                if elapsed > self.timeout_seconds:
                    log.warning("function %s ran %.1fs, over its %.0fs timeout", self.name, elapsed,
                                self.timeout_seconds)


def load(root: Path, name: str, *, timeout_seconds: float = 30.0, deps: deps_mod.Deps | None = None) -> Function:
    """Import ``root/name/handler.py`` and return its ``lambda_handler``; errors name the path and the fix."""
    path = root / name / "handler.py"
    if not path.is_file():
        raise errors.ComponentError(
            f"host: function {name} has no handler at {path}",
            component="host",
            fix=f"create {path} with a lambda_handler(event, context), or remove {name} from the host spec",
        )
    parent = str(root.resolve().parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    module_name = f"{root.name}.{name}.handler"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise errors.ComponentError(
            f"host: importing {module_name} failed: {type(exc).__name__}: {exc}",
            component="host",
            fix=f"fix {path}",
        ) from exc
    handler = getattr(module, "lambda_handler", None)
    if not callable(handler):
        raise errors.ComponentError(
            f"host: {path} has no callable lambda_handler", component="host", fix=f"define lambda_handler in {path}"
        )
    return Function(name, handler, timeout_seconds=timeout_seconds, deps=deps)
