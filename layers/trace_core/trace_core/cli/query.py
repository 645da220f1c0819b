"""`trace-lite query "SQL"` and `trace-lite token mint | rotate-key`.

`query` mints a short-lived user token for the Lite org (slug ``lite``, user
``lite@localhost``, created on first use) granting every dataset version chain
sync has made visible, and asks the running Query Service over HTTP. It needs
`trace-lite up` (the service is one of its components).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import psycopg
import typer
from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

from trace_core import errors
from trace_core.cli import context
from trace_core.lite import query as query_lite

if TYPE_CHECKING:
    import pyarrow as pa

    from trace_core.query.service import client as query_client

# pyarrow, the Query Service's client (httpx) and token signing (boto3) are imported by the commands that use
# them: registering them (and `trace-lite --help`) must not pay for it (tests/unit/test_cli_startup.py).

console = Console()
token_app = typer.Typer(no_args_is_help=True, help="Capability tokens for the Query Service.")
# Rows printed to the terminal by default (files get everything the service allows).
DISPLAY_ROWS = 1000


def register(app: typer.Typer) -> None:
    app.command()(query)
    app.add_typer(token_app, name="token")


def _service_url() -> str:
    return query_lite.running_url(context.settings())


def _lite_token(datasets: list[str] | None, ttl: dt.timedelta) -> str:
    from trace_core.auth import issuing, keys

    settings = context.settings()
    with psycopg.connect(context.database_url(), row_factory=dict_row) as conn:
        return issuing.lite_user_token(conn, keys.from_settings(settings), issuer=settings.token_issuer,
                                       datasets=datasets or None, ttl=ttl)


def _printable(table: pa.Table) -> pa.Table:
    """Binary columns as 0x-hex (Arrow's CSV writer and terminals cannot show raw bytes)."""
    import pyarrow as pa

    columns = []
    for column in table.columns:
        binary = pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type) or \
            pa.types.is_fixed_size_binary(column.type)
        columns.append(
            pa.array([None if v is None else "0x" + v.hex() for v in column.to_pylist()], pa.string())
            if binary else column
        )
    return pa.table(columns, names=table.column_names)


def _write(table: pa.Table, out: Path) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = out.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(table, out)
    elif suffix == ".csv":
        pacsv.write_csv(_printable(table), out)
    else:
        raise errors.TraceError(f"--out {out}: expected a .parquet or .csv file name", field="out",
                                expected=".parquet or .csv")


def query(
    sql: Annotated[str, typer.Argument(help="One read-only SELECT over the synced datasets (blocks, logs, ...).")],
    format: Annotated[str, typer.Option("--format", "-f", help="table or json (ignored with --out).")] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the result to a .parquet or .csv file.")
                   ] = None,
    max_rows: Annotated[int | None, typer.Option("--max-rows", min=1, help="Cap on rows returned.")] = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="Grant only these datasets.")] = None,
) -> None:
    """Ask the Query Service a question about the synced data."""
    from trace_core.query.service import client as query_client
    from trace_core.query.service import results

    if format not in ("table", "json"):
        raise errors.TraceError(f"--format {format!r}: expected table or json", field="format",
                                expected="table or json")
    url = _service_url()
    token = _lite_token(dataset, dt.timedelta(minutes=10))
    settings = context.settings()
    with query_client.QueryClient(url, token, timeout_s=settings.query_timeout_s + 30) as http:
        if out is not None:
            # Files may be larger than the inline cap: go through the results bucket.
            answer = http.query(sql, max_rows=max_rows, export=True)
            _write(answer.table, out)
            console.print(f"wrote {answer.table.num_rows} rows to {out}" +
                          (" (truncated by the row cap)" if answer.truncated else ""))
            return
        answer = http.query(sql, max_rows=max_rows or DISPLAY_ROWS)
    if format == "json":
        rows = results.json_rows(answer.table)
        names = answer.table.column_names
        print(json.dumps([dict(zip(names, row)) for row in rows]))
        return
    console.print(_table(answer))


def _table(answer: query_client.Answer) -> Table:
    shown = _printable(answer.table)
    table = Table(caption=f"{shown.num_rows} rows" + (" (truncated)" if answer.truncated else ""))
    for name in shown.column_names:
        table.add_column(name, overflow="fold")
    for row in zip(*[[_cell(v) for v in col.to_pylist()] for col in shown.columns]):
        table.add_row(*row)
    return table


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(value)


@token_app.command("mint")
def mint(
    ttl: Annotated[int, typer.Option("--ttl", min=1, max=86400, help="Lifetime in seconds (at most a day).")] = 3600,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="Grant only these datasets.")] = None,
) -> None:
    """Print a Bearer token for POST /v1/query granting the Lite org every visible dataset version."""
    print(_lite_token(dataset, dt.timedelta(seconds=ttl)))


@token_app.command("rotate-key")
def rotate_key() -> None:
    """Make a new signing key current; tokens signed with the previous one verify for 25 hours."""
    from trace_core.auth import keys

    kid = keys.from_settings(context.settings()).rotate()
    console.print(f"signing key rotated: current key id {kid}")

