"""`trace-lite analytics` as a user runs it: a separate process, the Lite state file, the running Query Service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trace_core.lite import query as query_lite
from trace_core.lite import state

from tests.integration.analytics import chain_calls
from tests.integration.analytics.conftest import Synced


@pytest.fixture
def cli(synced: Synced, query_service: str):
    """Run `trace-lite ...` against the synced data, as after `trace-lite up` (the state file names the service)."""
    home = synced.settings.home
    current = state.read(home)
    current.components[query_lite.NAME] = state.ComponentRecord(name=query_lite.NAME, managed=False,
                                                                url=query_service)
    state.write(home, current)
    env = {**os.environ, "TRACE_HOME": str(home), "TRACE_DATABASE_URL": synced.settings.database_url or ""}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "trace_core.cli", "analytics", *args], env=env, check=False,
                              capture_output=True, text=True, timeout=120)

    return run


def test_run_prints_exact_json_and_draws_the_chart_and_report(cli, synced: Synced, tmp_path: Path):
    token = synced.chain.info.token.address
    png, report = tmp_path / "holders.png", tmp_path / "report"
    done = cli("run", "top_holders", "--param", f"token={token}", "--param", "n=3", "--param", "samples=10",
               "--format", "json", "--plot", str(png), "--report", str(report))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["window"] == {"from_block": 0, "to_block": synced.end, "to_block_exclusive": True}
    leaderboard = result["tables"]["leaderboard"]["rows"]
    chain = chain_calls.uint_calls(synced.chain.url, [(token, "balanceOf(address)", [h], synced.end - 1)
                                                      for _, h, _ in leaderboard])
    # Amounts travel as decimal strings, exact
    assert [b for _, _, b in leaderboard] == [str(v) for v in chain]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    page = (report / "index.html").read_text()
    assert "Top holders and their balances over time" in page and str(chain[0]) in page
    assert "data:image/png;base64," in page


def test_list_shows_every_analytic_with_its_parameters(cli):
    done = cli("list")
    assert done.returncode == 0, done.stderr
    for text in ("total_supply", "top_holders", "staking_concentration", "token (address, required)", "top_k"):
        assert text in done.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "total_suply"], "no analytic named 'total_suply'; expected one of: total_supply, top_holders"),
        (["run", "top_holders", "--param", "n=many"], "parameter token is required"),
        (["run", "staking_concentration", "--param", "top_k=many"],
         "parameter top_k: expected an integer, got 'many'; parameters of staking_concentration: from_block"),
        (["run", "staking_concentration", "--param", "samples"], "expected NAME=VALUE"),
        (["run", "staking_concentration", "--format", "yaml"], "--format 'yaml': expected table or json"),
    ],
)
def test_bad_input_exits_1_with_an_error_naming_what_was_expected(cli, args, says):
    done = cli(*args)
    assert done.returncode == 1
    assert says in done.stderr


def test_a_window_outside_synced_blocks_names_them(cli, synced: Synced):
    done = cli("run", "staking_concentration", "--param", "from_block=100", "--param", f"to_block={synced.end + 5}")
    assert done.returncode == 1
    assert f"outside the synced blocks of staking_events: [0, {synced.end})" in done.stderr


def test_run_prints_tables_for_people(cli, synced: Synced):
    done = cli("run", "staking_concentration", "--param", "samples=5", "--param", "top_k=2")
    assert done.returncode == 0, done.stderr
    for text in (f"blocks [0, {synced.end})", f"Stake by validator after block {synced.end - 1}",
                 "Stake concentration over time", "gini", "top_k_share", "nakamoto_third"):
        assert text in done.stdout
