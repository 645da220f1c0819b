"""The Sandbox adapter over ``trace_core.query`` (the SQL gate and the hardened DuckDB engine).

Translates the sandbox's errors into :mod:`trace_core.query.service.errors` at
the boundary, so the HTTP mapping depends on one module.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping

from trace_core import errors as trace_errors
from trace_core.query.service import sandbox
from trace_core.settings import Settings


class SandboxEngine:
    """The production Sandbox: ``trace_core.query.gate`` then ``trace_core.query.engine``."""

    @classmethod
    def start(cls, settings: Settings) -> sandbox.Sandbox:
        try:
            importlib.import_module("trace_core.query.engine")
        except ImportError as exc:
            raise trace_errors.ConfigError(
                "the query sandbox (trace_core.query.engine) is not installed", variable="TRACE_QUERY_PORT",
            ) from exc
        raise NotImplementedError("wired when trace_core.query lands")

    def check(self, sql: str, *, relations: Collection[str]) -> sandbox.GatedSql:
        raise NotImplementedError

    def execute(self, gated: sandbox.GatedSql, relations: Mapping[str, sandbox.RelationFiles],
                limits: sandbox.ExecLimits) -> sandbox.ResultSet:
        raise NotImplementedError

    def close(self) -> None:
        return None
