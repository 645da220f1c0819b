"""``anvil``: the local EVM node (npm ``@foundry-rs/anvil``), chain id 10143 like Monad testnet."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx

from trace_core import errors
from trace_core.lite import procs

# npm may refuse anvil's install script; the platform package's binary works without it.
_CANDIDATES = (
    "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
    "node_modules/@foundry-rs/anvil-darwin-arm64/bin/anvil",
    "node_modules/@foundry-rs/anvil-linux-arm64/bin/anvil",
    "node_modules/@foundry-rs/anvil-darwin-amd64/bin/anvil",
)


def binary(root: Path | None = None) -> Path:
    """The anvil binary installed by `npm ci` in the repository root."""
    base = root or project_root()
    for candidate in _CANDIDATES:
        path = base / candidate
        if path.exists():
            return path
    raise errors.ComponentError(
        "anvil is not installed (looked under node_modules/@foundry-rs/)",
        component="anvil",
        fix="run `make install` (it runs `npm ci`; Node and npm must be on PATH)",
    )


def project_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "package.json").exists() and (parent / "pyproject.toml").exists():
            return parent
    return Path.cwd()


def url(port: int) -> str:
    return f"http://{procs.HOST}:{port}"


def start(
    port: int,
    log: Path,
    *,
    chain_id: int = 10143,
    load_state: Path | None = None,
    extra: list[str] | None = None,
    states_dir: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start anvil on 127.0.0.1:``port``.

    anvil persists old block states under ``~/.foundry/anvil/tmp`` and never
    deletes them when stopped; ``states_dir`` (default: beside the log) keeps
    them where :func:`remove_states` can delete them.
    """
    states = states_dir or states_dir_for(log)
    cmd = [
        str(binary()),
        "--host", procs.HOST,
        "--port", str(port),
        "--chain-id", str(chain_id),
        "--silent",
        "--cache-path", str(states),
    ]
    if load_state is not None:
        cmd += ["--load-state", str(load_state)]
    cmd += extra or []
    proc = procs.spawn(cmd, log)
    procs.wait_until("anvil", lambda: chain_id_of(url(port)) == chain_id, proc=proc, log=log, timeout=30)
    return proc


def states_dir_for(log: Path) -> Path:
    return log.parent / f"{log.stem}-states"


def remove_states(states_dir: Path) -> None:
    shutil.rmtree(states_dir, ignore_errors=True)


def chain_id_of(rpc_url: str) -> int:
    response = httpx.post(
        rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=2.0
    )
    return int(response.json()["result"], 16)
