"""`trace-lite demo`: the golden path on the embedded default, end to end.

Brings the Lite stack up (or reuses it), seeds the Monad-like local chain (or
reuses it), applies the local chain_sync job and shows its progress, then asks
questions of the synced data. Running it again reuses everything already done.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import typer
from psycopg.rows import dict_row
from rich.console import Console
from rich.live import Live

from trace_core import errors
from trace_core.cli import analytics as analytics_cli
from trace_core.cli import chainsync as chainsync_cli
from trace_core.cli import context
from trace_core.cli import stack as stack_cli
from trace_core.lite import anvil, stack

if TYPE_CHECKING:
    from trace_core import chain
    from trace_core.chainsync import spec as spec_mod

# The chain, chain sync and analytics (eth_abi, httpx, boto3, pyarrow) are imported when the demo runs:
# registering it (and `trace-lite --help`) must not pay for them (tests/unit/test_cli_startup.py).

# Piped output (CI logs, `| tee`) gets room for the wide progress and analytics tables.
console = Console(width=None if sys.stdout.isatty() else 160)
JOB_FILE = Path("examples") / "chain_sync.local.yaml"


def register(app: typer.Typer) -> None:
    app.command()(demo)


def _chain(settings: Any, seed: int, blocks: int) -> chain.ChainInfo:
    """The seeded chain on the stack's node: reused when chain.json still describes that node."""
    from trace_core import chain

    try:
        info = chain.read_info(settings.home)
        block = chain.RpcClient(settings.rpc_url).call("eth_getBlockByNumber", [hex(info.last_block), False])
        if info.rpc_url == settings.rpc_url and block and block["hash"] == info.last_block_hash:
            console.print(f"reusing the seeded chain: blocks {info.first_block}..{info.last_block}, "
                          f"{info.transactions} transactions")
            return info
    except errors.TraceError:
        pass
    started = time.monotonic()
    with console.status(f"seeding {blocks} blocks of Monad-like activity (seed {seed})..."):
        info = chain.seed(settings.rpc_url, seed=seed, blocks=blocks, cache_dir=settings.home / "chains")
    chain.write_info(settings.home, info)
    console.print(f"seeded blocks {info.first_block}..{info.last_block} ({info.transactions} transactions) "
                  f"in {time.monotonic() - started:.0f}s; token {info.token.address}, "
                  f"staking {info.staking.address}")
    return info


def job_spec(info: chain.ChainInfo, rpc_url: str) -> spec_mod.ChainSyncSpec:
    """The example job, targeted at the whole seeded range [0, end_block)."""
    import yaml

    from trace_core.chainsync import spec as spec_mod

    data = yaml.safe_load((anvil.project_root() / JOB_FILE).read_text())
    data["mode"]["to_block"] = info.end_block
    return spec_mod.parse(yaml.safe_dump(data), environ={"TRACE_RPC_URL": rpc_url})


def _sync(settings: Any, spec: spec_mod.ChainSyncSpec, timeout: float) -> None:
    from trace_core.chainsync import chain_reader, jobs
    from trace_core.chainsync import spec as spec_mod
    from trace_core.lite import durability

    chain_reader.check_pool(spec.rpc.urls, spec.chain_id)
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        result = jobs.apply(conn, spec, chain_reader.RpcChainReader(spec.rpc.urls),
                            store=durability.datasets_store(settings))
        lost = f" (re-extracting {result.recovered} lost dataset version(s))" if result.recovered else ""
        mode = spec.mode
        target = f"[{mode.from_block}, {mode.to_block})" if isinstance(mode, spec_mod.FixedTarget) else (
            f"from {mode.from_block}, following the head")
        console.print(f"job {spec.name}: {result.outcome}{lost}; syncing {target} "
                      f"in ranges of {spec.chunk_size} blocks")
        deadline = time.monotonic() + timeout
        table, finished = chainsync_cli._progress_table(conn, spec.name)
        with Live(table, console=console, refresh_per_second=4, transient=not console.is_terminal) as live:
            while not finished:
                if time.monotonic() > deadline:
                    chainsync_cli._plain_lines(conn, spec.name)
                    raise errors.TraceError(
                        f"chain sync did not finish within {timeout:.0f}s; see `trace-lite status --job {spec.name}`")
                time.sleep(0.5)
                conn.commit()  # see the workers' commits
                table, finished = chainsync_cli._progress_table(conn, spec.name)
                live.update(table)
        console.print(table)


def _analytics(settings: Any, info: chain.ChainInfo) -> Path:
    """Run the three stored analytics, print their tables, and write charts and the HTML report."""
    from trace_core.analytics import report  # matplotlib: only the commands that draw import it
    from trace_core.lite import analytics as lite_analytics

    token = info.token.address
    wanted: list[tuple[str, dict[str, Any]]] = [
        ("total_supply", {"token": token}),
        ("top_holders", {"token": token, "n": 5, "samples": 40}),
        ("staking_concentration", {"samples": 40, "top_k": 3}),
    ]
    results = []
    for name, params in wanted:
        result = lite_analytics.run(name, params, settings)
        analytics_cli.show(result, out=console)
        results.append(result)
    return report.write_report(results, settings.home / "reports")


def demo(
    blocks: int = typer.Option(2_000, "--blocks", min=100, help="Blocks of activity to seed."),
    seed: int = typer.Option(42, "--seed", min=0, help="Seed of the activity generator."),
    timeout: float = typer.Option(600, "--timeout", help="Seconds to wait for the sync."),
) -> None:
    """Up, seed, sync, query: the whole platform on this machine. Leaves the stack running."""
    started = time.monotonic()
    console.rule("[bold]1. The Lite stack")
    stack.up(context.settings())
    console.print(stack_cli._health_table(stack.status(context.settings())))
    settings = context.settings()

    console.rule("[bold]2. A Monad-like local chain")
    info = _chain(settings, seed, blocks)

    console.rule("[bold]3. Chain sync with Cryo into versioned Parquet")
    spec = job_spec(info, settings.rpc_url or "")
    _sync(settings, spec, timeout)

    console.rule("[bold]4. Analytics through the Query Service")
    report = _analytics(settings, info)

    console.rule(f"[bold]Done in {time.monotonic() - started:.0f}s")
    console.print(f"Report: {report}  (charts beside it)")
    console.print("The stack is still running. Try:")
    for line in (
        'trace-lite query "select count(*) as blocks, max(block_number) as tip from blocks"',
        'trace-lite query "select to_address, count(*) as n from erc20_transfers group by 1 order by n desc limit 5"',
        f"trace-lite analytics run top_holders --param token={info.token.address} --param n=3 --plot holders.png",
        "trace-lite datasets",
        "trace-lite status",
        "trace-lite down      # stop everything",
    ):
        console.print(f"  .venv/bin/{line}")

