"""Charts of analytics results (matplotlib, Agg backend: no display needed).

Floats appear here only to place points on a chart; every number a user reads as
a value (tables, JSON, the report's tables) comes from the exact result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to files, never to a window

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from trace_core.analytics import errors, results

DPI = 110


def short(address: str) -> str:
    """``0x1234…abcd``: enough to tell holders apart in a legend."""
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def _supply(result: results.AnalyticsResult) -> Figure:
    summary = result.summary_dict()
    token = str(summary.get("token", ""))
    rows = result.table("total_supply").rows
    opening = int(summary.get("opening_supply", 0))
    # A step line from the window's start: the opening supply, then each change.
    blocks = [result.from_block] + [b for b, _ in rows] + [result.to_block - 1]
    values = [opening] + [v for _, v in rows] + [summary.get("closing_supply", opening)]
    fig, (total, change) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    total.step(blocks, [float(v) for v in values], where="post", color="tab:blue",
               label=f"total supply of {short(token)}")
    total.set_title(f"Total supply of token {token}\nblocks {result.from_block}-{result.to_block - 1}")
    total.set_ylabel("total supply (token base units)")
    # One large mint can dwarf every later change: each block's net change, on a log scale, shows them all.
    # The deltas are exact ints; only drawing them uses floats.
    deltas = [(b, v - p) for (b, v), p in zip(rows, [opening] + [v for _, v in rows])]
    minted = [(b, d) for b, d in deltas if d > 0]
    burned = [(b, d) for b, d in deltas if d < 0]
    change.vlines([b for b, _ in minted], 0, [float(d) for _, d in minted], color="tab:green",
                  label="net minted in the block")
    change.vlines([b for b, _ in burned], 0, [float(d) for _, d in burned], color="tab:red",
                  label="net burned in the block")
    change.axhline(0, color="grey", linewidth=0.8)
    change.set_yscale("symlog", linthresh=1.0)
    change.set_title("Supply changes per block")
    change.set_xlabel("block number")
    change.set_ylabel("change (token base units, log scale)")
    for ax in (total, change):
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    return fig


def _holders(result: results.AnalyticsResult) -> Figure:
    summary = result.summary_dict()
    token = str(summary.get("token", ""))
    leaderboard = result.table("leaderboard").rows
    series: dict[str, list[tuple[int, int]]] = {}
    for block, holder, balance in result.table("balances").rows:
        series.setdefault(holder, []).append((block, balance))
    fig, ax = plt.subplots(figsize=(9, 5))
    for rank, holder, _ in leaderboard:
        points = series.get(holder, [])
        ax.step([b for b, _ in points], [float(v) for _, v in points], where="post", marker=".",
                label=f"#{rank} {short(holder)}")
    # Balances span many orders of magnitude (a whale at 2**130 next to 1e18): a log scale that still shows 0.
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0)
    ax.set_title(f"Top {len(leaderboard)} holders of {token} (ranked at block {summary.get('tip_block')})")
    ax.set_xlabel("block number")
    ax.set_ylabel("balance (token base units, log scale)")
    ax.grid(True, alpha=0.3)
    if leaderboard:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", title="holder")
    return fig


def _staking(result: results.AnalyticsResult) -> Figure:
    tip = result.table("stake_by_validator")
    over_time = result.table("concentration").dicts()
    stake_rows = result.table("stake_series").rows
    fig, (bars, areas, lines) = plt.subplots(3, 1, figsize=(9, 12))
    # 1. Distribution at the tip.
    ids = [f"#{v}" for v in tip.column("validator_id")]
    shares = [float(s or 0) for s in tip.column("share")]
    drawn = bars.bar(ids, shares, color="tab:purple", label="share of stake")
    for rect, count in zip(drawn, tip.column("delegators")):
        bars.annotate(f"{count} del.", (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                      ha="center", va="bottom", fontsize="small")
    bars.yaxis.set_major_formatter(PercentFormatter(1.0))
    bars.set_title(f"Stake by validator after block {result.to_block - 1} (labels: delegators)")
    bars.set_xlabel("validator id")
    bars.set_ylabel("share of total stake")
    bars.legend(loc="best")
    # 2. Stake by validator over time, stacked.
    blocks = sorted({b for b, _, _, _ in stake_rows})
    validators = sorted({v for _, v, _, _ in stake_rows})
    by_key = {(b, v): s for b, v, s, _ in stake_rows}
    if blocks:
        areas.stackplot(blocks, [[float(by_key.get((b, v), 0)) for b in blocks] for v in validators],
                        labels=[f"validator #{v}" for v in validators], alpha=0.85)
        areas.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    areas.set_title("Stake by validator over blocks")
    areas.set_xlabel("block number")
    areas.set_ylabel("stake (wei)")
    # 3. Concentration over time.
    xs = [r["block_number"] for r in over_time]
    top_k = result.params.get("top_k", 3)
    lines.plot(xs, [float(r["gini"]) if r["gini"] is not None else None for r in over_time],
               color="tab:red", label="Gini coefficient")
    lines.plot(xs, [float(r["top_k_share"]) if r["top_k_share"] is not None else None for r in over_time],
               color="tab:orange", label=f"top-{top_k} share")
    lines.set_ylim(0, 1.05)
    lines.set_xlabel("block number")
    lines.set_ylabel("Gini / share (0-1)")
    counts = lines.twinx()
    counts.step(xs, [r["nakamoto_third"] for r in over_time], where="post", color="tab:green", linestyle="--",
                label="Nakamoto (>1/3)")
    counts.step(xs, [r["nakamoto_half"] for r in over_time], where="post", color="tab:blue", linestyle=":",
                label="Nakamoto (>1/2)")
    counts.set_ylabel("validators (Nakamoto coefficient)")
    counts.set_ylim(bottom=0)
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles = lines.get_legend_handles_labels()
    more = counts.get_legend_handles_labels()
    lines.legend(handles[0] + more[0], handles[1] + more[1], loc="lower left", fontsize="small")
    lines.set_title("Stake concentration over blocks")
    for ax in (areas, lines):
        ax.grid(True, alpha=0.3)
    return fig


FIGURES: dict[str, Callable[[results.AnalyticsResult], Figure]] = {
    "total_supply": _supply,
    "top_holders": _holders,
    "staking_concentration": _staking,
}


def plot(result: results.AnalyticsResult, path: Path) -> Path:
    """Draw ``result`` into the PNG file ``path`` (directories created); returns ``path``."""
    draw = FIGURES.get(result.name)
    if draw is None:
        raise errors.AnalyticsError(f"no chart for analytic {result.name!r}", field="name", expected=list(FIGURES))
    if path.suffix.lower() != ".png":
        raise errors.AnalyticsError(f"--plot {path}: expected a .png file name", field="plot", expected=".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = draw(result)
    try:
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path
