"""What every command needs: validated settings with the running stack's endpoints filled in."""

from __future__ import annotations

from trace_core import settings as settings_mod
from trace_core.lite import stack, state
from trace_core.settings import Settings


def settings() -> Settings:
    base = settings_mod.get()
    return stack.settings_for(base, state.read(base.home))


def database_url() -> str:
    url = settings().database_url
    if not url:
        from trace_core import errors

        raise errors.ComponentError(
            "no database: the Lite stack is not up and TRACE_DATABASE_URL is unset",
            component="postgres",
            fix="run `trace-lite up` first",
        )
    return url
