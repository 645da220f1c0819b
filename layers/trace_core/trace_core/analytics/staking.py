"""``staking_concentration``: stake by validator, delegators per validator, Gini / top-K / Nakamoto over time.

Metrics count validators with stake > 0 only (a validator without stake holds no
share of consensus). They are exact: :mod:`trace_core.analytics.metrics` works on
Python ints and returns Fractions.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from trace_core.analytics import metrics, params, ports, results, series, windows

NAME = "staking_concentration"
TITLE = "Staking concentration"
DESCRIPTION = (
    "Stake and delegator count per validator at the window's last block, and over `samples` blocks through "
    "the window: Gini coefficient, top-K share and Nakamoto coefficients (fewest validators holding more "
    "than 1/3 and more than 1/2 of the stake), exact."
)
RELATION = "staking_events"
TEMPLATE = "staking_concentration"


class Params(params.WindowParams):
    samples: Annotated[int, Field(ge=1, le=2000)] = Field(
        default=50, description="sampled blocks through the window (the last is its last block)"
    )
    top_k: Annotated[int, Field(ge=1, le=100)] = Field(default=3, description="K of the top-K share")


def sql_values(p: Params, window: windows.Window) -> dict[str, Any]:
    sampling = windows.sampling(window, p.samples)
    return {"from_block": window.from_block, "to_block": window.to_block, "step": sampling.step}


def _metrics(stakes: list[int], top_k: int) -> tuple[Any, ...]:
    positive = [s for s in stakes if s > 0]
    return (
        len(positive),
        sum(positive),
        metrics.gini(positive),
        metrics.top_k_share(positive, top_k),
        metrics.nakamoto(positive, metrics.ONE_THIRD),
        metrics.nakamoto(positive, metrics.ONE_HALF),
    )


def shape(p: Params, window: windows.Window, rows: ports.Rows, sql: str) -> results.AnalyticsResult:
    sampling = windows.sampling(window, p.samples)
    found = series.records(rows, NAME, ("validator_id", "bucket", "stake", "delegators"))
    points = [
        (int(r["validator_id"]), int(r["bucket"]),
         (series.exact_int(r["stake"], analytic=NAME, column="stake"), int(r["delegators"])))
        for r in found
    ]
    # None until a validator's first stake change: it does not exist yet at that block.
    filled = series.carry_forward(points, sampling.count, initial=lambda: None)
    validators = sorted(filled)
    blocks = sampling.blocks
    stake_rows: list[tuple[int, int, int, int]] = []
    concentration_rows: list[tuple[Any, ...]] = []
    for k, block in enumerate(blocks):
        present = [(v, filled[v][k]) for v in validators if filled[v][k] is not None]
        stake_rows.extend((block, v, value[0], value[1]) for v, value in present)
        concentration_rows.append((block, *_metrics([value[0] for _, value in present], p.top_k)))
    tip = [(v, filled[v][-1]) for v in validators if filled[v][-1] is not None]
    tip.sort(key=lambda item: (-item[1][0], item[0]))
    tip_shares = metrics.shares([value[0] for _, value in tip])
    stake_by_validator = results.Table(
        name="stake_by_validator",
        title=f"Stake by validator after block {window.tip}",
        columns=(
            results.Column("validator_id", "integer"),
            results.Column("stake", "amount", "delegated stake, wei"),
            results.Column("delegators", "integer", "delegators with stake > 0"),
            results.Column("share", "ratio", "share of all stake"),
        ),
        rows=tuple((v, value[0], value[1], share) for (v, value), share in zip(tip, tip_shares)),
    )
    metric_columns = (
        results.Column("validators", "integer", "validators with stake > 0"),
        results.Column("total_stake", "amount", "wei"),
        results.Column("gini", "ratio", "Gini coefficient of stake across validators"),
        results.Column("top_k_share", "ratio", f"share of stake held by the top {p.top_k} validators"),
        results.Column("nakamoto_third", "integer", "fewest validators holding more than 1/3 of stake"),
        results.Column("nakamoto_half", "integer", "fewest validators holding more than 1/2 of stake"),
    )
    concentration = results.Table(
        name="concentration",
        title="Stake concentration over time",
        columns=(results.Column("block_number", "block", "sampled block (after it)"), *metric_columns),
        rows=tuple(concentration_rows),
    )
    stake_series = results.Table(
        name="stake_series",
        title="Stake by validator over time",
        columns=(
            results.Column("block_number", "block", "sampled block (after it)"),
            results.Column("validator_id", "integer"),
            results.Column("stake", "amount", "wei"),
            results.Column("delegators", "integer", "delegators with stake > 0"),
        ),
        rows=tuple(stake_rows),
    )
    summary = results.summary(
        (results.Column("tip_block", "block"), *metric_columns, results.Column("top_k", "integer"),
         results.Column("sample_step", "integer", "blocks between samples")),
        (window.tip, *concentration_rows[-1][1:], p.top_k, sampling.step),
    )
    return results.AnalyticsResult(
        name=NAME, title=TITLE, params=p.model_dump(), from_block=window.from_block, to_block=window.to_block,
        tables={"stake_by_validator": stake_by_validator, "concentration": concentration,
                "stake_series": stake_series},
        summary=summary, sql=(sql,),
    )
