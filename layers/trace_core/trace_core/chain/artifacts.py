"""Compiled contracts: committed next to their sources, regenerated with the pinned solcjs.

``contracts/artifacts.json`` holds the ABI and bytecode of every contract in
``contracts/*.sol``, the compiler version and the exact settings, plus the
sha256 of each source. Runtime only reads it (no Node needed to seed);
``compile_sources()`` (``trace-lite chain compile``) regenerates it, and a test
proves that recompiling reproduces the committed file byte for byte.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from trace_core.chain import errors

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
ARTIFACTS_FILE = CONTRACTS_DIR / "artifacts.json"
SOLC_VERSION = "0.8.37"

# Fixed so that recompiling reproduces the committed bytecode. bytecodeHash "none" keeps the
# metadata hash (which covers comments and paths) out of the bytecode.
SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "prague",
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


class Contract(BaseModel):
    """One compiled contract: its ABI, creation bytecode and runtime bytecode (``0x`` hex)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str

    def code_hash(self) -> str:
        """sha256 of the creation and runtime bytecode: changes whenever the contract does."""
        return hashlib.sha256((self.bytecode + self.deployed_bytecode).encode()).hexdigest()


class Artifacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    compiler: str
    settings: dict[str, Any]
    sources: dict[str, str]
    contracts: dict[str, Contract]


def sources() -> dict[str, str]:
    """Every ``.sol`` file under ``contracts/``, by file name."""
    return {path.name: path.read_text() for path in sorted(CONTRACTS_DIR.glob("*.sol"))}


@functools.cache
def load() -> Artifacts:
    """The committed artifacts (read once per process)."""
    if not ARTIFACTS_FILE.exists():
        raise errors.CompileError(
            f"{ARTIFACTS_FILE} is missing", fix="run `trace-lite chain compile` (needs `make install` for solcjs)"
        )
    return Artifacts.model_validate_json(ARTIFACTS_FILE.read_text())


def contract(name: str) -> Contract:
    """A committed contract by name (``TraceToken`` or ``MonadStaking``)."""
    found = load().contracts.get(name)
    if found is None:
        raise errors.CompileError(f"no contract named {name!r} in {ARTIFACTS_FILE}: have {sorted(load().contracts)}")
    return found


def solcjs(root: Path) -> Path:
    return root / "node_modules" / ".bin" / "solcjs"


def compile_sources(root: Path) -> Artifacts:
    """Compile ``contracts/*.sol`` with the pinned solcjs under ``root/node_modules``."""
    binary = solcjs(root)
    if not binary.exists():
        raise errors.CompileError(f"solcjs not found at {binary}", fix="run `make install` (it runs `npm ci`)")
    texts = sources()
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in texts.items()},
        "settings": SOLC_SETTINGS,
    }
    version = _run([str(binary), "--version"], "", root).strip()
    if not version.startswith(SOLC_VERSION + "+"):
        raise errors.CompileError(
            f"solcjs is {version!r}, expected {SOLC_VERSION}", fix="run `npm ci` to install the pinned solc"
        )
    output = _parse(_run([str(binary), "--standard-json"], json.dumps(request), root))
    problems = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if problems:
        raise errors.CompileError("solc: " + "; ".join(e.get("formattedMessage", e["message"]) for e in problems))
    compiled: dict[str, Contract] = {}
    for file_contracts in output["contracts"].values():
        for name, item in file_contracts.items():
            compiled[name] = Contract(
                abi=item["abi"],
                bytecode="0x" + item["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + item["evm"]["deployedBytecode"]["object"],
            )
    return Artifacts(
        compiler=version,
        settings=SOLC_SETTINGS,
        sources={name: hashlib.sha256(text.encode()).hexdigest() for name, text in texts.items()},
        contracts=dict(sorted(compiled.items())),
    )


def render(artifacts: Artifacts) -> str:
    """The canonical text of ``artifacts.json`` (stable key order, so diffs stay readable)."""
    return json.dumps(artifacts.model_dump(), indent=1, sort_keys=True) + "\n"


def write(artifacts: Artifacts) -> Path:
    ARTIFACTS_FILE.write_text(render(artifacts))
    load.cache_clear()
    return ARTIFACTS_FILE


def _run(cmd: list[str], stdin: str, cwd: Path) -> str:
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise errors.CompileError(f"solcjs failed to run: {exc}", fix="check Node.js 18+ is on PATH") from exc
    if done.returncode != 0:
        raise errors.CompileError(f"solcjs exited with {done.returncode}: {done.stderr.strip()[:500]}")
    return done.stdout


def _parse(stdout: str) -> dict[str, Any]:
    # solcjs prints a notice line (no SMT solver) before the JSON on stdout.
    start = stdout.find("{")
    if start < 0:
        raise errors.CompileError(f"solcjs printed no JSON: {stdout[:300]}")
    try:
        parsed: dict[str, Any] = json.loads(stdout[start:])
    except ValueError as exc:
        raise errors.CompileError(f"solcjs output is not JSON: {stdout[start:start + 300]}") from exc
    return parsed
