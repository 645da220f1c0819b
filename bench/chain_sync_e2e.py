"""Benchmark: chain sync end to end (planner -> tasks -> Cryo -> S3 -> committed versions) against plain Cryo.

    .venv/bin/python -m bench.chain_sync_e2e [--blocks 20000] [--workers 1 2] [--nodes 1 3]
        [--scaling-workers 1 2 4] [--rss-sizes 1000 20000] [--json out.json]

Everything runs on 127.0.0.1 and is stopped at the end (also on Ctrl-C or failure):

- the seeded Monad-like chain (``trace_core.chain``, seed 7, ``--blocks`` blocks) is built once by an
  anvil started with ``--prune-history --dump-state`` and cached under ``--cache-dir`` (about 30 MB per
  1,000 blocks); every node of a run is an anvil started with ``--load-state`` of that file, so all
  nodes serve the same blocks and hashes;
- an embedded Postgres (pgserver binaries, **fast mode**: fsync and synchronous_commit off), a fresh
  database per run, migrated; moto_server as S3, a fresh bucket per run; the Lite host
  (``trace-lite host --workers 0``: outbox drainer and lease reaper) and W worker processes
  (``trace-lite worker``, pgqueue wake-ups), as a Lite deployment runs them, each sized as
  ``docs/specs/chain_sync.md`` advises for W workers on one host: concurrency max_inflight / W
  (``--worker-concurrency``) and Cryo runtime threads cores / W (``--cryo-threads``).

Measured, in one invocation:

1. ``plain``: one ``cryo.freeze`` of the datasets over ``[0, blocks)`` into a local directory, in a
   fresh child process, with the same Cryo settings as the job (requests per second, concurrent
   requests, chunk size, eth_getLogs window, hex, lz4);
2. ``trace``: a ``fixed_target`` chain_sync job over ``[0, blocks)``, ``max_inflight = 2 x workers``
   range tasks (each extracting every dataset of its range in one Cryo freeze), timed from ``jobs.apply`` to the job's ``completed`` status (every range of every
   dataset committed), for each worker count on one node, then for every (nodes, workers) pair of the
   scaling figure; the committed row counts must equal plain Cryo's;
3. ``rss``: peak RSS (VmHWM) of one worker process syncing a single range of each ``--rss-sizes``.

For every run it reports blocks/s and the CPU each side used (anvil, workers, host, Postgres, moto,
and what other processes on the machine took meanwhile), so the report can say which side saturates.
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
from typing import Any

CHAIN_ID = 10143
SEED = 7
DATASETS = ["blocks", "transactions", "logs", "traces"]
ROOT = Path(__file__).resolve().parents[1]
COMMITTED_ROWS = """
    SELECT d.cryo_dataset AS dataset, count(*) AS versions, sum(v.row_count) AS rows,
           extract(epoch FROM max(v.committed_at)) AS last_commit
    FROM state.dataset_versions v JOIN state.datasets d USING (dataset_uuid)
    WHERE v.status = 'committed' GROUP BY d.cryo_dataset
"""
TASKS = "SELECT count(*) AS tasks, count(*) FILTER (WHERE attempt > 1) AS retried FROM state.tasks"
# Where a range task's time goes: created -> claimed (outbox, queue, a free slot) -> completed.
TASK_TIMES = """
    SELECT (SELECT string_agg(d, '+') FROM jsonb_array_elements_text(t.payload->'datasets') d) AS dataset,
           avg(extract(epoch FROM a.claimed_at - t.created_at)) AS wait_s,
           avg(extract(epoch FROM a.finished_at - a.claimed_at)) AS run_s
    FROM state.tasks t JOIN state.task_attempts a ON a.task_id = t.task_id AND a.attempt = t.attempt
    GROUP BY 1
"""


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the chain
def chain_state(seed: int, blocks: int, cache_dir: Path, work: Path) -> tuple[Path, Any, bool]:
    """anvil's ``--dump-state`` of the seeded chain (no historical state), built once per (seed, blocks)."""
    from trace_core.chain import cache, node, seeder
    from trace_core.lite import anvil, procs

    params = seeder.params_for(seed, blocks, node.GENESIS_TIMESTAMP)
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
            "--timestamp", str(node.GENESIS_TIMESTAMP), "--prune-history", "--dump-state", str(dump)])
        try:
            began = time.monotonic()
            built = seeder.seed(anvil.url(port), seed=seed, blocks=blocks, progress=lambda done, total: (
                done % 2000 == 0 and _say(f"seeded {done}/{total} blocks")))
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


class Meter:
    """CPU seconds used by groups of processes (each with its descendants) between start() and stop().

    Read twice, at start() and stop(), not polled: walking /proc for every group twice a second cost the
    benchmark's own process 2-3% of a core, on the same two cores as what it measures. A descendant that
    exits in between is not lost: its parent, having reaped it, counts it in its ``children_*`` times.
    Between the two reads a thread records only the first worker's resident set (one /proc read).
    """

    def __init__(self, groups: dict[str, list[int]], *, shallow: tuple[str, ...] = (), every: float = 0.5) -> None:
        import psutil

        self._psutil = psutil
        self._groups = groups
        self._shallow = shallow  # groups counted without their descendants
        self._every = every
        self._first: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.rss_timeline: list[tuple[float, int]] = []

    def _sample(self) -> dict[str, float]:
        """``{group: CPU seconds so far}``: each root, its live descendants and the ones they reaped."""
        seen = dict.fromkeys(self._groups, 0.0)
        for group, pids in self._groups.items():
            for pid in pids:
                try:
                    root = self._psutil.Process(pid)
                    family = [root] if group in self._shallow else [root, *root.children(recursive=True)]
                except self._psutil.NoSuchProcess:
                    continue
                for proc in family:
                    with contextlib.suppress(self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                        t = proc.cpu_times()
                        reaped = 0.0 if group in self._shallow else t.children_user + t.children_system
                        seen[group] += t.user + t.system + reaped
        return seen

    def _loop(self) -> None:
        for pid in self._groups.get("workers", [])[:1]:  # the first worker's resident set over time
            while not self._stop.wait(self._every):
                with contextlib.suppress(self._psutil.NoSuchProcess):
                    self.rss_timeline.append((round(time.monotonic() - self._began, 1),
                                              round(self._psutil.Process(pid).memory_info().rss / 2**20)))

    def start(self) -> Meter:
        self._first = self._sample()
        self._machine = self._psutil.cpu_times()
        self._began = time.monotonic()
        self._thread.start()
        return self

    def stop(self, exited: dict[str, float] | None = None) -> dict[str, float]:
        """``{group: % of one core}`` over the metered wall time, plus ``others`` (the rest of the machine).

        ``exited``: CPU seconds of processes that ended before stop() (read from their ``rusage``).
        """
        self._stop.set()
        self._thread.join()
        last = self._sample()
        wall = time.monotonic() - self._began
        used = {group: max(0.0, last[group] - self._first[group]) for group in self._groups}
        used.update(exited or {})
        now = self._psutil.cpu_times()
        busy = sum(getattr(now, f) - getattr(self._machine, f) for f in ("user", "system", "nice", "irq", "softirq"))
        used["others"] = max(0.0, busy - sum(used.values()))
        return {group: round(100 * seconds / wall) for group, seconds in used.items()}


class Stack:
    """Postgres, moto_server and the anvil nodes shared by every run; ``close()`` stops them all."""

    def __init__(self, work: Path, state_file: Path, info: Any, nodes: int) -> None:
        import boto3
        from trace_core.lite import anvil, moto, postgres, procs

        self.work = work
        self._exit = contextlib.ExitStack()
        try:
            pg_port = procs.free_port()
            self._pg_dir = work / "postgres"
            postgres.start(self._pg_dir, pg_port, fast=True)
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
                proc = procs.spawn([str(anvil.binary()), "--host", procs.HOST, "--port", str(port), "--chain-id",
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


# ---------------------------------------------------------------- plain cryo
def _freeze_kwargs(args: argparse.Namespace, rpc: str, out: str) -> dict[str, Any]:
    """What ``CryoExtractor.freeze`` passes for one sub-range, for the whole range at once."""
    return {"blocks": [f"0:{args.blocks}"], "rpc": rpc, "network_name": f"network_{CHAIN_ID}", "output_dir": out,
            "chunk_size": args.chunk_size, "inner_request_size": args.logs_window, "max_retries": 5, "hex": True,
            "compression": ["lz4"], "no_report": True, "verbose": False, "overwrite": True,
            "requests_per_second": args.rps, "max_concurrent_requests": args.concurrent_requests}


def plain_child(args: argparse.Namespace) -> None:
    """One ``cryo.freeze`` of every dataset in this process; prints a JSON line."""
    import cryo  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory(prefix="bench-plain-") as out:
        began = time.monotonic()  # after the imports: the workers are warm too
        summary = cryo.freeze(DATASETS, **_freeze_kwargs(args, args.rpc, out))
        seconds = time.monotonic() - began
        rows = {d: 0 for d in DATASETS}
        for path in Path(out).glob("*.parquet"):
            rows[next(d for d in DATASETS if f"__{d}__" in path.name)] += pq.read_metadata(path).num_rows
    print(json.dumps({"seconds": seconds, "errored": (summary or {}).get("n_errored", 0), "rows": rows,
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def run_plain(args: argparse.Namespace, stack: Stack, malloc: str | None = None) -> dict[str, Any]:
    """Plain Cryo as a user runs it; with ``malloc``, under that allocator (the one Trace's workers use)."""
    url, anvil_pid = stack.nodes[0]
    cmd = [sys.executable, "-m", "bench.chain_sync_e2e", "--child-plain", "--rpc", url, *_shared_flags(args)]
    env = {**os.environ, **({"LD_PRELOAD": malloc} if malloc else {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    meter = Meter({"anvil": [anvil_pid]}).start()
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child's CPU, once it is waited for
    try:
        out, _ = proc.communicate(timeout=3600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = meter.stop({"cryo": after.ru_utime + after.ru_stime - reaped.ru_utime - reaped.ru_stime})
    if proc.returncode != 0:
        raise RuntimeError(f"plain cryo exited with {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    if result["errored"]:
        raise RuntimeError(f"plain cryo could not collect {result['errored']} chunk(s)")
    return {"mode": "plain_malloc" if malloc else "plain", "nodes": 1, "workers": None, "blocks": args.blocks,
            "seconds": round(result["seconds"], 2), "blocks_per_s": round(args.blocks / result["seconds"], 1),
            "rows": result["rows"], "peak_rss_mib": result["peak_rss_mib"], "cpu_pct": cpu}


def _shared_flags(args: argparse.Namespace) -> list[str]:
    return ["--blocks", str(args.blocks), "--chunk-size", str(args.chunk_size), "--logs-window", str(args.logs_window),
            "--rps", str(args.rps), "--concurrent-requests", str(args.concurrent_requests)]


# ---------------------------------------------------------------- trace
def _job_spec(args: argparse.Namespace, name: str, urls: list[str], blocks: int, chunk: int, inflight: int) -> Any:
    from trace_core.chainsync import spec as spec_mod

    return spec_mod.ChainSyncSpec.model_validate({
        "name": name, "chain_id": CHAIN_ID, "datasets": DATASETS,
        "rpc": {"urls": urls, "requests_per_second": args.rps, "max_concurrent_requests": args.concurrent_requests,
                "max_blocks_per_logs_request": args.logs_window},
        "mode": {"type": "fixed_target", "from_block": 0, "to_block": blocks},
        "chunk_size": chunk, "max_inflight": inflight,
    })


def _cryo_threads_env(setting: str, workers: int) -> dict[str, str]:
    """Each worker's Cryo runtime size: by default the host's cores shared out, as plain Cryo has them all."""
    if setting == "default":
        return {}
    from trace_core.worker import cryo_threads

    threads = int(setting) if setting != "auto" else max(1, cryo_threads.cores() // workers)
    return {"TRACE_WORKER_CRYO_THREADS": str(threads)}


@contextlib.contextmanager
def _platform(stack: Stack, label: str, workers: int, concurrency: int, log_level: str,
              allocator: str, cryo_threads: str) -> Iterator[dict[str, Any]]:
    """A fresh database and bucket, the Lite host (no in-process workers) and ``workers`` worker processes."""
    from trace_core.lite import host_process, procs

    db, bucket = f"bench_{label}", f"bench-{label.replace('_', '-')}"
    url = stack.database(db)
    stack.s3.create_bucket(Bucket=bucket)
    logs = stack.work / "logs" / label
    logs.mkdir(parents=True, exist_ok=True)
    env = {"TRACE_DATABASE_URL": url, "AWS_ENDPOINT_URL": stack.s3_url, "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1", "TRACE_DATASETS_BUCKET": bucket,
           "TRACE_HOME": str(stack.work / "home"), "TRACE_LOG_LEVEL": log_level,
           "TRACE_WORKER_ALLOCATOR": allocator, **_cryo_threads_env(cryo_threads, workers)}
    started: list[subprocess.Popen[bytes]] = []
    try:
        port = procs.free_port()
        host = _spawn([sys.executable, "-m", "trace_core.cli", "host", "--port", str(port), "--workers", "0"],
                      logs / "host.log", {**env, "TRACE_LOG_LEVEL": "WARNING"})
        started.append(host)
        for n in range(workers):
            started.append(_spawn([sys.executable, "-m", "trace_core.cli", "worker", "--concurrency", str(concurrency),
                                   "--poll-seconds", "2"], logs / f"worker-{n}.log", env))
        procs.wait_until("host", lambda: host_process.healthy_at(host_process.url(port)), proc=host,
                         log=logs / "host.log", timeout=60)
        for n, proc in enumerate(started[1:]):
            log = logs / f"worker-{n}.log"
            procs.wait_until(f"worker {n}", lambda log=log: " ready: " in log.read_text(errors="replace"), proc=proc,
                             log=log, timeout=60)
        yield {"database_url": url, "host": host, "workers": started[1:], "logs": logs}
    finally:
        for proc in reversed(started):
            procs.stop(proc.pid, timeout=30)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        stack.empty_bucket(bucket)
        stack.drop_database(db)


def run_trace(args: argparse.Namespace, stack: Stack, *, nodes: int, workers: int, blocks: int, chunk: int,
              inflight: int, label: str) -> dict[str, Any]:
    import psycopg
    from psycopg.rows import dict_row
    from trace_core.chainsync import jobs

    urls = [url for url, _ in stack.nodes[:nodes]]
    # Each worker runs its share of the job's ranges at once (max_inflight / workers), as the spec's sizing advises.
    concurrency = -(-inflight // workers) if args.worker_concurrency == "auto" else int(args.worker_concurrency)
    with _platform(stack, label, workers, concurrency, args.log_level,
                   args.worker_allocator, args.cryo_threads) as platform:
        pids = [p.pid for p in platform["workers"]]
        baseline_rss = [_rss_mib(pid) for pid in pids]
        with psycopg.connect(platform["database_url"], autocommit=True, row_factory=dict_row) as conn:
            spec = _job_spec(args, f"bench-{label.replace('_', '-')}", urls, blocks, chunk, inflight)
            meter = Meter({"anvil": [pid for _, pid in stack.nodes[:nodes]], "workers": pids,
                           "host": [platform["host"].pid], "postgres": [stack.pg_pid], "moto": [stack.moto_pid],
                           "bench": [os.getpid()]}, shallow=("bench",)).start()
            per_node = Meter({f"node{n}": [pid] for n, (_, pid) in enumerate(stack.nodes[:nodes])}).start()
            began, began_wall = time.monotonic(), time.time()
            jobs.apply(conn, spec)
            deadline = began + args.timeout
            while (status := jobs.find(conn, spec.name)["status"]) != "completed":
                if time.monotonic() > deadline or any(p.poll() is not None for p in platform["workers"]):
                    meter.stop()
                    per_node.stop()
                    raise RuntimeError(f"{label}: job still {status} after {time.monotonic() - began:.0f}s "
                                       f"(see {platform['logs']})")
                time.sleep(0.1)
            seconds = time.monotonic() - began
            cpu = meter.stop()
            node_cpu = [v for k, v in per_node.stop().items() if k != "others"]  # is the pool's load spread?
            committed = conn.execute(COMMITTED_ROWS).fetchall()
            rows = {r["dataset"]: int(r["rows"]) for r in committed}
            # When each stream's last range committed: the slowest stream decides the run's time.
            finished = {r["dataset"]: round(float(r["last_commit"]) - began_wall, 1) for r in committed}
            task_counts = conn.execute(TASKS).fetchone()
            task_times = {r["dataset"]: {"wait_s": round(float(r["wait_s"]), 2), "run_s": round(float(r["run_s"]), 2)}
                          for r in conn.execute(TASK_TIMES).fetchall()}
        peak = [_rss_mib(pid) for pid in pids]
        after = [_rss_mib(pid, "VmRSS") for pid in pids]  # what the worker still holds once the job is done
    return {"mode": "trace", "nodes": nodes, "workers": workers, "blocks": blocks, "chunk_size": chunk,
            "max_inflight": inflight, "seconds": round(seconds, 2), "blocks_per_s": round(blocks / seconds, 1),
            "rows": rows, "stream_done_s": finished, "task_times": task_times, "tasks": task_counts["tasks"],
            "retried": task_counts["retried"],
            "worker_rss_mib": {"ready": baseline_rss, "peak": peak, "after": after,
                               "quartiles": _quartiles(meter.rss_timeline)}, "cpu_pct": cpu, "node_cpu_pct": node_cpu}


def _quartiles(timeline: list[tuple[float, int]]) -> list[int]:
    """The first worker's highest RSS (MiB) within each quarter of the run: flat means bounded."""
    if not timeline:
        return []
    end = timeline[-1][0] or 1.0
    return [max((rss for t, rss in timeline if q * end / 4 <= t <= (q + 1) * end / 4), default=0) for q in range(4)]


# ---------------------------------------------------------------- the whole run
def _cpu_seconds_per_1k(r: dict[str, Any]) -> dict[str, float]:
    return {group: round(pct / 100 * r["seconds"] * 1000 / r["blocks"], 2) for group, pct in r["cpu_pct"].items()}


def _line(r: dict[str, Any]) -> str:
    who = {"plain": "plain cryo", "plain_malloc": "plain cryo, workers' malloc"}.get(r["mode"]) or (
        f"trace {r['nodes']} node(s) x {r['workers']} worker(s), inflight {r['max_inflight']}")
    cpu = " ".join(f"{k}={v}%" for k, v in r["cpu_pct"].items())
    return f"{who:44s} {r['seconds']:7.1f}s {r['blocks_per_s']:7.1f} blocks/s  cpu: {cpu}"


def _summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration: the median run (by time), the range, CPU averaged over the repeats."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["mode"], r["nodes"], r.get("workers"), r.get("max_inflight"), r["blocks"]), []).append(r)
    plain = sorted(r["blocks_per_s"] for r in results if r["mode"] == "plain")
    plain_median = statistics.median(plain) if plain else None
    rows = []
    for (mode, nodes, workers, inflight, blocks), runs in groups.items():
        speeds = sorted(r["blocks_per_s"] for r in runs)
        cpu = {k: round(statistics.mean(r["cpu_pct"][k] for r in runs)) for k in runs[0]["cpu_pct"]}
        per_1k = {k: round(statistics.mean(_cpu_seconds_per_1k(r)[k] for r in runs), 2) for k in runs[0]["cpu_pct"]}
        median = statistics.median(speeds)
        rows.append({"mode": mode, "nodes": nodes, "workers": workers, "max_inflight": inflight, "blocks": blocks,
                     "runs": len(runs), "blocks_per_s": round(median, 1), "min": speeds[0], "max": speeds[-1],
                     "vs_plain": (round(median / plain_median, 2)
                                  if plain_median and mode in ("trace", "plain_malloc") else None),
                     "cpu_pct": cpu, "cpu_s_per_1k_blocks": per_1k,
                     "worker_peak_rss_mib": max(
                         (max(r["worker_rss_mib"]["peak"]) for r in runs if "worker_rss_mib" in r),
                         default=runs[0].get("peak_rss_mib"))})
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| run | blocks/s (median, min-max) | vs plain | CPU % of one core | peak RSS MiB |",
             "|---|---|---|---|---|"]
    for r in rows:
        who = {"plain": "plain `cryo.freeze`", "plain_malloc": "plain `cryo.freeze` under the workers' malloc"}.get(
            r["mode"]) or (
            f"{'RSS: ' if r['mode'] == 'rss' else ''}{r['nodes']} node{'s' if r['nodes'] > 1 else ''}, {r['workers']} worker"
            f"{'s' if r['workers'] > 1 else ''}, max_inflight {r['max_inflight']}")
        cpu = ", ".join(f"{k} {v}" for k, v in r["cpu_pct"].items() if v)
        lines.append(f"| {who} ({r['blocks']} blocks, {r['runs']} run{'s' if r['runs'] > 1 else ''}) | "
                     f"{r['blocks_per_s']:.0f} ({r['min']:.0f}-{r['max']:.0f}) | {r['vs_plain'] or ''} | {cpu} | "
                     f"{r['worker_peak_rss_mib']} |")
    return "\n".join(lines)


def _check_rows(result: dict[str, Any], plain: dict[str, Any]) -> None:
    if result["rows"] != plain["rows"]:
        raise RuntimeError(f"trace committed {result['rows']} rows, plain cryo wrote {plain['rows']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts of the headline")
    parser.add_argument("--inflight-per-worker", type=int, nargs="+", default=[2, 8],
                        help="headline runs for each: the job's max_inflight (range tasks) = this x workers")
    parser.add_argument("--repeat", type=int, default=3, help="headline rounds (plain and each trace run, interleaved)")
    parser.add_argument("--nodes", type=int, nargs="*", default=[1, 3], help="anvil counts of the scaling figure")
    parser.add_argument("--scaling-workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--scaling-blocks", type=int, help="blocks of the scaling runs (default --blocks)")
    parser.add_argument("--rss-sizes", type=int, nargs="*", default=[1_000, 20_000])
    parser.add_argument("--chunk-size", type=int, default=1_000, help="job chunk_size = Cryo chunk_size")
    parser.add_argument("--worker-concurrency", default="auto",
                        help="operators per worker process: auto (the job's max_inflight / workers) or a number")
    parser.add_argument("--rps", type=int, default=100_000, help="requests_per_second (job and plain Cryo)")
    parser.add_argument("--concurrent-requests", type=int, default=8,
                        help="max_concurrent_requests (job and plain Cryo)")
    parser.add_argument("--logs-window", type=int, default=1_000, help="max_blocks_per_logs_request")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".trace-lite" / "bench-cache" / "chains")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"], help="workers' log level")
    parser.add_argument("--keep-logs", action="store_true", help="keep the work directory (logs) afterwards")
    parser.add_argument("--cryo-threads", default="auto",
                        help="TRACE_WORKER_CRYO_THREADS of each worker: auto (cores / workers), default (Cryo's: "
                             "one per core) or a number")
    parser.add_argument("--worker-allocator", default="auto",
                        help="TRACE_WORKER_ALLOCATOR of the workers (auto, system or a library's path)")
    parser.add_argument("--no-plain-malloc", dest="plain_malloc", action="store_false",
                        help="skip the context run of plain Cryo under the workers' allocator")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--prepare", action="store_true", help="only build (or find) the cached chain")
    parser.add_argument("--child-plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rpc", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_plain:
        plain_child(args)
        return 0

    chain_blocks = max([args.blocks, args.scaling_blocks or 0, *args.rss_sizes])
    work = Path(tempfile.mkdtemp(prefix="bench-chain-sync-"))
    results: list[dict[str, Any]] = []
    stack = None
    began = time.monotonic()
    try:
        state, info, cached = chain_state(SEED, chain_blocks, args.cache_dir, work)
        _say(f"chain: {info.blocks} blocks, {info.transactions} txs ({'cached' if cached else 'built'}: {state})")
        if args.prepare:
            return 0
        stack = Stack(work, state, info, max([1, *args.nodes]))
        _say(f"load average before the runs: {os.getloadavg()}")

        def trace(nodes: int, workers: int, blocks: int, chunk: int, inflight: int, label: str) -> dict[str, Any]:
            return run_trace(args, stack, nodes=nodes, workers=workers, blocks=blocks, chunk=chunk, inflight=inflight,
                             label=f"{label}_{uuid.uuid4().hex[:6]}")

        headline = [(w, ipw * w) for ipw in args.inflight_per_worker for w in args.workers]
        from trace_core.worker import allocator

        malloc = allocator.choose(args.worker_allocator) if args.plain_malloc else None
        plain: dict[str, Any] | None = None
        for _ in range(args.repeat):  # interleaved, so load from other processes hits every configuration
            plain = run_plain(args, stack)
            results.append(plain)
            _say(_line(plain))
            if malloc:  # context: what the workers' allocator alone gives plain Cryo
                tuned = run_plain(args, stack, malloc)
                _check_rows(tuned, plain)
                results.append(tuned)
                _say(_line(tuned) + f" ({allocator.name_of(malloc)}; "
                     f"{tuned['blocks_per_s'] / plain['blocks_per_s']:.2f}x this round's plain)")
            for workers, inflight in headline:
                result = trace(1, workers, args.blocks, args.chunk_size, inflight, f"n1_w{workers}")
                _check_rows(result, plain)
                results.append(result)
                _say(_line(result) + f"  ({result['blocks_per_s'] / plain['blocks_per_s']:.2f}x this round's plain)")
        scaling_blocks = args.scaling_blocks or args.blocks
        inflight_per_worker = max(args.inflight_per_worker)
        for nodes in args.nodes:
            for workers in args.scaling_workers:
                if scaling_blocks == args.blocks and (nodes, workers) in {(1, w) for w, _ in headline}:
                    continue  # the headline measured it
                result = trace(nodes, workers, scaling_blocks, args.chunk_size, inflight_per_worker * workers,
                               f"n{nodes}_w{workers}")
                if scaling_blocks == args.blocks and plain is not None:
                    _check_rows(result, plain)
                results.append(result)
                _say(_line(result) + f"  (per node: {result['node_cpu_pct']}%)")
        for size in args.rss_sizes:
            result = trace(1, 1, size, size, 1, f"rss{size}")
            result["mode"] = "rss"
            results.append(result)
            rss = result["worker_rss_mib"]
            _say(f"rss: one worker, one {size}-block range: peak {rss['peak'][0]} MiB (ready: {rss['ready'][0]}, "
                 f"after: {rss['after'][0]}, max per quarter of the run: {rss['quartiles']} MiB), "
                 f"{result['seconds']}s")
    finally:
        if stack is not None:
            stack.close()
        if args.keep_logs:
            _say(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    rows = _summary(results)
    summary = {"chain": {"seed": SEED, "blocks": chain_blocks, "transactions": info.transactions},
               "settings": {k: getattr(args, k) for k in ("chunk_size", "worker_concurrency", "rps",
                                                          "concurrent_requests", "logs_window", "cryo_threads",
                                                          "worker_allocator")},
               "cpus": os.cpu_count(), "bench_seconds": round(time.monotonic() - began), "summary": rows,
               "results": results}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print(_table(rows))
    return 0


if __name__ == "__main__":
    from trace_core.worker import process_exit  # child modes run Cryo in this process (decision 1302)

    sys.exit(process_exit.entry_point(main)())
