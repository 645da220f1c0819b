"""``total_supply``: a token's total supply over a block window (mints minus burns, cumulative, exact)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from trace_core.analytics import params, ports, results, series, windows

NAME = "total_supply"
TITLE = "Total supply by block"
DESCRIPTION = (
    "Total supply of an ERC-20 token after each block where it changed (mints minus burns from Transfer "
    "events, summed exactly), or after every block of the window with every_block=true."
)
RELATION = "erc20_transfers"
TEMPLATE = "total_supply"
ZERO_ADDRESS = "0x" + "00" * 20


class Params(params.WindowParams):
    token: params.Address = Field(description="the token contract address")
    every_block: bool = Field(default=False, description="one row for every block of the window, not only changes")


def sql_values(p: Params, window: windows.Window) -> dict[str, Any]:
    return {"token": p.token, "zero_address": ZERO_ADDRESS, "from_block": window.from_block,
            "to_block": window.to_block}


def shape(p: Params, window: windows.Window, rows: ports.Rows, sql: str) -> results.AnalyticsResult:
    found = series.records(rows, NAME, ("block_number", "total_supply"))
    opening = 0
    changes: list[tuple[int, int]] = []
    for row in found:
        block = int(row["block_number"])
        supply = series.exact_int(row["total_supply"], analytic=NAME, column="total_supply")
        if block < window.from_block:
            opening = supply
        else:
            changes.append((block, supply))
    # A block whose mints and burns cancel out leaves supply unchanged: not a change.
    points = _changed(opening, changes)
    closing = points[-1][1] if points else opening
    changed = len(points)
    if p.every_block:
        by_block = dict(points)
        value = opening
        out = []
        for block in range(window.from_block, window.to_block):
            value = by_block.get(block, value)
            out.append((block, value))
        points = out
    table = results.Table(
        name="total_supply",
        title=f"Total supply of {p.token}",
        columns=(
            results.Column("block_number", "block", "block after which the supply is measured"),
            results.Column("total_supply", "amount", "total supply in the token's base units"),
        ),
        rows=tuple(points),
    )
    summary = results.summary(
        (
            results.Column("token", "address"),
            results.Column("opening_supply", "amount", f"supply after block {window.from_block - 1}"),
            results.Column("closing_supply", "amount", f"supply after block {window.tip}"),
            results.Column("changes", "integer", "blocks in the window where the supply changed"),
            results.Column("history_from", "block", "supply is summed from this first synced block"),
        ),
        (p.token, opening, closing, changed, window.history_from),
    )
    return results.AnalyticsResult(
        name=NAME, title=TITLE, params=p.model_dump(), from_block=window.from_block, to_block=window.to_block,
        tables={"total_supply": table}, summary=summary, sql=(sql,),
    )


def _changed(opening: int, changes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    previous = opening
    for block, supply in changes:
        if supply != previous:
            out.append((block, supply))
        previous = supply
    return out
