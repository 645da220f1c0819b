"""What later steps need to know about a seeded chain: ``ChainInfo``, kept in ``<TRACE_HOME>/chain.json``.

Block ranges: ``first_block`` and ``last_block`` are inclusive (the seeded
blocks are ``first_block..last_block``); ``end_block`` is ``last_block + 1``,
the end-exclusive bound that chain sync ranges use (Invariant 6), so syncing
``[first_block, end_block)`` covers every seeded block.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field

from trace_core.chain import errors

FILE_NAME = "chain.json"


class Validator(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    validator_id: int
    auth_address: str
    commission: int = Field(description="Scaled by 1e18 (1e18 = 100%), as on Monad.")
    weight: int = Field(description="Relative popularity the generator gave this validator.")


class TokenInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    deploy_block: int
    owner: str
    name: str
    symbol: str
    decimals: int
    whale: str = Field(description="A holder whose balance stays >= 2**128.")


class StakingInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    system_address: str
    epoch_blocks: int
    validators: list[Validator]


class ChainInfo(BaseModel):
    """A seeded chain: where it runs, what it was seeded with, and where its contracts are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rpc_url: str
    chain_id: int
    seed: int
    blocks: int = Field(description="Seeded blocks after genesis (== last_block).")
    first_block: int
    last_block: int = Field(description="Inclusive.")
    genesis_hash: str
    last_block_hash: str
    genesis_timestamp: int
    block_time: int
    transactions: int
    generator_version: int
    cache_key: str
    historical_state: bool = Field(
        description="Whether eth_call / eth_getBalance work at every seeded block (see docs/chain.md)."
    )
    token: TokenInfo
    staking: StakingInfo
    deployer: str
    rewarder: str
    pool: list[str] = Field(description="The fixed pool of EOAs that made the activity.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def end_block(self) -> int:
        """End-exclusive bound of the seeded range: ``[first_block, end_block)``."""
        return self.last_block + 1


def path(home: Path) -> Path:
    return home / FILE_NAME


def write(home: Path, info: ChainInfo) -> Path:
    """Write ``info`` to ``<home>/chain.json`` atomically."""
    home.mkdir(parents=True, exist_ok=True)
    target = path(home)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(dump(info))
    os.replace(tmp, target)
    return target


def dump(info: ChainInfo) -> str:
    return json.dumps(info.model_dump(mode="json"), indent=2) + "\n"


def parse(text: str, source: str) -> ChainInfo:
    try:
        data = json.loads(text)
        data.pop("end_block", None)  # computed, written for readers of the file
        return ChainInfo.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise errors.ChainError(
            f"{source} is not a valid chain description: {exc}",
            fix="re-seed it: `trace-lite chain seed`",
        ) from exc


def read(home: Path) -> ChainInfo:
    """The seeded chain recorded in ``<home>/chain.json``; ChainError saying how to seed if there is none."""
    target = path(home)
    if not target.exists():
        raise errors.ChainError(
            f"no seeded chain: {target} does not exist", fix="run `trace-lite up` then `trace-lite chain seed`"
        )
    return parse(target.read_text(), str(target))
