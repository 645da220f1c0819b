"""Extract ``[range_start, range_end)`` with Cryo and stage it, one sub-range at a time.

Each sub-range (``extract.chunk_blocks`` blocks, aligned) is frozen by Cryo into
its own temporary directory, then its files are uploaded to the attempt's
staging prefix and deleted while Cryo works on the next sub-range. At most two
sub-ranges exist on disk and none in Python memory, so a worker's footprint does
not grow with the range (bench/ingest_rss.py measures it). Before upload, each
file Cryo wrote is rewritten by pyarrow so its footer's NULL counts are true
(:mod:`trace_core.ingest.rewrite`).

The range's first parent hash and last block hash come from the node (two
``eth_getBlockByNumber`` calls) and, when ``blocks`` is extracted, are checked
against what Cryo wrote; the last hash is re-read after extraction, so a reorg
during the run fails the attempt (ChainChangedError) instead of publishing a
torn range.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from trace_core.chain import errors as chain_errors
from trace_core.chain import rpc
from trace_core.datasets import commit, models, naming, objectstore
from trace_core.ingest import derived, errors, rewrite
from trace_core.ingest import request as request_mod

logger = logging.getLogger(__name__)

# JSON-RPC "method not found" / "method not supported" (EIP-1474).
_UNSUPPORTED_CODES = (-32601, -32004)


class Extractor(Protocol):
    """Writes Cryo's Parquet files for ``datasets`` over ``[start, end)`` into ``out_dir``."""

    def freeze(
        self, datasets: Sequence[str], start: int, end: int, out_dir: Path, *, rpc_url: str,
        request: request_mod.IngestRequest,
    ) -> None: ...

    @property
    def version(self) -> str: ...


class CryoExtractor:
    """The real thing: ``cryo.freeze`` from the ``cryo`` wheel, in-process."""

    def __init__(self) -> None:
        try:
            import cryo  # optional: no wheels on some platforms
        except ImportError as exc:
            raise errors.CryoUnavailableError(
                "the cryo package is not installed: it ships wheels for CPython 3.10-3.12 on Linux x86_64 and "
                "macOS arm64 only", fix="run the worker on Python 3.11/3.12, x86_64 Linux or arm64 macOS",
            ) from exc
        self._cryo = cryo

    @property
    def version(self) -> str:
        return str(self._cryo.__version__)

    def freeze(
        self, datasets: Sequence[str], start: int, end: int, out_dir: Path, *, rpc_url: str,
        request: request_mod.IngestRequest,
    ) -> None:
        pool = request.rpc
        options = request.extract
        kwargs: dict[str, Any] = {
            "blocks": [f"{start}:{end}"],  # Cryo's start:end is end-exclusive (checked in the tests)
            "rpc": rpc_url,
            "network_name": request.network_name,
            "output_dir": str(out_dir),
            "chunk_size": end - start,  # one file per dataset and sub-range
            "inner_request_size": pool.max_blocks_per_logs_request,
            "max_retries": pool.max_retries,
            "hex": options.hex,
            "compression": [options.compression],
            "no_report": True,
            "verbose": False,
            "overwrite": True,
        }
        if pool.requests_per_second is not None:
            kwargs["requests_per_second"] = pool.requests_per_second
        if pool.max_concurrent_requests is not None:
            kwargs["max_concurrent_requests"] = pool.max_concurrent_requests
        try:
            summary = self._cryo.freeze(list(datasets), **kwargs)
        except Exception as exc:  # the binding raises bare TypeError/Exception("failed")
            raise errors.ExtractError(
                f"cryo failed on blocks [{start}, {end}) at {rpc_url}: {type(exc).__name__}: {exc}",
                reason="cryo raised",
            ) from exc
        failed = (summary or {}).get("n_errored", 0)
        if failed:
            raise errors.ExtractError(
                f"cryo could not collect {failed} chunk(s) of blocks [{start}, {end}) from {rpc_url}",
                reason="chunks errored",
            )


@dataclasses.dataclass(frozen=True)
class Extraction:
    staged: tuple[models.StagedVersion, ...]
    first_parent_hash: str
    last_block_hash: str


def _hex(value: object) -> str:
    return "0x" + value.hex() if isinstance(value, (bytes, bytearray)) else str(value).lower()


def _block_hashes_in(path: Path) -> dict[int, str]:
    """``block_number -> block_hash`` from a blocks file (two columns only: bounded by the sub-range)."""
    table = pq.read_table(path, columns=["block_number", "block_hash"])
    hashes: dict[int, str] = {}
    for number, block_hash in zip(table.column(0).to_pylist(), table.column(1).to_pylist()):
        if number is None:
            raise errors.ExtractError(f"cryo wrote a block without a number to {path.name}", reason="null block_number")
        hashes[int(number)] = _hex(block_hash)
    return hashes


class _Chain:
    """The few RPC facts the extraction checks, with errors translated to IngestError."""

    def __init__(self, client: rpc.RpcClient) -> None:
        self._client = client

    def _call(self, method: str, params: list[Any]) -> Any:
        try:
            return self._client.call(method, params)
        except chain_errors.RpcError as exc:
            raise errors.ExtractError(str(exc), reason="rpc") from exc

    def head(self) -> int:
        return rpc.to_int(self._call("eth_blockNumber", []))

    def block(self, number: int) -> dict[str, Any]:
        found = self._call("eth_getBlockByNumber", [rpc.quantity(number), False])
        if not isinstance(found, dict):
            raise errors.RangeNotAvailableError(f"the node has no block {number}", range_end=number + 1)
        return found

    def serves(self, method: str, params: list[Any]) -> bool:
        try:
            self._client.call(method, params)
        except chain_errors.RpcError as exc:
            if exc.code in _UNSUPPORTED_CODES or "not found" in exc.rpc_message.lower() or (
                "not supported" in exc.rpc_message.lower()
            ):
                return False
        return True


def extract(
    request: request_mod.IngestRequest,
    *,
    store: objectstore.ObjectStore,
    task_id: uuid.UUID,
    attempt: int,
    heartbeat: Callable[[], None] = lambda: None,
    workdir: Path | None = None,
    extractor: Extractor | None = None,
    rpc_client: rpc.RpcClient | None = None,
) -> Extraction:
    """Extract and stage every requested dataset of the range; returns what ``commit`` publishes."""
    cryo = extractor or CryoExtractor()
    rpc_url = request.rpc_url(attempt)
    client = rpc_client or rpc.RpcClient(rpc_url, timeout=30.0)
    chain = _Chain(client)
    try:
        head = chain.head()
        if request.range_end - 1 > head:
            raise errors.RangeNotAvailableError(
                f"range [{request.range_start}, {request.range_end}) ends past the head {head} of {rpc_url}",
                head=head, range_end=request.range_end,
            )
        first = chain.block(request.range_start)
        last = chain.block(request.range_end - 1)
        files: dict[str, list[models.StagedFile]] = {d: [] for d in request.datasets}
        base = Path(tempfile.mkdtemp(prefix=f"cryo-{task_id}-{attempt}-", dir=workdir))
        try:
            _run_subranges(request, cryo, chain, store, base, files, task_id=task_id, attempt=attempt,
                           rpc_url=rpc_url, heartbeat=heartbeat,
                           expect={request.range_start: first["hash"], request.range_end - 1: last["hash"]})
        finally:
            shutil.rmtree(base, ignore_errors=True)
        if chain.block(request.range_end - 1)["hash"] != last["hash"]:
            raise errors.ChainChangedError(
                f"block {request.range_end - 1} changed hash during extraction (reorg): retrying",
                block=request.range_end - 1,
            )
    finally:
        if rpc_client is None:
            client.close()
    staged = tuple(
        models.StagedVersion(
            task_id=task_id, attempt=attempt, chain_id=request.chain_id, dataset_key=request.key_for(d),
            cryo_dataset=d, range_start=request.range_start, range_end=request.range_end,
            config_hash=request.config_hash_for(d), extract=request.extract.model_dump(),
            cryo_version=derived.provenance(d, cryo.version), first_parent_hash=_hex(first["parentHash"]),
            last_block_hash=_hex(last["hash"]), files=tuple(files[d]),
        )
        for d in request.datasets
    )
    return Extraction(staged=staged, first_parent_hash=_hex(first["parentHash"]), last_block_hash=_hex(last["hash"]))


def _run_subranges(
    request: request_mod.IngestRequest, cryo: Extractor, chain: _Chain, store: objectstore.ObjectStore,
    base: Path, files: dict[str, list[models.StagedFile]], *, task_id: uuid.UUID, attempt: int, rpc_url: str,
    heartbeat: Callable[[], None], expect: dict[int, str],
) -> None:
    # One upload in flight while Cryo extracts the next sub-range: disk holds at most two sub-ranges.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage") as uploader:
        pending: concurrent.futures.Future[None] | None = None
        for start, end in request_mod.subranges(request.range_start, request.range_end, request.extract.chunk_blocks):
            out_dir = base / f"{start}_{end}"
            try:
                cryo.freeze(derived.cryo_datasets(request.datasets), start, end, out_dir, rpc_url=rpc_url,
                            request=request)
            except errors.ExtractError:
                _diagnose(request, chain, start, rpc_url)
                raise
            derived.derive(request.datasets, out_dir, network=request.network_name, start=start, end=end,
                           compression=request.extract.compression)
            found = _expected_files(request, out_dir, start, end)
            _check_hashes(found.get("blocks"), expect)
            if pending is not None:
                pending.result()
            pending = uploader.submit(
                _stage_subrange, store, found, files, out_dir, task_id=task_id, attempt=attempt, start=start, end=end,
                compression=request.extract.compression,
            )
            heartbeat()
        if pending is not None:
            pending.result()


def _expected_files(request: request_mod.IngestRequest, out_dir: Path, start: int, end: int) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for dataset in request.datasets:
        path = out_dir / naming.cryo_file_name(request.network_name, dataset, start, end)
        if not path.is_file():
            present = sorted(p.name for p in out_dir.glob("*")) if out_dir.exists() else []
            raise errors.ExtractError(
                f"cryo wrote no {path.name} for blocks [{start}, {end}) (found: {', '.join(present) or 'nothing'})",
                reason="missing file",
            )
        found[dataset] = path
    return found


def _check_hashes(blocks_file: Path | None, expect: dict[int, str]) -> None:
    if blocks_file is None:
        return
    written = _block_hashes_in(blocks_file)
    for number, wanted in expect.items():
        if number in written and written[number] != _hex(wanted):
            raise errors.ChainChangedError(
                f"cryo wrote block {number} with hash {written[number]}, the node now says {wanted} (reorg)",
                block=number,
            )


def _stage_subrange(
    store: objectstore.ObjectStore, found: dict[str, Path], files: dict[str, list[models.StagedFile]],
    out_dir: Path, *, task_id: uuid.UUID, attempt: int, start: int, end: int, compression: str,
) -> None:
    for dataset, path in found.items():
        # Cryo's own files carry wrong NULL counts; derived files are pyarrow's already. Done here, on the
        # upload thread, so the rewrite overlaps Cryo's extraction of the next sub-range.
        if dataset not in derived.DERIVED:
            rewrite.rewrite(path, compression=compression)
        files[dataset].append(commit.stage_file(
            store, path, task_id=task_id, attempt=attempt, cryo_dataset=dataset, range_start=start, range_end=end,
        ))
        path.unlink()
    shutil.rmtree(out_dir, ignore_errors=True)


def _diagnose(request: request_mod.IngestRequest, chain: _Chain, block: int, rpc_url: str) -> None:
    """Turn "cryo failed" into "this node cannot serve that dataset" when that is the cause."""
    needs = request.needing_trace_api()
    if needs and not chain.serves("trace_block", [rpc.quantity(block)]):
        raise errors.UnsupportedDatasetError(
            f"datasets {', '.join(needs)} need trace_block, which {rpc_url} does not serve "
            "(Monad nodes have no trace_*): use geth_calls, and set rpc.trace_api: false",
            field="datasets", expected="datasets served without trace_*",
        )
    if "geth_calls" in request.datasets and not chain.serves(
        "debug_traceBlockByNumber", [rpc.quantity(block), {"tracer": "callTracer"}]
    ):
        raise errors.UnsupportedDatasetError(
            f"geth_calls needs debug_traceBlockByNumber, which {rpc_url} does not serve",
            field="datasets", expected="datasets the node serves",
        )
