"""Benchmark: chain sync end to end (planner -> tasks -> Cryo -> S3 -> committed versions) against plain Cryo.

    .venv/bin/python -m bench.chain_sync_e2e [--blocks 20000] [--workers 1 2] [--repeat 5]
        [--max-outside 0.10] [--no-matched] [--pin] [--rss-sizes 1000 20000] [--json out.json]

The method is ``bench.method``'s: paired rounds, disturbed rounds excluded, answers checked by content.
Everything runs on 127.0.0.1 and is stopped at the end (also on Ctrl-C or failure):

- the seeded Monad-like chain (``trace_core.chain``, seed 7, ``--blocks`` blocks) is built once by an
  anvil started with ``--prune-history --dump-state`` and cached under ``--cache-dir`` (about 30 MB per
  1,000 blocks); every node of a run is an anvil started with ``--load-state`` of that file, so all
  nodes serve the same blocks and hashes;
- an embedded Postgres (pgserver binaries, Lite's settings: fsync on), a fresh database per Trace round,
  migrated; moto_server as S3, a fresh bucket per round; the Lite host (``trace-lite host --workers 0``:
  outbox drainer and lease reaper) and W worker processes (``trace-lite worker``, pgqueue wake-ups), as a
  Lite deployment runs them, each sized as ``docs/specs/chain_sync.md`` advises for W workers on one host:
  concurrency max_inflight / W (``--worker-concurrency``) and Cryo runtime threads cores / W
  (``--cryo-threads``).

Each round, for each configuration (nodes x workers x max_inflight), runs three sides back to back on the
same chain and range, in the order plain / trace / matched, reversed on odd rounds:

- ``plain``: one ``cryo.freeze`` of the datasets over ``[0, blocks)`` at **Cryo's own defaults** for
  concurrency, rate and threads (no ``max_concurrent_requests``, no ``requests_per_second``), in a fresh
  child process; only the output's shape is the job's (chunk size, eth_getLogs window, hex, lz4), so
  both write the same rows. The headline reference.
- ``trace``: a ``fixed_target`` chain_sync job over ``[0, blocks)``, ``max_inflight`` range tasks (each
  extracting every dataset of its range in one Cryo freeze), timed from ``jobs.apply`` to the job's
  ``completed`` status (every range of every dataset committed).
- ``matched``: plain Cryo with Trace's settings: ``max_concurrent_requests`` = the job's in-flight total
  (max_inflight x the job's ``max_concurrent_requests``) and the workers' allocator (``LD_PRELOAD``).

Every round's answer is checked by content against the first plain round: per dataset the row count, the
sums of block_number (and gas_used) and an order-independent hash of the rows' keys (``KEYS``). A round
whose CPU outside the measured processes (``/proc/stat`` less the process groups the benchmark started)
exceeds ``--max-outside`` of the machine is excluded with its pair. Reported per configuration: every pair
ratio (plain seconds / Trace seconds: above 1, Trace is faster), the median with min and max, the count of
excluded pairs and why, at Cryo's defaults and at matched settings, and the CPU each group used.

``--pin`` runs the nodes on the first core (``taskset``) and everything else on the others, so the CPU
figures say which side saturates: the node, or the extractor with the platform.

Then ``rss``: peak RSS (VmHWM) of one worker process syncing a single range of each ``--rss-sizes``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from bench import method

CHAIN_ID = 10143
SEED = 7
DATASETS = ["blocks", "transactions", "logs", "traces"]
ROOT = Path(__file__).resolve().parents[1]
# What identifies a row of each dataset (the columns present of these are hashed, in this order).
KEYS = {"blocks": ["block_number", "block_hash"],
        "transactions": ["block_number", "transaction_hash"],
        "logs": ["block_number", "transaction_hash", "log_index", "address", "topic0"],
        "traces": ["block_number", "transaction_hash", "trace_address", "action_from", "action_to"]}
SUMS = ["block_number", "gas_used"]
COMMITTED_FILES = """
    SELECT d.cryo_dataset AS dataset, v.storage_prefix AS prefix
    FROM state.dataset_versions v JOIN state.datasets d USING (dataset_uuid) WHERE v.status = 'committed'
"""
TASKS = "SELECT count(*) AS tasks, count(*) FILTER (WHERE attempt > 1) AS retried FROM state.tasks"
# Where a range task's time goes: created -> claimed (outbox, queue, a free slot) -> completed.
TASK_TIMES = """
    SELECT avg(extract(epoch FROM a.claimed_at - t.created_at)) AS wait_s,
           avg(extract(epoch FROM a.finished_at - a.claimed_at)) AS run_s
    FROM state.tasks t JOIN state.task_attempts a ON a.task_id = t.task_id AND a.attempt = t.attempt
"""


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the chain
def chain_state(seed: int, blocks: int, cache_dir: Path, work: Path) -> tuple[Path, Any, bool]:
    """anvil's ``--dump-state`` of the seeded chain (no historical state), built once per (seed, blocks)."""
    from trace_core.chain import cache, seeder
    from trace_core.lite import anvil, procs, seeded_node

    params = seeder.params_for(seed, blocks, seeded_node.GENESIS_TIMESTAMP)
    key = cache.key(params, CHAIN_ID) + "-pruned"
    with cache.lock(cache_dir, key, timeout=3600):
        state, recorded = cache.state_file(cache_dir, key), cache.read_info(cache_dir, key)
        if state is not None and recorded is not None:
            return state, recorded, True
        dump = cache_dir / f".{key}.state.json"
        port = procs.free_port()
        # --prune-history keeps no old states: seeding a long chain stays fast and small, and
        # blocks, transactions, receipts, logs and trace_block do not need them.
        proc = anvil.start(port, work / "anvil-build.log", extra=[
            "--timestamp", str(seeded_node.GENESIS_TIMESTAMP), "--prune-history", "--dump-state", str(dump)])
        def progress(done: int, total: int) -> None:
            if done % 2000 == 0:
                _say(f"seeded {done}/{total} blocks")

        try:
            began = time.monotonic()
            built = seeder.seed(anvil.url(port), seed=seed, blocks=blocks, progress=progress)
            _say(f"seeded {blocks} blocks ({built.transactions} txs) in {time.monotonic() - began:.0f}s")
        finally:
            # SIGTERM: anvil writes --dump-state as it exits, which takes a while for a long chain
            # (about 30 MB per 1,000 blocks): do not SIGKILL it half-way.
            procs.stop(proc.pid, timeout=600)
            proc.wait(timeout=60)
            anvil.remove_states(anvil.states_dir_for(work / "anvil-build.log"))
        with open(dump, "rb") as file:
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"}":
                raise RuntimeError(f"anvil left a truncated state dump at {dump}")
        cache.store(cache_dir, key, built.model_copy(update={"rpc_url": ""}), state=dump)
        state, recorded = cache.state_file(cache_dir, key), cache.read_info(cache_dir, key)
        assert state is not None and recorded is not None
        return state, recorded, False


# ---------------------------------------------------------------- processes and meters
def _spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Like ``procs.spawn`` but with only the variables given (no inherited TRACE_* settings)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TRACE_", "AWS_"))}
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**base, **env}, cwd=ROOT)


def _rss_mib(pid: int, field: str = "VmHWM") -> float:
    """``VmHWM``: the process's peak resident set, as the kernel counted it; ``VmRSS``: the current one."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")




class Stack:
    """Postgres, moto_server and the anvil nodes shared by every run; ``close()`` stops them all."""

    def __init__(self, work: Path, state_file: Path, info: Any, nodes: int, node_cpus: str | None = None) -> None:
        import boto3
        from trace_core.lite import anvil, moto, postgres, procs

        self.work = work
        self._exit = contextlib.ExitStack()
        try:
            pg_port = procs.free_port()
            self._pg_dir = work / "postgres"
            postgres.start(self._pg_dir, pg_port)  # Lite's settings: fsync on
            self._exit.callback(postgres.destroy, self._pg_dir)
            self.pg_pid = postgres.pid_of(self._pg_dir) or 0
            self.pg_port = pg_port
            moto_port = procs.free_port()
            moto_proc = moto.start(moto_port, work / "moto.log")
            self._exit.callback(self._stop_proc, moto_proc)
            self.moto_pid = moto_proc.pid
            self.s3_url = moto.url(moto_port)
            self.s3 = boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1",
                                   aws_access_key_id="bench", aws_secret_access_key="bench")
            self.nodes: list[tuple[str, int]] = []
            for n in range(nodes):
                began = time.monotonic()
                log = work / f"anvil-{n}.log"
                port = procs.free_port()
                states = anvil.states_dir_for(log)
                self._exit.callback(anvil.remove_states, states)
                # anvil.start's command, with a longer wait: loading a long chain's state takes a while.
                pin = ["taskset", "-c", node_cpus] if node_cpus else []  # taskset execs: the pid is anvil's
                proc = procs.spawn([*pin, str(anvil.binary()), "--host", procs.HOST, "--port", str(port), "--chain-id",
                                    str(CHAIN_ID), "--silent", "--cache-path", str(states), "--load-state",
                                    str(state_file), "--prune-history"], log)
                self._exit.callback(self._stop_proc, proc)
                procs.wait_until("anvil", lambda port=port: anvil.chain_id_of(anvil.url(port)) == CHAIN_ID,
                                 proc=proc, log=log, timeout=600)
                self._check(anvil.url(port), info)
                self.nodes.append((anvil.url(port), proc.pid))
                _say(f"node {n} loaded the chain in {time.monotonic() - began:.0f}s")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _check(url: str, info: Any) -> None:
        from trace_core.chain import rpc

        with rpc.RpcClient(url) as client:
            last = client.call("eth_getBlockByNumber", [rpc.quantity(info.last_block), False])
        if last is None or last["hash"] != info.last_block_hash:
            raise RuntimeError(f"the node at {url} did not load the cached chain (block {info.last_block} is "
                               f"{last and last['hash']}, expected {info.last_block_hash}): delete {info.cache_key}")

    @staticmethod
    def _stop_proc(proc: subprocess.Popen[bytes]) -> None:
        from trace_core.lite import procs

        procs.stop(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)

    def close(self) -> None:
        self._exit.close()

    def database(self, name: str) -> str:
        """A fresh, migrated database; dropped by :meth:`drop_database`."""
        import psycopg
        from psycopg import sql
        from trace_core.db import migrate
        from trace_core.lite import postgres

        with psycopg.connect(postgres.url(self.pg_port), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = postgres.url(self.pg_port, name)
        migrate.apply(url)
        return url

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql
        from trace_core.lite import postgres

        with psycopg.connect(postgres.url(self.pg_port), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def empty_bucket(self, bucket: str) -> None:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        self.s3.delete_bucket(Bucket=bucket)



    def groups(self, nodes: int) -> dict[str, list[int]]:
        """The process groups every round measures: the nodes in use, Postgres, moto and this process."""
        return {"anvil": [pid for _, pid in self.nodes[:nodes]], "postgres": [self.pg_pid], "moto": [self.moto_pid],
                "bench": [os.getpid()]}


class RssSampler:
    """The first worker's resident set every ``every`` seconds (one /proc read), for the RSS runs' quartiles."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self._pid, self._every = pid, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.timeline: list[tuple[float, int]] = []

    def _loop(self) -> None:
        import psutil  # type: ignore[import-untyped]

        while not self._stop.wait(self._every):
            with contextlib.suppress(psutil.NoSuchProcess):
                self.timeline.append((round(time.monotonic() - self._began, 1),
                                      round(psutil.Process(self._pid).memory_info().rss / 2**20)))

    def __enter__(self) -> Self:
        self._began = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def quartiles(self) -> list[int]:
        """The highest RSS (MiB) within each quarter of the run: flat means bounded."""
        if not self.timeline:
            return []
        end = self.timeline[-1][0] or 1.0
        return [max((rss for t, rss in self.timeline if q * end / 4 <= t <= (q + 1) * end / 4), default=0)
                for q in range(4)]


# ---------------------------------------------------------------- content of an answer
def content(files: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """``{dataset: method.digest}`` of Parquet files (paths or readable buffers) grouped by dataset."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.compute as pc  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    digests = {}
    for dataset, sources in files.items():
        tables = []
        for source in sources:
            names = pq.ParquetFile(source).schema_arrow.names
            wanted = [c for c in dict.fromkeys([*KEYS[dataset], *SUMS]) if c in names]
            if hasattr(source, "seek"):
                source.seek(0)
            tables.append(pq.read_table(source, columns=wanted))
        table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
        keys = [c for c in KEYS[dataset] if c in table.column_names]
        sums = {c: int(pc.sum(table[c]).as_py() or 0) for c in SUMS if c in table.column_names}
        digests[dataset] = method.digest(table.num_rows, sums, zip(*(table[c].to_pylist() for c in keys), strict=True))
        digests[dataset]["key_columns"] = keys
    return digests


def local_content(out: Path) -> dict[str, dict[str, Any]]:
    """The content of the Parquet files plain Cryo wrote into ``out``."""
    files: dict[str, list[Any]] = {d: [] for d in DATASETS}
    for path in sorted(out.glob("*.parquet")):
        files[next(d for d in DATASETS if f"__{d}__" in path.name)].append(path)
    return content(files)


def committed_content(conn: Any, s3: Any, bucket: str) -> dict[str, dict[str, Any]]:
    """The content of the Parquet files of every committed dataset version (read back from S3)."""
    import io

    files: dict[str, list[Any]] = {d: [] for d in DATASETS}
    for row in conn.execute(COMMITTED_FILES).fetchall():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=row["prefix"]):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".parquet"):
                    body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    files[row["dataset"]].append(io.BytesIO(body))
    return content(files)


def _check_content(side: str, index: int, got: dict[str, Any], expected: dict[str, Any] | None) -> None:
    if expected is None:
        return
    problems = method.content_mismatches(expected, got)
    if problems:
        raise RuntimeError(f"{side} round {index}: the data differs from plain Cryo's: " + "; ".join(problems))


# ---------------------------------------------------------------- plain cryo
def _freeze_kwargs(args: argparse.Namespace, rpc: str, out: str) -> dict[str, Any]:
    """Plain Cryo's arguments: its own defaults for concurrency, rate and threads; the job's output shape.

    With ``--plain-requests N`` (the matched side), ``max_concurrent_requests`` N as well.
    """
    kwargs = {"blocks": [f"0:{args.blocks}"], "rpc": rpc, "network_name": f"network_{CHAIN_ID}", "output_dir": out,
              "chunk_size": args.chunk_size, "inner_request_size": args.logs_window, "hex": True,
              "compression": ["lz4"], "no_report": True, "verbose": False, "overwrite": True}
    if args.plain_requests:
        kwargs["max_concurrent_requests"] = args.plain_requests
    return kwargs


def plain_child(args: argparse.Namespace) -> None:
    """One ``cryo.freeze`` of every dataset into ``--out``, in this process; prints a JSON line."""
    import cryo  # type: ignore[import-untyped]

    began = time.monotonic()  # after the imports: the workers are warm too
    summary = cryo.freeze(DATASETS, **_freeze_kwargs(args, args.rpc, args.out))
    seconds = time.monotonic() - began
    print(json.dumps({"seconds": seconds, "errored": (summary or {}).get("n_errored", 0),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def run_plain(args: argparse.Namespace, stack: Stack, index: int, side: str, *, requests: int = 0,
              malloc: str | None = None) -> tuple[method.Round, dict[str, Any]]:
    """Plain Cryo as a user runs it (``requests`` 0: Cryo's default) or matched (``requests``, ``malloc``).

    Returns the round and the content of what it wrote.
    """
    url = stack.nodes[0][0]
    out = Path(tempfile.mkdtemp(prefix="plain-", dir=stack.work))
    cmd = [sys.executable, "-m", "bench.chain_sync_e2e", "--child-plain", "--rpc", url, "--out", str(out),
           "--plain-requests", str(requests), "--blocks", str(args.blocks), "--chunk-size", str(args.chunk_size),
           "--logs-window", str(args.logs_window)]
    env = {**os.environ, **({"LD_PRELOAD": malloc} if malloc else {})}
    try:
        meter = method.Meter(stack.groups(1), shallow=("bench",)).start()
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child's CPU, once it is waited for
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        try:
            stdout, _ = proc.communicate(timeout=args.timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        window, cpu, machine = meter.stop(
            {"cryo": after.ru_utime + after.ru_stime - reaped.ru_utime - reaped.ru_stime})
        if proc.returncode != 0:
            raise RuntimeError(f"plain cryo exited with {proc.returncode}")
        result = json.loads(stdout.strip().splitlines()[-1])
        if result["errored"]:
            raise RuntimeError(f"plain cryo could not collect {result['errored']} chunk(s)")
        answer = local_content(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    extra = {
        "requests": requests or "default",
        "allocator": malloc or "system",
        "startup_s": round(window - result["seconds"], 2),
        "blocks_per_s": round(args.blocks / result["seconds"], 1),
        "peak_rss_mib": result["peak_rss_mib"],
        "rows": {d: c["rows"] for d, c in answer.items()},
    }
    return method.Round(
        side,
        index,
        result["seconds"],
        cpu=cpu,
        machine_cpu=machine,
        cores=os.cpu_count() or 1,
        window_s=window,
        extra=extra,
    ), answer


# ---------------------------------------------------------------- trace
def _job_spec(args: argparse.Namespace, name: str, urls: list[str], blocks: int, chunk: int, inflight: int) -> Any:
    from trace_core.chainsync import spec as spec_mod

    return spec_mod.ChainSyncSpec.model_validate(
        {
            "name": name,
            "chain_id": CHAIN_ID,
            "datasets": DATASETS,
            "rpc": {
                "urls": urls,
                "requests_per_second": args.rps,
                "max_concurrent_requests": args.concurrent_requests,
                "max_blocks_per_logs_request": args.logs_window,
            },
            "mode": {"type": "fixed_target", "from_block": 0, "to_block": blocks},
            "chunk_size": chunk,
            "max_inflight": inflight,
        }
    )


def _cryo_threads_env(setting: str, workers: int) -> dict[str, str]:
    """Each worker's Cryo runtime size: by default the host's cores shared out, as plain Cryo has them all."""
    if setting == "default":
        return {}
    from trace_core.worker import cryo_threads

    threads = int(setting) if setting != "auto" else max(1, cryo_threads.cores() // workers)
    return {"TRACE_WORKER_CRYO_THREADS": str(threads)}


@contextlib.contextmanager
def _platform(
    stack: Stack, label: str, workers: int, concurrency: int, log_level: str, allocator: str, cryo_threads: str
) -> Iterator[dict[str, Any]]:
    """A fresh database and bucket, the Lite host (no in-process workers) and ``workers`` worker processes."""
    from trace_core.lite import host_process, procs

    db, bucket = f"bench_{label}", f"bench-{label.replace('_', '-')}"
    url = stack.database(db)
    stack.s3.create_bucket(Bucket=bucket)
    logs = stack.work / "logs" / label
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        "TRACE_DATABASE_URL": url,
        "AWS_ENDPOINT_URL": stack.s3_url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TRACE_DATASETS_BUCKET": bucket,
        "TRACE_HOME": str(stack.work / "home"),
        "TRACE_LOG_LEVEL": log_level,
        "TRACE_WORKER_ALLOCATOR": allocator,
        **_cryo_threads_env(cryo_threads, workers),
    }
    started: list[subprocess.Popen[bytes]] = []
    try:
        port = procs.free_port()
        host = _spawn(
            [sys.executable, "-m", "trace_core.cli", "host", "--port", str(port), "--workers", "0"],
            logs / "host.log",
            {**env, "TRACE_LOG_LEVEL": "WARNING"},
        )
        started.append(host)
        for n in range(workers):
            started.append(
                _spawn(
                    [
                        sys.executable,
                        "-m",
                        "trace_core.cli",
                        "worker",
                        "--concurrency",
                        str(concurrency),
                        "--poll-seconds",
                        "2",
                    ],
                    logs / f"worker-{n}.log",
                    env,
                )
            )
        procs.wait_until(
            "host",
            lambda: host_process.healthy_at(host_process.url(port)),
            proc=host,
            log=logs / "host.log",
            timeout=60,
        )
        for n, proc in enumerate(started[1:]):
            log = logs / f"worker-{n}.log"
            procs.wait_until(
                f"worker {n}",
                lambda log=log: " ready: " in log.read_text(errors="replace"),
                proc=proc,
                log=log,
                timeout=60,
            )
        yield {"database_url": url, "host": host, "workers": started[1:], "logs": logs, "bucket": bucket}
    finally:
        for proc in reversed(started):
            procs.stop(proc.pid, timeout=30)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        stack.empty_bucket(bucket)
        stack.drop_database(db)


def run_trace(
    args: argparse.Namespace,
    stack: Stack,
    index: int,
    side: str,
    *,
    nodes: int,
    workers: int,
    blocks: int,
    chunk: int,
    inflight: int,
    rss: bool = False,
) -> tuple[method.Round, dict[str, Any]]:
    """One chain_sync job on a fresh platform; returns the round and the content of what it committed."""
    import psycopg
    from psycopg.rows import dict_row
    from trace_core.chainsync import jobs

    label = f"{side.replace(':', '_')}_{index}_{uuid.uuid4().hex[:6]}"
    urls = [url for url, _ in stack.nodes[:nodes]]
    # Each worker runs its share of the job's ranges at once (max_inflight / workers), as the spec's sizing advises.
    concurrency = -(-inflight // workers) if args.worker_concurrency == "auto" else int(args.worker_concurrency)
    round_began = time.monotonic()
    with _platform(
        stack, label, workers, concurrency, args.log_level, args.worker_allocator, args.cryo_threads
    ) as platform:
        pids = [p.pid for p in platform["workers"]]
        ready_rss = [_rss_mib(pid, "VmRSS") for pid in pids]
        with psycopg.connect(platform["database_url"], autocommit=True, row_factory=dict_row) as conn:
            spec = _job_spec(args, f"bench-{label.replace('_', '-')}", urls, blocks, chunk, inflight)
            groups = {**stack.groups(nodes), "workers": pids, "host": [platform["host"].pid]}
            sampler = RssSampler(pids[0]) if rss else contextlib.nullcontext()
            with sampler:
                meter = method.Meter(groups, shallow=("bench",)).start()
                began = time.monotonic()
                startup = began - round_began  # the platform's start, not timed
                jobs.apply(conn, spec)
                deadline = began + args.timeout
                while (status := jobs.find(conn, spec.name)["status"]) != "completed":
                    if time.monotonic() > deadline or any(p.poll() is not None for p in platform["workers"]):
                        raise RuntimeError(
                            f"{label}: job still {status} after {time.monotonic() - began:.0f}s "
                            f"(see {platform['logs']})"
                        )
                    time.sleep(0.1)
                seconds = time.monotonic() - began
                window, cpu, machine = meter.stop()
            answer = committed_content(conn, stack.s3, platform["bucket"])
            tasks = conn.execute(TASKS).fetchone() or {}
            times = conn.execute(TASK_TIMES).fetchone() or {}
        peak = [_rss_mib(pid) for pid in pids]
        after = [_rss_mib(pid, "VmRSS") for pid in pids]  # what the worker still holds once the job is done
    extra = {
        "nodes": nodes,
        "workers": workers,
        "max_inflight": inflight,
        "blocks": blocks,
        "startup_s": round(startup, 2),
        "blocks_per_s": round(blocks / seconds, 1),
        "rows": {d: c["rows"] for d, c in answer.items()},
        "tasks": tasks["tasks"],
        "retried": tasks["retried"],
        "task_wait_s": round(float(times["wait_s"]), 2),
        "task_run_s": round(float(times["run_s"]), 2),
        "worker_rss_mib": {"ready": ready_rss, "peak": peak, "after": after},
    }
    if isinstance(sampler, RssSampler):
        extra["worker_rss_mib"]["quartiles"] = sampler.quartiles()
    return method.Round(
        side, index, seconds, cpu=cpu, machine_cpu=machine, cores=os.cpu_count() or 1, window_s=window, extra=extra
    ), answer


# ---------------------------------------------------------------- the whole run
def _config_name(nodes: int, workers: int, inflight: int) -> str:
    return f"n{nodes}_w{workers}_i{inflight}"


def _who(side: str) -> str:
    kind, name = side.split(":")
    nodes, workers, inflight = (int(part[1:]) for part in name.split("_"))
    trace = (
        f"{nodes} node{'s' if nodes > 1 else ''}, {workers} worker{'s' if workers > 1 else ''}, max_inflight {inflight}"
    )
    return {"plain": "plain cryo, its defaults", "matched": "plain cryo, matched", "trace": trace}[kind]


def _line(r: method.Round, rule: method.Rule) -> str:
    cpu = " ".join(f"{k}={v}%" for k, v in r.cpu_pct().items() if v)
    why = rule.reason(r)
    return (
        f"round {r.index} {r.side:22s} {r.seconds:6.2f}s {r.extra['blocks_per_s']:7.1f} blocks/s  cpu: {cpu}  "
        f"outside {r.outside_share:.0%} of the machine{'  EXCLUDED' if why else ''}"
    )


def _comparisons(
    rounds: list[method.Round], names: list[str], references: list[str], rule: method.Rule
) -> list[dict[str, Any]]:
    """For each configuration and reference: every pair (ratio, why excluded), the summary, CPU per side."""
    out = []
    for name in names:
        for ref in references:
            pairs = method.pair_rounds(rounds, f"{ref}:{name}", f"trace:{name}")
            s = method.summary(pairs, rule)
            counted = [p for p in pairs if not p.excluded(rule)]

            def cpu(side: str, counted: list[method.Pair] = counted) -> dict[str, int]:
                picks = [p.reference if side == "reference" else p.subject for p in counted]
                if not picks:
                    return {}
                return {k: round(statistics.mean(r.cpu_pct().get(k, 0) for r in picks)) for k in picks[0].cpu_pct()}

            out.append(
                {
                    "configuration": name,
                    "reference": ref,
                    "summary": s.as_dict(),
                    "reference_settings": {k: pairs[0].reference.extra[k] for k in ("requests", "allocator")},
                    "pairs": [
                        {
                            "round": p.subject.index,
                            "ratio": round(p.ratio, 3),
                            "reference_s": round(p.reference.seconds, 2),
                            "trace_s": round(p.subject.seconds, 2),
                            "excluded": p.excluded(rule),
                        }
                        for p in pairs
                    ],
                    "cpu_pct": {"reference": cpu("reference"), "trace": cpu("trace")},
                }
            )
    return out


def _report(comparisons: list[dict[str, Any]]) -> str:
    lines = [
        (
            "| configuration | reference | median of pair ratios (min-max) | pairs counted / excluded | every pair "
            "ratio (round: ratio; * excluded) | CPU % of one core, reference / trace |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        s, settings = c["summary"], c["reference_settings"]
        ref = (
            "plain `cryo.freeze`, its defaults"
            if c["reference"] == "plain"
            else f"plain `cryo.freeze`, {settings['requests']} requests, {Path(settings['allocator']).name}"
        )
        figure = f"**{s['median']:.2f}x** ({s['min']:.2f}-{s['max']:.2f})" if s["median"] is not None else "none"
        every = ", ".join(f"{p['round']}: {p['ratio']:.2f}{'*' if p['excluded'] else ''}" for p in c["pairs"])
        cpu = " / ".join(
            ", ".join(f"{k} {v}" for k, v in c["cpu_pct"][side].items() if v) for side in ("reference", "trace")
        )
        lines.append(
            f"| {_who('trace:' + c['configuration'])} | {ref} | {figure} | {s['n']} / {s['excluded']} | "
            f"{every} | {cpu} |"
        )
    excluded = [
        f"- {c['configuration']} vs {c['reference']}, round {p['round']}: {'; '.join(p['excluded'])}"
        for c in comparisons
        for p in c["pairs"]
        if p["excluded"]
    ]
    return "\n".join(lines + (["", "Excluded pairs:", *excluded] if excluded else ["", "Excluded pairs: none"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts compared")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1], help="anvil counts compared (the job's RPC pool)")
    parser.add_argument(
        "--inflight-per-worker",
        type=int,
        nargs="+",
        default=[2],
        help="the job's max_inflight (range tasks) = this x workers",
    )
    parser.add_argument("--repeat", type=int, default=5, help="rounds: pairs per configuration and reference")
    parser.add_argument(
        "--max-outside",
        type=float,
        default=method.Rule().max_outside_share,
        help="exclude a round whose CPU outside the measured processes exceeds this share of the machine (0-1)",
    )
    parser.add_argument("--rss-sizes", type=int, nargs="*", default=[1_000, 20_000])
    parser.add_argument(
        "--chain-blocks",
        type=int,
        default=20_000,
        help="length of the seeded chain (at least --blocks and every --rss-sizes)",
    )
    parser.add_argument("--chunk-size", type=int, default=1_000, help="job chunk_size = Cryo chunk_size")
    parser.add_argument(
        "--worker-concurrency",
        default="auto",
        help="operators per worker process: auto (the job's max_inflight / workers) or a number",
    )
    parser.add_argument("--rps", type=int, default=100_000, help="the job's requests_per_second")
    parser.add_argument(
        "--concurrent-requests", type=int, default=8, help="the job's max_concurrent_requests (per range task)"
    )
    parser.add_argument(
        "--logs-window",
        type=int,
        default=1_000,
        help="max_blocks_per_logs_request (the job's and plain Cryo's inner_request_size)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".trace-lite" / "bench-cache" / "chains")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"], help="workers' log level")
    parser.add_argument("--keep-logs", action="store_true", help="keep the work directory (logs) afterwards")
    parser.add_argument(
        "--cryo-threads",
        default="auto",
        help="TRACE_WORKER_CRYO_THREADS of each worker: auto (cores / workers), default (Cryo's: "
        "one per core) or a number",
    )
    parser.add_argument(
        "--worker-allocator",
        default="auto",
        help="TRACE_WORKER_ALLOCATOR of the workers (auto, system or a library's path)",
    )
    parser.add_argument(
        "--no-matched",
        dest="matched",
        action="store_false",
        help="skip the matched-settings comparison (plain Cryo with Trace's concurrency and allocator)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run the nodes on the first core and everything else (Cryo, workers, host, Postgres, "
        "moto) on the others, to see which side saturates",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--prepare", action="store_true", help="only build (or find) the cached chain")
    parser.add_argument("--child-plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rpc", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--plain-requests", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_plain:
        plain_child(args)
        return 0
    try:
        rule = method.Rule(args.max_outside)
    except ValueError as exc:
        parser.error(f"--max-outside: {exc}")
    if args.repeat < 1:
        parser.error(f"--repeat: expected at least 1 round, got {args.repeat}")

    from trace_core.worker import allocator

    malloc = allocator.choose(args.worker_allocator)
    configs = [(n, w, ipw * w) for n in args.nodes for w in args.workers for ipw in args.inflight_per_worker]
    names = [_config_name(*c) for c in configs]
    kinds = ["plain", "trace", "matched"] if args.matched else ["plain", "trace"]
    chain_blocks = max([args.chain_blocks, args.blocks, *args.rss_sizes])
    work = Path(tempfile.mkdtemp(prefix="bench-chain-sync-"))
    rounds: list[method.Round] = []
    rss: list[dict[str, Any]] = []
    stack = None
    began = time.monotonic()
    try:
        state, info, cached = chain_state(SEED, chain_blocks, args.cache_dir, work)
        _say(f"chain: {info.blocks} blocks, {info.transactions} txs ({'cached' if cached else 'built'}: {state})")
        if args.prepare:
            return 0
        cores = sorted(os.sched_getaffinity(0))
        if args.pin and len(cores) < 2:
            parser.error(f"--pin: needs at least 2 cores, this process may use {len(cores)}")
        if args.pin:  # what this process starts from now on inherits the platform's cores; the nodes get taskset
            os.sched_setaffinity(0, cores[1:])
        stack = Stack(work, state, info, max(args.nodes), node_cpus=str(cores[0]) if args.pin else None)
        load_before = os.getloadavg()
        _say(f"load average before the rounds: {load_before}")
        expected: dict[str, Any] | None = None  # the first plain round's content: every round must match it
        for index in range(args.repeat):
            for (nodes, workers, inflight), name in zip(configs, names, strict=True):
                for kind in method.order(index, kinds):
                    side = f"{kind}:{name}"
                    if kind == "trace":
                        result, answer = run_trace(
                            args,
                            stack,
                            index,
                            side,
                            nodes=nodes,
                            workers=workers,
                            blocks=args.blocks,
                            chunk=args.chunk_size,
                            inflight=inflight,
                        )
                    else:
                        matched = kind == "matched"
                        result, answer = run_plain(
                            args,
                            stack,
                            index,
                            side,
                            requests=inflight * args.concurrent_requests if matched else 0,
                            malloc=malloc if matched else None,
                        )
                    _check_content(side, index, answer, expected)
                    expected = expected or answer
                    rounds.append(result)
                    _say(_line(result, rule))
        for size in args.rss_sizes:
            result, _ = run_trace(
                args,
                stack,
                0,
                f"rss:{_config_name(1, 1, 1)}",
                nodes=1,
                workers=1,
                blocks=size,
                chunk=size,
                inflight=1,
                rss=True,
            )
            r = result.extra["worker_rss_mib"]
            rss.append({"blocks": size, "seconds": round(result.seconds, 2), **r})
            _say(
                f"rss: one worker, one {size}-block range: peak {r['peak'][0]} MiB (ready: {r['ready'][0]}, "
                f"after: {r['after'][0]}, max per quarter of the run: {r['quartiles']} MiB), {result.seconds:.1f}s"
            )
    finally:
        if stack is not None:
            stack.close()
        if args.keep_logs:
            _say(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    comparisons = _comparisons(rounds, names, [k for k in kinds if k != "trace"], rule)
    report = {
        "chain": {"seed": SEED, "blocks": chain_blocks, "transactions": info.transactions},
        "settings": {
            k: getattr(args, k)
            for k in (
                "blocks",
                "chunk_size",
                "worker_concurrency",
                "rps",
                "concurrent_requests",
                "logs_window",
                "cryo_threads",
                "worker_allocator",
                "repeat",
                "pin",
            )
        },
        "matched_allocator": malloc,
        "rule": {"max_outside_share": rule.max_outside_share},
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "content": expected,
        "bench_seconds": round(time.monotonic() - began),
        "comparisons": comparisons,
        "rounds": [r.as_dict() for r in rounds],
        "rss": rss,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(_report(comparisons))
    return 0


if __name__ == "__main__":
    from trace_core.worker import process_exit  # child modes run Cryo in this process (decision 1302)

    sys.exit(process_exit.entry_point(main)())
