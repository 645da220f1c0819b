"""Errors of the platform declaration."""

from __future__ import annotations

from trace_core import errors


class DeclarationError(errors.TraceError):
    """The declaration contradicts itself (a duplicate name, a queue or pool nobody declared).

    ``kind`` and ``name`` say what; ``fix`` says what to change in ``trace_core/platform/declaration.py``.
    """
