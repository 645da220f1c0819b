"""Errors of the decoders."""

from __future__ import annotations

from trace_core import errors


class DecodeError(errors.TraceError):
    """A log could not be decoded. ``block_number``/``log_index`` locate it, ``field`` names what was wrong."""


class InputSchemaError(DecodeError):
    """The input table lacks a column the decoder needs. ``field`` names it, ``expected`` lists them all."""
