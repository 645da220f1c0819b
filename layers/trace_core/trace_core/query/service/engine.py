"""The Sandbox adapter over ``trace_core.query`` (the SQL gate and the hardened DuckDB engine).

Translates the sandbox's errors into :mod:`trace_core.query.service.errors` at
the boundary, so the HTTP mapping depends on one module. If the sandbox cannot
be loaded, the service still starts (health answers) and every query is a 503
``sandbox_unavailable`` naming the cause: it never falls back to anything weaker.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection, Mapping

from trace_core.query.service import errors, sandbox
from trace_core.settings import Settings

logger = logging.getLogger(__name__)


class UnavailableSandbox:
    """Refuses every query with SandboxUnavailableError."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _refuse(self) -> errors.SandboxUnavailableError:
        return errors.SandboxUnavailableError(f"the query sandbox is unavailable: {self.reason}", reason=self.reason)

    def check(self, sql: str, *, relations: Collection[str]) -> sandbox.GatedSql:
        raise self._refuse()

    def execute(self, gated: sandbox.GatedSql, relations: Mapping[str, sandbox.RelationFiles],
                limits: sandbox.ExecLimits) -> sandbox.ResultSet:
        raise self._refuse()

    def close(self) -> None:
        return None


class SandboxEngine:
    """The production Sandbox: ``trace_core.query``'s gate, then its engine."""

    @classmethod
    def start(cls, settings: Settings) -> sandbox.Sandbox:
        try:
            importlib.import_module("trace_core.query.engine")
        except ImportError as exc:
            logger.error("query sandbox unavailable: %s", exc)
            return UnavailableSandbox(f"trace_core.query.engine cannot be imported ({exc})")
        return UnavailableSandbox("the trace_core.query adapter is not wired yet")
