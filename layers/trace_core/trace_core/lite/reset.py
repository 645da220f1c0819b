"""`trace-lite reset --yes`: stop the stack and delete what it keeps under TRACE_HOME.

Only the entries Lite itself writes are deleted (a ``TRACE_HOME`` pointed at a
directory holding other files keeps them), and never a database Lite did not
start: with ``TRACE_DATABASE_URL`` set, that server and its data stay as they are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from trace_core.lite import stack
from trace_core.settings import Settings

# Everything `up`, the demo and the Query Service write under TRACE_HOME.
ENTRIES = (
    "state.json",  # what runs (`down` has emptied it)
    "postgres",  # the embedded server's data directory
    "s3",  # the S3 objects (moto's on-disk copy)
    "anvil",  # the chain (anvil's state dump) and its port
    "logs",
    "cache",  # the Query Service's verified dataset cache
    "chains",  # seeded chain descriptions
    "chain.json",
    "reports",
    "keys",  # token signing keys: tokens issued before the reset stop verifying
)


def reset(settings: Settings) -> list[Path]:
    """Stop every managed component, then delete Lite's data; returns what was deleted."""
    stack.down(settings)
    removed = []
    for name in ENTRIES:
        path = settings.home / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed
