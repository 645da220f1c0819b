"""The chain_sync job spec: the YAML a user applies (`trace-lite apply --file job.yaml`).

The YAML is the source of truth. Validation errors name the field path
(``mode.to_block``) and what was expected; nothing is written for an invalid spec.
See docs/specs/chain_sync.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from trace_core.chainsync import errors

# Cryo datasets this operator supports. `traces` needs trace_* (not on Monad): use `geth_calls` there.
SUPPORTED_DATASETS = (
    "blocks",
    "transactions",
    "logs",
    "traces",
    "geth_calls",
    "native_transfers",
    "erc20_transfers",
    "staking_events",  # decoded from logs by the ingest operator (trace_core/ingest/derived.py)
)

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
BlockNumber = Annotated[int, Field(ge=0)]


def _known_dataset(name: str) -> str:
    if name not in SUPPORTED_DATASETS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(SUPPORTED_DATASETS)}")
    return name


DatasetName = Annotated[str, AfterValidator(_known_dataset)]
_ENV = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RpcPool(_Frozen):
    """Where and how fast to read the chain. Limits are passed to Cryo, which applies them per range task."""

    urls: Annotated[list[str], Field(min_length=1)]
    requests_per_second: Annotated[int, Field(gt=0, le=100_000)] = 50
    max_concurrent_requests: Annotated[int, Field(gt=0, le=1_000)] = 8
    # eth_getLogs is usually capped at 1,000 blocks; Monad recommends 1-10.
    max_blocks_per_logs_request: Annotated[int, Field(gt=0, le=10_000)] = 1_000

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not re.match(r"^https?://[^\s]+$", url):
                raise ValueError(f"expected an http(s) URL, got {url!r}")
        return urls


class FixedTarget(_Frozen):
    """Sync [from_block, to_block): to_block is exclusive."""

    type: Literal["fixed_target"]
    from_block: BlockNumber
    to_block: BlockNumber

    @field_validator("to_block")
    @classmethod
    def _after_from(cls, to_block: int, info: ValidationInfo) -> int:
        from_block = info.data.get("from_block")
        if from_block is not None and to_block <= from_block:
            raise ValueError(f"must be greater than from_block ({from_block}); ranges are end-exclusive")
        return to_block


class FollowHead(_Frozen):
    """Sync from from_block and keep up with the chain's finalized head (or head - confirmations)."""

    type: Literal["follow_head"]
    from_block: BlockNumber
    confirmations: Annotated[int, Field(ge=0, le=10_000)] = 2
    use_finalized_tag: bool = True


class ChainSyncSpec(_Frozen):
    api_version: Literal["trace/v1"] = Field("trace/v1", alias="apiVersion")
    kind: Literal["chain_sync"] = "chain_sync"
    name: Name
    chain_id: Annotated[int, Field(gt=0)]
    # Prefix of the dataset keys (`{namespace}/{dataset}`); defaults to the name with '-' as '_'.
    namespace: Name | None = None
    rpc: RpcPool
    datasets: Annotated[list[DatasetName], Field(min_length=1)]
    mode: Annotated[FixedTarget | FollowHead, Field(discriminator="type")]
    chunk_size: Annotated[int, Field(gt=0, le=1_000_000)] = 1_000
    max_inflight: Annotated[int, Field(gt=0, le=1_000)] = 4
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 5

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("datasets")
    @classmethod
    def _unique_datasets(cls, datasets: list[str]) -> list[str]:
        if len(set(datasets)) != len(datasets):
            raise ValueError("datasets must not repeat")
        return datasets

    @property
    def dataset_namespace(self) -> str:
        return self.namespace or self.name.replace("-", "_")

    def dataset_key(self, dataset: str) -> str:
        return f"{self.dataset_namespace}/{dataset}"

    def spec_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _field_path(loc: tuple[int | str, ...]) -> str:
    # Drop the discriminator tag pydantic inserts for tagged unions (mode.fixed_target.to_block).
    parts = [str(p) for p in loc if p not in ("fixed_target", "follow_head")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "(root)"


def parse(text: str, *, environ: dict[str, str] | None = None) -> ChainSyncSpec:
    """Parse and validate YAML text. ``${VAR}`` in rpc URLs is replaced from ``environ``."""
    env = dict(os.environ) if environ is None else environ
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise errors.SpecError(f"invalid YAML{where}: {getattr(exc, 'problem', exc)}", field="(root)") from exc
    if not isinstance(data, dict):
        raise errors.SpecError("the spec must be a YAML mapping", field="(root)")
    rpc = data.get("rpc")
    if isinstance(rpc, dict) and isinstance(rpc.get("urls"), list):
        rpc["urls"] = [_expand(str(u), env) for u in rpc["urls"]]
    try:
        return ChainSyncSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = _field_path(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        raise errors.SpecError(f"{path}: {message}", field=path) from exc


def _expand(url: str, env: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise errors.SpecError(f"rpc.urls: environment variable {name} is not set", field="rpc.urls")
        return env[name]

    return _ENV.sub(sub, url)
