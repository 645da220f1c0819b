"""The wire between the engine (trusted parent) and a worker (runs untrusted SQL).

Messages are length-framed byte strings on a socket pair
(``multiprocessing.connection.Connection.send_bytes``): a JSON header, then
Arrow IPC streams for tables. Never pickle: the parent must not execute
anything a compromised worker sends, and reads at most a bounded size.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa


def header(**fields: Any) -> bytes:
    """A JSON header message."""
    return json.dumps(fields, separators=(",", ":")).encode()


def parse_header(raw: bytes) -> dict[str, Any]:
    """Decode a JSON header; a non-object is a protocol error."""
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise TypeError("protocol header must be a JSON object")
    return value


def table_bytes(table: pa.Table) -> pa.Buffer:
    """An Arrow table as one IPC stream (a bytes-like buffer, sent without a copy)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def read_table(raw: bytes) -> pa.Table:
    """The Arrow table in one IPC stream."""
    with pa.ipc.open_stream(pa.py_buffer(raw)) as reader:
        return reader.read_all()
