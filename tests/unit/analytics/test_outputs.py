"""Charts, the HTML report and JSON: every analytic draws, and the numbers a user reads stay exact."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from trace_core.analytics import errors, memory, plots, report, results, run

from tests.unit.analytics import test_templates as histories

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def all_results() -> list[results.AnalyticsResult]:
    transfers, _ = histories._history(11, 120)
    events, _ = histories._staking_history(11, 120)
    staking = pa.table({
        "block_number": pa.array([e[0] for e in events], pa.uint32()),
        "event": [e[1] for e in events],
        "validator_id": pa.array([e[2] for e in events], pa.uint64()),
        "delegator": [e[3] for e in events],
        "amount": [str(e[4]) for e in events],
    })
    query = memory.ArrowQuery({"erc20_transfers": histories._erc20_table(transfers), "staking_events": staking})
    coverage = memory.FixedCoverage({"erc20_transfers": [(0, 120)], "staking_events": [(0, 120)]})
    token = histories.TOKEN
    return [
        run.run("total_supply", {"token": token}, query=query, coverage=coverage),
        run.run("top_holders", {"token": token, "n": 4, "samples": 12}, query=query, coverage=coverage),
        run.run("staking_concentration", {"samples": 12}, query=query, coverage=coverage),
    ]


def test_every_analytic_draws_a_png(all_results, tmp_path: Path):
    for result in all_results:
        path = plots.plot(result, tmp_path / "charts" / f"{result.name}.png")
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5_000


def test_a_plot_file_must_be_png(all_results, tmp_path: Path):
    with pytest.raises(errors.AnalyticsError, match=r"expected a \.png file name"):
        plots.plot(all_results[0], tmp_path / "chart.jpg")


def test_the_report_embeds_charts_and_shows_exact_amounts(all_results, tmp_path: Path):
    page_path = report.write_report(all_results, tmp_path / "report")
    page = page_path.read_text()
    assert page_path.name == "index.html"
    assert page.count("data:image/png;base64,") == 3
    for result in all_results:
        assert result.title in page and (tmp_path / "report" / f"{result.name}.png").exists()
    # The exact closing supply (well past 2**53) is printed digit for digit
    closing = all_results[0].summary_dict()["closing_supply"]
    assert closing > 2**128 and str(closing) in page


def test_json_gives_amounts_as_decimal_strings_and_ratios_with_18_places(all_results):
    supply, holders, staking = (json.loads(json.dumps(r.to_json())) for r in all_results)
    assert supply["summary"]["closing_supply"] == str(all_results[0].summary_dict()["closing_supply"])
    assert all(isinstance(row[1], str) for row in supply["tables"]["total_supply"]["rows"])
    assert [c["kind"] for c in holders["tables"]["balances"]["columns"]] == ["block", "address", "amount"]
    gini = staking["summary"]["gini"]
    assert gini == results.json_value("ratio", all_results[2].summary_dict()["gini"])
    assert len(gini.split(".")[1]) == 18
