"""What every command needs: validated settings with the running stack's endpoints filled in."""

from __future__ import annotations

import psycopg

from trace_core import errors, redact
from trace_core import settings as settings_mod
from trace_core.lite import stack, state
from trace_core.settings import Settings


def settings() -> Settings:
    base = settings_mod.get()
    return stack.settings_for(base, state.read(base.home))


def database_url() -> str:
    """The stack's Postgres URL, once it answers; else a ComponentError naming what is down and the fix."""
    base = settings_mod.get()
    current = state.read(base.home)
    url = stack.settings_for(base, current).database_url
    if not url:
        raise errors.ComponentError(
            "no database: the Lite stack is not up and TRACE_DATABASE_URL is unset",
            component="postgres",
            fix="run `trace-lite up` first",
        )
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        record = current.components.get("postgres")
        if record is not None and record.managed and record.url == url:
            raise errors.ComponentError(
                f"postgres is down: the stack's embedded Postgres ({redact.url(url)}) does not answer",
                component="postgres",
                fix="run `trace-lite up` (it restarts Postgres on its data)",
            ) from exc
        raise errors.ComponentError(
            f"postgres: TRACE_DATABASE_URL ({redact.url(url)}) refused the connection",
            component="postgres",
            fix="start that server or correct TRACE_DATABASE_URL",
        ) from exc
    return url
