"""`trace-lite chain seed | info | compile`: the local Monad-like chain."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trace_core import errors, redact
from trace_core.cli import context
from trace_core.lite import anvil

if TYPE_CHECKING:
    from trace_core.chain import info as chain_info

# trace_core.chain (eth_abi, httpx, the seeder) is imported by the commands that use it: registering them
# (and `trace-lite --help`) must not pay for it (tests/unit/test_cli_startup.py).

console = Console()

DEFAULT_SEED = 42
DEFAULT_BLOCKS = 2_000


def register(app: typer.Typer) -> None:
    chain_app = typer.Typer(no_args_is_help=True, help="The local Monad-like chain (anvil).")
    chain_app.command("seed")(seed)
    chain_app.command("info")(show)
    chain_app.command("compile")(compile_contracts)
    app.add_typer(chain_app, name="chain")


def seed(
    seed: int = typer.Option(DEFAULT_SEED, "--seed", min=0, help="Seed of the activity generator."),
    blocks: int = typer.Option(DEFAULT_BLOCKS, "--blocks", min=10, help="Blocks to mine after genesis."),
) -> None:
    """Deploy the token and the staking contract on the Lite chain and mine deterministic activity."""
    from trace_core.chain import info as chain_info
    from trace_core.chain import seeder

    settings = context.settings()
    if not settings.rpc_url:
        raise errors.ComponentError(
            "no chain: the Lite stack is not up and TRACE_RPC_URL is unset",
            component="anvil",
            fix="run `trace-lite up` first",
        )
    started = time.monotonic()
    with Progress(
        TextColumn("mining"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("mining", total=blocks)
        chain = seeder.seed(
            settings.rpc_url,
            seed=seed,
            blocks=blocks,
            cache_dir=settings.home / "chains",
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    written = chain_info.write(settings.home, chain)
    console.print(_table(chain))
    console.print(f"seeded in {time.monotonic() - started:.1f}s; wrote {written}")


def show() -> None:
    """Print the seeded chain recorded in <TRACE_HOME>/chain.json."""
    from trace_core.chain import info as chain_info

    console.print(_table(chain_info.read(context.settings().home)))


def compile_contracts(
    check: bool = typer.Option(False, "--check", help="Fail if the committed artifacts differ from a fresh compile."),
) -> None:
    """Recompile contracts/*.sol with the pinned solcjs and rewrite contracts/artifacts.json."""
    from trace_core.chain import artifacts

    fresh = artifacts.compile_sources(anvil.project_root())
    if check:
        if artifacts.render(fresh) != artifacts.ARTIFACTS_FILE.read_text():
            console.print(f"[red]{artifacts.ARTIFACTS_FILE} is stale[/]: run `trace-lite chain compile`")
            raise typer.Exit(1)
        console.print(f"{artifacts.ARTIFACTS_FILE} matches {fresh.compiler}")
        return
    console.print(f"wrote {artifacts.write(fresh)} ({fresh.compiler})")


def _table(chain: chain_info.ChainInfo) -> Table:
    table = Table(title=f"Seeded chain (seed {chain.seed})", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("rpc url", redact.url(chain.rpc_url))
    table.add_row("chain id", str(chain.chain_id))
    table.add_row("blocks", f"{chain.first_block}..{chain.last_block} (end-exclusive {chain.end_block})")
    table.add_row("transactions", str(chain.transactions))
    token = chain.token
    table.add_row("token", f"{token.address} ({token.symbol}, deployed in block {token.deploy_block})")
    table.add_row("staking", chain.staking.address)
    table.add_row("validators", ", ".join(f"#{v.validator_id} {v.auth_address}" for v in chain.staking.validators))
    table.add_row("pool", f"{len(chain.pool)} accounts")
    table.add_row("historical state", "yes" if chain.historical_state else "no (old blocks' state was pruned)")
    return table
