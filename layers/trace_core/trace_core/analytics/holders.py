"""``top_holders``: the N largest holders at the window's last block, and their balances through it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from trace_core.analytics import params, ports, results, series, windows

NAME = "top_holders"
TITLE = "Top holders and their balances over time"
DESCRIPTION = (
    "The n largest holders of an ERC-20 token at the window's last block (ties broken by address), and the "
    "balance of each at `samples` evenly spaced blocks through the window, exact."
)
RELATION = "erc20_transfers"
TEMPLATE = "top_holders"
ZERO_ADDRESS = "0x" + "00" * 20


class Params(params.WindowParams):
    token: params.Address = Field(description="the token contract address")
    n: Annotated[int, Field(ge=1, le=100)] = Field(default=10, description="how many holders")
    samples: Annotated[int, Field(ge=1, le=2000)] = Field(
        default=50, description="balance samples through the window (the last is its last block)"
    )


def sql_values(p: Params, window: windows.Window) -> dict[str, Any]:
    sampling = windows.sampling(window, p.samples)
    return {"token": p.token, "zero_address": ZERO_ADDRESS, "from_block": window.from_block,
            "to_block": window.to_block, "n": p.n, "step": sampling.step}


def shape(p: Params, window: windows.Window, rows: ports.Rows, sql: str) -> results.AnalyticsResult:
    sampling = windows.sampling(window, p.samples)
    found = series.records(rows, NAME, ("holder_rank", "holder", "bucket", "balance"))
    ranks: dict[str, int] = {}
    points = []
    for row in found:
        holder = str(row["holder"])
        ranks[holder] = int(row["holder_rank"])
        balance = series.exact_int(row["balance"], analytic=NAME, column="balance")
        points.append((holder, int(row["bucket"]), balance))
    filled = series.carry_forward(points, sampling.count, initial=lambda: 0)
    order = sorted(ranks, key=ranks.__getitem__)
    leaderboard = results.Table(
        name="leaderboard",
        title=f"Top {p.n} holders of {p.token} after block {window.tip}",
        columns=(
            results.Column("rank", "integer"),
            results.Column("holder", "address"),
            results.Column("balance", "amount", f"balance after block {window.tip}, token base units"),
        ),
        rows=tuple((ranks[h], h, filled[h][-1]) for h in order),
    )
    blocks = sampling.blocks
    balances = results.Table(
        name="balances",
        title=f"Balances of the top {p.n} holders of {p.token}",
        columns=(
            results.Column("block_number", "block", "sampled block (balance after it)"),
            results.Column("holder", "address"),
            results.Column("balance", "amount", "token base units"),
        ),
        rows=tuple((blocks[k], h, filled[h][k]) for h in order for k in range(sampling.count)),
    )
    summary = results.summary(
        (
            results.Column("token", "address"),
            results.Column("tip_block", "block", "the block the ranking is taken at"),
            results.Column("holders", "integer", "holders ranked (fewer than n if fewer hold a balance)"),
            results.Column("sample_step", "integer", "blocks between balance samples"),
            results.Column("history_from", "block", "balances are summed from this first synced block"),
        ),
        (p.token, window.tip, len(order), sampling.step, window.history_from),
    )
    return results.AnalyticsResult(
        name=NAME, title=TITLE, params=p.model_dump(), from_block=window.from_block, to_block=window.to_block,
        tables={"leaderboard": leaderboard, "balances": balances}, summary=summary, sql=(sql,),
    )
