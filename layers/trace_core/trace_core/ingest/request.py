"""The ``cryo_ingest`` task payload, validated, and the pure rules derived from it.

Payload (what the chain-sync planner sends; ``range_end`` is exclusive)::

    {"chain_id": 10143,
     "datasets": ["blocks", "transactions", "logs", "geth_calls"],
     "dataset_keys": {"blocks": "monad_local/blocks", ...},     # optional
     "namespace": "monad_local",                                  # optional, for keys not listed
     "range_start": 0, "range_end": 1000,
     "rpc": {"urls": ["http://..."], "requests_per_second": 50, "max_concurrent_requests": 8,
             "max_blocks_per_logs_request": 10, "trace_api": false},
     "extract": {"chunk_blocks": 1000, "hex": true, "compression": "lz4"},   # optional
     "config_hash": "…",                                          # optional
     "config_hashes": {"blocks": "…", ...},                       # optional, per dataset
     "sync": {...}}                                               # optional, echoed in outputs

``config_hash`` is the caller's statement of "everything besides chain, dataset and
range that decides the bytes"; the planner adds its own inputs (e.g. a reorg
generation) and sends one per dataset in ``config_hashes``, so a version's identity
does not depend on which datasets share a task. A dataset without an entry uses
``config_hash``, and without that the hash derived from ``extract``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trace_core.datasets import naming
from trace_core.ingest import errors

# The layout of the files a range commits: part of every config hash, so a change to how files are
# written (v2: rewritten with truthful statistics, decision 1404) is a new dataset version, never a conflict.
FORMAT = "cryo-parquet/v2"

# Cryo dataset -> does Cryo need the node's trace_* methods for it? (Monad serves none.)
DATASETS: dict[str, bool] = {
    "blocks": False,
    "transactions": False,
    "logs": False,
    "traces": True,  # trace_block
    "geth_calls": False,  # debug_traceBlockByNumber (callTracer): the Monad way
    "native_transfers": True,  # trace_block
    "erc20_transfers": False,  # eth_getLogs
    "staking_events": False,  # derived from logs (ingest/derived.py)
}

BlockNumber = Annotated[int, Field(ge=0, le=2**53)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RpcPool(_Frozen):
    """The job's RPC pool and its limits, passed to Cryo. Not part of the version identity."""

    urls: Annotated[list[Annotated[str, Field(pattern=r"^https?://\S+$")]], Field(min_length=1)]
    requests_per_second: Annotated[int, Field(gt=0, le=100_000)] | None = None
    max_concurrent_requests: Annotated[int, Field(gt=0, le=1_000)] | None = None
    # eth_getLogs is capped by most nodes (1,000 blocks; Monad recommends 1-10 per request).
    max_blocks_per_logs_request: Annotated[int, Field(gt=0, le=10_000)] = 1_000
    # False for nodes without trace_* (Monad): datasets that need them are refused up front.
    trace_api: bool = True
    max_retries: Annotated[int, Field(ge=0, le=100)] = 5

    def url_for(self, attempt: int, slot: int = 0) -> str:
        """The URL for ``attempt`` (1-based) of the task in pool ``slot``.

        Tasks in different slots start on different URLs, so first attempts spread the load over the
        pool; each retry moves to the next URL, so one bad endpoint cannot burn every attempt.
        """
        return self.urls[(slot + max(attempt, 1) - 1) % len(self.urls)]


class ExtractOptions(_Frozen):
    """How Cryo writes the files. Everything here changes the bytes, so it is in the config hash."""

    chunk_blocks: Annotated[int, Field(gt=0, le=100_000)] = 1_000
    hex: bool = True
    compression: Literal["lz4", "zstd", "snappy", "gzip", "uncompressed"] = "lz4"

    def config_hash(self) -> str:
        # v2: Cryo's files are rewritten by pyarrow with true NULL counts (decision 1404), new bytes.
        return naming.sha256_hex(naming.canonical_json({"format": FORMAT, **self.model_dump()}))[:16]


class IngestRequest(_Frozen):
    chain_id: Annotated[int, Field(gt=0)]
    datasets: Annotated[list[str], Field(min_length=1)]
    dataset_keys: dict[str, str] = Field(default_factory=dict)
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")] | None = None
    range_start: BlockNumber
    range_end: BlockNumber
    rpc: RpcPool
    extract: ExtractOptions = ExtractOptions()
    config_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")] | None = None
    config_hashes: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")]] = Field(default_factory=dict)
    sync: dict[str, Any] | None = None

    @field_validator("datasets")
    @classmethod
    def _known(cls, datasets: list[str]) -> list[str]:
        for name in datasets:
            if name not in DATASETS:
                raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")
        if len(set(datasets)) != len(datasets):
            raise ValueError("datasets must not repeat")
        return datasets

    @model_validator(mode="after")
    def _consistent(self) -> IngestRequest:
        if self.range_end <= self.range_start:
            raise ValueError(
                f"range_end must be greater than range_start ({self.range_start}); ranges are end-exclusive"
            )
        for dataset, key in self.dataset_keys.items():
            if dataset not in self.datasets:
                raise ValueError(f"dataset_keys names {dataset!r}, which is not in datasets")
            if naming.split_dataset_key(key)[1] != dataset:
                raise ValueError(f"dataset_keys[{dataset}] = {key!r} must end with /{dataset}")
        for dataset in self.config_hashes:
            if dataset not in self.datasets:
                raise ValueError(f"config_hashes names {dataset!r}, which is not in datasets")
        return self

    def key_for(self, dataset: str) -> str:
        return self.dataset_keys.get(dataset) or naming.dataset_key(
            self.namespace or f"chain_{self.chain_id}", dataset
        )

    @property
    def effective_config_hash(self) -> str:
        return self.config_hash or self.extract.config_hash()

    def config_hash_for(self, dataset: str) -> str:
        """The config hash of ``dataset``'s version (see the module docstring)."""
        return self.config_hashes.get(dataset) or self.effective_config_hash

    @property
    def network_name(self) -> str:
        """The network part of Cryo's file names (fixed per chain, so names never depend on the node)."""
        return f"network_{self.chain_id}"

    @property
    def pool_slot(self) -> int:
        """Where this task starts in the RPC pool: the range's index (ranges are cut at multiples of their
        length) plus its first dataset's position, so neighbouring ranges, and tasks of one range for
        different datasets, start on different URLs."""
        index = self.range_start // (self.range_end - self.range_start)
        return index + list(DATASETS).index(self.datasets[0])

    def rpc_url(self, attempt: int) -> str:
        """The pool URL this task's ``attempt`` uses (see :meth:`RpcPool.url_for`)."""
        return self.rpc.url_for(attempt, self.pool_slot)

    def needing_trace_api(self) -> list[str]:
        return [d for d in self.datasets if DATASETS[d]]


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(payload)"


def parse(payload: dict[str, Any]) -> IngestRequest:
    """Validate a task payload, or raise InvalidIngestRequestError naming the field and what was expected."""
    try:
        request = IngestRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_path(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        raise errors.InvalidIngestRequestError(
            f"invalid cryo_ingest payload: {field}: {message}", field=field, expected=message
        ) from exc
    if not request.rpc.trace_api and request.needing_trace_api():
        raise errors.UnsupportedDatasetError(
            f"datasets {', '.join(request.needing_trace_api())} need the node's trace_* methods, which this "
            "RPC pool does not serve (rpc.trace_api is false, as on Monad): use geth_calls instead of traces",
            field="datasets", expected="datasets served without trace_*",
        )
    return request


def subranges(range_start: int, range_end: int, chunk_blocks: int) -> list[tuple[int, int]]:
    """Split ``[range_start, range_end)`` at multiples of ``chunk_blocks``: the same block always
    lands in the same aligned file, however the range itself was cut."""
    naming.check_range(range_start, range_end)
    if chunk_blocks <= 0:
        raise errors.InvalidIngestRequestError(
            f"chunk_blocks must be > 0, got {chunk_blocks}", field="extract.chunk_blocks", expected="> 0"
        )
    out: list[tuple[int, int]] = []
    start = range_start
    while start < range_end:
        end = min((start // chunk_blocks + 1) * chunk_blocks, range_end)
        out.append((start, end))
        start = end
    return out
