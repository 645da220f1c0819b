"""DuckDB's 128-bit integers as Arrow columns that hold them exactly.

DuckDB exports ``HUGEINT`` and ``UHUGEINT`` to Arrow as ``decimal128(38, 0)``
holding the raw 128 bits. That type is wrong at both ends of their ranges: a
``UHUGEINT`` at or above 2**127 reads back negative (2**128 - 1 as -1), and a
``HUGEINT`` beyond 38 digits (up to about 1.7e38) overflows the declared
precision, which Parquet writers and readers may reject or misread.

:func:`exact_table` fixes the result before it leaves the worker, knowing each
column's DuckDB type (Arrow alone cannot tell a ``UHUGEINT`` from a
``DECIMAL(38, 0)``). The rule, per column (and per nested child):

- every value has at most 38 digits: the column stays ``decimal128(38, 0)``
  (what DuckDB gives, and what DuckDB, Polars and Spark read back): nothing
  changes for the sums and counts analysts run every day;
- otherwise it becomes ``decimal256(39, 0)``, which holds both full ranges.

Widening copies the 16 bytes of each value into 32 (zero- or sign-extended), so
it is exact and vectorised. Pure: imports no DuckDB (the caller passes its types).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

WIDE = pa.decimal256(39, 0)
# The largest magnitude decimal128(38, 0) may declare.
_MAX_38_DIGITS = 10**38 - 1
_SIGNED = {"hugeint": True, "uhugeint": False}


def exact_table(table: pa.Table, duck_types: list[Any]) -> pa.Table:
    """``table`` with every HUGEINT/UHUGEINT column (also inside lists, arrays, structs, maps) exact.

    ``duck_types`` are DuckDB's types of the columns, in order (``DuckDBPyRelation.types``):
    anything with ``.id`` and ``.children`` as DuckDB's Python types have.
    """
    if not any("HUGEINT" in str(t).upper() for t in duck_types):
        return table  # the usual case: nothing to look at
    columns, fields = [], []
    for column, field, duck in zip(table.columns, table.schema, duck_types, strict=True):
        if "HUGEINT" in str(duck).upper():
            array = _exact(column.combine_chunks() if column.num_chunks != 1 else column.chunk(0), duck)
            columns.append(array)
            fields.append(pa.field(field.name, array.type, field.nullable, field.metadata))
        else:
            columns.append(column)
            fields.append(field)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=table.schema.metadata))


def _exact(array: pa.Array, duck: Any) -> pa.Array:
    kind = str(duck.id).lower()
    if kind in _SIGNED:
        return _integer(array, signed=_SIGNED[kind]) if pa.types.is_decimal128(array.type) else array
    children = dict(duck.children) if kind in ("list", "array", "struct", "map") else {}
    mask = array.is_null() if array.null_count else None
    if kind == "list" and isinstance(array, (pa.ListArray, pa.LargeListArray)):
        offsets, values = _rebased(array)
        return type(array).from_arrays(offsets, _exact(values, children["child"]), mask=mask)
    if kind == "array" and isinstance(array, pa.FixedSizeListArray):
        size = array.type.list_size
        # ``values`` ignores the slice (``flatten`` would drop null slots): cut it to this array's rows.
        values = _exact(array.values.slice(array.offset * size, len(array) * size), children["child"])
        return pa.FixedSizeListArray.from_arrays(values, size, mask=mask)
    if kind == "struct" and isinstance(array, pa.StructArray):
        names = [array.type.field(i).name for i in range(array.type.num_fields)]
        values = [_exact(child, children[name]) for child, name in zip(array.flatten(), names, strict=True)]
        return pa.StructArray.from_arrays(values, names=names, mask=mask)
    if kind == "map" and isinstance(array, pa.MapArray):
        offsets, _ = _rebased(array)
        start, stop = array.offsets[0].as_py(), array.offsets[-1].as_py()
        keys = _exact(array.keys.slice(start, stop - start), children["key"])
        items = _exact(array.items.slice(start, stop - start), children["value"])
        return pa.MapArray.from_arrays(offsets, keys, items, mask=mask)
    return array  # unions and other shapes keep DuckDB's export


def _rebased(array: pa.ListArray | pa.LargeListArray | pa.MapArray) -> tuple[pa.Array, pa.Array]:
    """Offsets from 0 and the child values they index: Arrow cannot rebuild a sliced list with a null mask."""
    offsets = array.offsets
    start, stop = offsets[0].as_py(), offsets[-1].as_py()
    return pc.subtract(offsets, offsets[0]), array.values.slice(start, stop - start)


def _integer(array: pa.Array, *, signed: bool) -> pa.Array:
    """One HUGEINT (``signed``) or UHUGEINT column: kept when 38 digits hold it, else widened."""
    if array.null_count == len(array):
        return array
    bounds = pc.min_max(array)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    # A UHUGEINT at or above 2**127 shows as negative: its raw bits say more than 38 digits.
    fits = low >= -_MAX_38_DIGITS and high <= _MAX_38_DIGITS and (signed or low >= 0)
    if fits:
        return array
    return _widen(array, signed=signed)


def _widen(array: pa.Array, *, signed: bool) -> pa.Array:
    """The same 128-bit integers as decimal256(39, 0): low 16 bytes copied, high 16 zero- or sign-extended."""
    validity, data = array.buffers()[:2]
    rows = array.offset + len(array)
    low = np.frombuffer(data, dtype=np.uint8, count=rows * 16).reshape(rows, 16)
    wide = np.zeros((rows, 32), dtype=np.uint8)
    wide[:, :16] = low
    if signed:
        wide[:, 16:] = np.where(low[:, 15:16] & 0x80, 0xFF, 0x00)  # little-endian: byte 15 holds the sign
    return pa.Array.from_buffers(WIDE, len(array), [validity, pa.py_buffer(wide.tobytes())],
                                 null_count=array.null_count, offset=array.offset)
