"""``logs`` -> ``staking_events``: Monad's staking events as one typed relation. Pure (pyarrow + eth-abi).

One row per staking log, ordered by (block_number, log_index). uint256 values
(``amount``, ``commission``) are exact decimal strings: Parquet has no 256-bit
integer and ``decimal256`` stops at 76 digits, while uint256 needs 78. Read them
exactly in DuckDB with ``amount::BIGNUM``. Columns an event does not have are null:

===================  ======================================================================
column               filled by
===================  ======================================================================
validator_id         every event but EpochChanged
delegator            Delegate, Undelegate, Withdraw, ClaimRewards
auth_address         ValidatorCreated
from_address         ValidatorRewarded (who paid the reward)
amount               Delegate, Undelegate, Withdraw, ClaimRewards, ValidatorRewarded
commission           ValidatorCreated
withdraw_id          Undelegate, Withdraw
activation_epoch     Delegate, Undelegate
epoch                Withdraw, ClaimRewards, ValidatorRewarded; EpochChanged: the new epoch
old_epoch            EpochChanged
===================  ======================================================================

A log at the staking address with a known topic0 that does not decode (wrong
topic count, short or badly padded data) is an error, never a silently dropped row.
"""

from __future__ import annotations

from typing import Any

import eth_abi.abi
import eth_abi.exceptions
import pyarrow as pa
import pyarrow.compute as pc

from trace_core.decode import errors, events

DATASET = "staking_events"
"""The dataset name of the decoded relation."""

VERSION = "staking_events/1"
"""Changes whenever the output of :func:`staking_events` would change for the same logs."""

SCHEMA = pa.schema([
    pa.field("block_number", pa.uint32(), nullable=False),
    pa.field("transaction_index", pa.uint32()),
    pa.field("log_index", pa.uint32(), nullable=False),
    pa.field("transaction_hash", pa.string()),
    pa.field("event", pa.string(), nullable=False),
    pa.field("validator_id", pa.uint64()),
    pa.field("delegator", pa.string()),
    pa.field("auth_address", pa.string()),
    pa.field("from_address", pa.string()),
    pa.field("amount", pa.string()),
    pa.field("commission", pa.string()),
    pa.field("withdraw_id", pa.uint8()),
    pa.field("activation_epoch", pa.uint64()),
    pa.field("epoch", pa.uint64()),
    pa.field("old_epoch", pa.uint64()),
    pa.field("chain_id", pa.uint64()),
])

REQUIRED_COLUMNS = ("block_number", "log_index", "address", "topic0", "topic1", "topic2", "topic3", "data")
_UINT256 = ("uint256",)


def _to_bytes(value: Any, *, field: str, where: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return bytes.fromhex(value.removeprefix("0x"))
        except ValueError as exc:
            raise errors.DecodeError(f"{where}: {field} is not hex: {value[:80]!r}", field=field) from exc
    raise errors.DecodeError(f"{where}: {field} must be hex text or bytes, got {type(value).__name__}", field=field)


def _to_hex(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value).lower()


def _normalised(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Lowercase ``0x`` hex, whether Cryo wrote hex text (``hex: true``) or binary."""
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type) or (
        pa.types.is_fixed_size_binary(column.type)
    ):
        return pa.chunked_array([[_to_hex(v) for v in column.to_pylist()]], type=pa.string())
    return pc.utf8_lower(column.cast(pa.string()))


def _select(logs: pa.Table, address: str) -> pa.Table:
    missing = [c for c in REQUIRED_COLUMNS if c not in logs.column_names]
    if missing:
        raise errors.InputSchemaError(
            f"the logs table has no column {missing[0]!r}: expected Cryo's logs columns "
            f"({', '.join(REQUIRED_COLUMNS)})",
            field=missing[0], expected=list(REQUIRED_COLUMNS),
        )
    mask = pc.and_(
        pc.equal(_normalised(logs.column("address")), address.lower()),
        pc.is_in(_normalised(logs.column("topic0")), value_set=pa.array(list(events.BY_TOPIC0), pa.string())),
    )
    return logs.filter(pc.fill_null(mask, False))


def _decode_row(row: dict[str, Any]) -> dict[str, Any]:
    where = f"log {row['log_index']} of block {row['block_number']}"
    event = events.BY_TOPIC0[_to_hex(row["topic0"]) or ""]
    topics = [row[f"topic{i}"] for i in (1, 2, 3)]
    present = [t for t in topics if t is not None]
    if len(present) != len(event.indexed) or any(t is None for t in topics[: len(event.indexed)]):
        raise errors.DecodeError(
            f"{where}: {event.name} has {len(event.indexed)} indexed parameters, the log has "
            f"{len(present)} topics after topic0", field="topics", block_number=row["block_number"],
            log_index=row["log_index"],
        )
    values: dict[str, Any] = {}
    for param, topic in zip(event.indexed, present):
        raw = _to_bytes(topic, field=param.name, where=where)
        try:
            if len(raw) != 32:
                raise eth_abi.exceptions.DecodingError(f"{len(raw)} bytes, expected 32")
            (values[param.name],) = eth_abi.abi.decode([param.type], raw)
        except (eth_abi.exceptions.DecodingError, OverflowError) as exc:
            raise errors.DecodeError(
                f"{where}: {event.name} topic for {param.name} does not decode as {param.type}: {exc}",
                field=param.name, block_number=row["block_number"], log_index=row["log_index"],
            ) from exc
    try:
        data = _to_bytes(row["data"] if row["data"] is not None else b"", field="data", where=where)
        if len(data) != 32 * len(event.data):
            raise errors.DecodeError(
                f"{where}: {event.name} data has {len(data)} bytes, expected {32 * len(event.data)}",
                field="data", block_number=row["block_number"], log_index=row["log_index"],
            )
        decoded = eth_abi.abi.decode([p.type for p in event.data], data)
    except (eth_abi.exceptions.DecodingError, OverflowError) as exc:
        raise errors.DecodeError(
            f"{where}: {event.name} data does not decode as ({', '.join(p.type for p in event.data)}): {exc}",
            field="data", block_number=row["block_number"], log_index=row["log_index"],
        ) from exc
    values.update(zip((p.name for p in event.data), decoded))
    out: dict[str, Any] = {
        "block_number": row["block_number"],
        "transaction_index": row.get("transaction_index"),
        "log_index": row["log_index"],
        "transaction_hash": _to_hex(row.get("transaction_hash")),
        "event": event.name,
        "chain_id": row.get("chain_id"),
    }
    for param in event.params:
        value = values[param.name]
        if param.type == "address":
            value = str(value).lower()
        elif param.type in _UINT256:
            value = str(value)  # exact: a Python int printed in base 10
        out[event.column[param.name]] = value
    return out


def staking_events(logs: pa.Table, *, address: str = events.STAKING_ADDRESS) -> pa.Table:
    """Decode every staking event emitted by ``address`` in a Cryo ``logs`` table.

    Logs from other addresses and logs with other topic0s are ignored. Raises
    DecodeError (naming block, log index and field) for a staking log that does not
    decode, InputSchemaError if ``logs`` lacks one of Cryo's log columns.
    """
    selected = _select(logs, address)
    rows = [_decode_row(row) for row in selected.to_pylist()]
    rows.sort(key=lambda r: (r["block_number"], r["log_index"]))
    return pa.Table.from_pylist(rows, schema=SCHEMA)
