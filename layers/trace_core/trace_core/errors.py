"""The root of every error Trace raises on purpose.

Each package adds its own subclasses in its own ``errors.py``; structured
fields travel with the error so that callers (HTTP mapping, CLI) can render
them without parsing messages.
"""

from __future__ import annotations

from typing import Any


class TraceError(Exception):
    """Root error. ``details`` carries structured context (field, expected, ...)."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class ConfigError(TraceError):
    """A setting is unknown or malformed. ``variable`` names the environment variable."""


class ComponentError(TraceError):
    """A Lite component failed to start or answer. ``component`` names it, ``fix`` says what to do."""


class MigrationError(TraceError):
    """A migration failed; the schema stays at the previous version."""
