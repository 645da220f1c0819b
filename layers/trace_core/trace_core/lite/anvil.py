"""``anvil``: the local EVM node (npm ``@foundry-rs/anvil``), chain id 10143 like Monad testnet.

:func:`start_durable` is the Lite stack's node: its chain survives `down`/`up` and a crash
(docs/decisions/1303-durable-lite.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

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
    state_file: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start anvil on 127.0.0.1:``port``.

    anvil persists old block states under ``~/.foundry/anvil/tmp`` and never
    deletes them when stopped; ``states_dir`` (default: beside the log) keeps
    them where :func:`remove_states` can delete them. ``state_file``: load the chain from
    it if it exists, dump to it every :data:`STATE_INTERVAL_SECONDS` and on exit.
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
    if state_file is not None:
        cmd += ["--state", str(state_file), "--state-interval", str(STATE_INTERVAL_SECONDS)]
    cmd += extra or []
    proc = procs.spawn(cmd, log)
    procs.wait_until("anvil", lambda: chain_id_of(url(port)) == chain_id, proc=proc, log=log, timeout=30)
    return proc


# How many seconds of blocks a SIGKILL may lose. A dump of a 2,000-block chain (about 60 MB,
# without historical states) costs anvil about 4% of a core at this interval.
STATE_INTERVAL_SECONDS = 2
STATE_FILE = "state.json"
LAST_GOOD_FILE = "state.last-good.json"
_LOADING_FILE = ".state.loading.json"
_CUT_SHORT = "failed to parse json file"
_PORT_FILE = "port"
_GENESIS_FILE = "genesis-timestamp"


def start_durable(port: int, log: Path, *, state_dir: Path, chain_id: int = 10143) -> subprocess.Popen[bytes]:
    """anvil whose chain lives in ``state_dir/state.json``: loaded at start, dumped every few seconds and at exit.

    anvil writes its dump in place, so a SIGKILL during a write leaves a cut-short file it
    refuses to load. Then the file is kept aside as ``state.corrupt-<time>.json`` and the
    last state that did load (copied aside at each start) is used: the blocks mined since
    are lost, and chain sync's hash links find and re-extract what they changed.
    Historical states are not dumped (five times the size): after a restart, ``eth_call``
    at old blocks fails as on a pruned node; blocks, receipts, logs and traces stay.
    The genesis time is fixed at creation (see :func:`_genesis_timestamp`), and the
    clock is set back to the wall clock once the state is loaded.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    state, last_good, loading = state_dir / STATE_FILE, state_dir / LAST_GOOD_FILE, state_dir / _LOADING_FILE
    if state.exists():
        shutil.copyfile(state, loading)  # what this start loads, before anvil's first dump rewrites it
    extra = ["--timestamp", str(_genesis_timestamp(state_dir, fresh=not state.exists()))]
    offset = log.stat().st_size if log.exists() else 0
    try:
        proc = start(port, log, chain_id=chain_id, state_file=state, extra=extra)
    except errors.ComponentError:
        if not state.exists() or _CUT_SHORT not in _log_since(log, offset):
            raise
        os.replace(state, state_dir / f"state.corrupt-{int(time.time())}.json")
        loading.unlink(missing_ok=True)
        if last_good.exists():
            shutil.copyfile(last_good, state)
        with open(log, "a") as out:
            out.write(f"trace-lite: {STATE_FILE} was cut short (anvil stopped while dumping); started from "
                      f"{LAST_GOOD_FILE if last_good.exists() else 'an empty chain'}\n")
        proc = start(port, log, chain_id=chain_id, state_file=state, extra=extra)
    else:
        if loading.exists():
            os.replace(loading, last_good)
    _resume_clock(url(port))
    return proc


def _genesis_timestamp(state_dir: Path, *, fresh: bool) -> int:
    """The chain's genesis time, fixed when it is created and passed at every start.

    anvil makes a new genesis block at each start before loading the state file, which
    holds the old one: with another timestamp the node then has two blocks 0 and answers
    for either (block 0's hash changes across restarts). The same timestamp gives the
    same genesis block, so there is only one.
    """
    file = state_dir / _GENESIS_FILE
    if fresh or not file.exists():
        file.write_text(str(int(time.time())))
    return int(file.read_text())


def _resume_clock(rpc_url: str) -> None:
    """Blocks mined from now on get the wall-clock time again (``--timestamp`` set the clock back to genesis)."""
    head = _rpc(rpc_url, "eth_getBlockByNumber", ["latest", False])
    _rpc(rpc_url, "anvil_setTime", [max(int(time.time()), int(head["timestamp"], 16))])


def _rpc(rpc_url: str, method: str, params: list[object]) -> dict[str, str]:
    import httpx  # deferred: `trace-lite` commands that never call it do not pay its import

    body = httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=5.0).json()
    if "error" in body:
        raise errors.ComponentError(f"anvil: {method} failed: {body['error']}", component="anvil")
    return body["result"]  # type: ignore[no-any-return]


def remembered_port(state_dir: Path) -> int:
    """The port the durable node had last time (0: none recorded)."""
    try:
        return int((state_dir / _PORT_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return 0


def remember_port(state_dir: Path, port: int) -> None:
    (state_dir / _PORT_FILE).write_text(str(port))


def _log_since(log: Path, offset: int) -> str:
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def states_dir_for(log: Path) -> Path:
    return log.parent / f"{log.stem}-states"


def remove_states(states_dir: Path) -> None:
    shutil.rmtree(states_dir, ignore_errors=True)


def chain_id_of(rpc_url: str) -> int:
    import httpx  # deferred: `trace-lite` commands that never call it do not pay its import

    response = httpx.post(
        rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=2.0
    )
    return int(response.json()["result"], 16)
