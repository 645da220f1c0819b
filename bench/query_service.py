"""Benchmark: the Query Service over HTTP against plain DuckDB on the same Parquet files.

    .venv/bin/python -m bench.query_service [--rows 10000000] [--versions 10] [--repeat 9]
        [--round-seconds 2] [--max-outside 0.10] [--clients 20] [--duration 60]
        [--workloads reference compact] [--json out.json]

The method is ``bench.method``'s: paired rounds, disturbed rounds excluded, answers checked by content.
It starts embedded Postgres (Lite's settings: fsync on) and moto_server on 127.0.0.1, commits ``--rows``
rows of each workload's transactions-like dataset as ``--versions`` dataset versions (real commit
protocol), starts ``python -m trace_core.query.service`` as a child process (the real gate and sandboxed
engine, as Lite runs it), mints a user token granting the dataset, and compares it with plain DuckDB
(``read_parquet`` over the service's verified cache files, in this process) on the same query:

1. ``group_by``, one comparison per workload (``--workloads``): ``reference``, the issue's own figure, a
   top-100 group-by (``from_address, count(*), sum(value)``) over transactions with random hashes and
   500,000 senders (~570 MB of Parquet); ``compact``, the same group-by returning all 1,000 groups of a
   135 MB table, where the service's fixed cost per query weighs most. Target (on the first workload):
   the service within 1.2x of DuckDB's time, i.e. a median pair ratio of at least 1/1.2.
2. ``trivial``: ``select <n> as one from transactions limit 1``, the round trip (token, gate, attach,
   execute, audit, HTTP) with warm attach. The gate remembers its verdicts by SQL text, so it is measured
   both ways: ``cold``, every request's text distinct (a literal that never repeats: the gate parses and
   checks each one, as for a user's ad-hoc queries), and ``warm``, one text repeated (a dashboard's
   refresh). p50/p95 of the requests in counted rounds, and each pipeline phase's median from the audit
   rows (``detail.ms``). Target: cold p50 < 30 ms.
3. ``concurrent``: ``--clients`` threads for ``--duration`` seconds, each a user of its own alternating
   the cold trivial query and a small aggregate, every answer checked. Target: zero errors.

Rounds: each round runs one side (``service``, or ``duckdb``; in step 2 ``warm``, ``duckdb``, ``cold``)
for at least ``--round-seconds``, query after query, so the CPU read over it is not dominated by clock
ticks; its figure is the mean seconds per query. Rounds run in pairs, the order alternating
(``method.order``), ``--repeat`` pairs per comparison. Each round reads the CPU of the service (with its
sandbox workers), Postgres, moto and this process, and the whole machine's; a round with more than
``--max-outside`` of the machine used outside them is excluded with its pair, and counted. The figure is
the median of the pair ratios, DuckDB's seconds per query / the service's (above 1, the service is
faster), with min, max and every ratio.

Every answer is checked by content, not by count: the service's JSON rows and DuckDB's rows, normalised
alike (binary as 0x-hex, sums as exact integers), must give the same ``method.digest`` (row count, sums
of ``n`` and ``total``, an order-independent hash of every whole row, so of each group's key, count and
sum); a trivial answer must be the literal asked for. A mismatch stops the run.

Exit code 1 if any target is missed. Everything it starts it stops.
"""

from __future__ import annotations

import argparse
import decimal
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg.rows import dict_row
from trace_core import aws
from trace_core import settings as settings_mod
from trace_core.auth import grants as auth_grants
from trace_core.auth import keys, tokens
from trace_core.datasets import commit, models, naming, objectstore
from trace_core.db import migrate
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks
from trace_core.lite import moto, postgres, procs, provision
from trace_core.lite import query as query_lite
from trace_core.query.service import deps

from bench import method

# The reference: a top-100 group-by with count and sum over 10M transactions (568 MB of Parquet).
TOP_100 = ("select from_address, count(*) as n, sum(value) as total from transactions "
           "group by 1 order by n desc, from_address limit 100")
# A small scan (135 MB, 1,000 groups returned as JSON): the service's fixed cost per query shows most here.
GROUP_BY = "select from_address, count(*) as n, sum(value) as total from transactions group by 1"
# {n}: a literal that differs from request to request, so the gate's memory of verdicts never answers.
TRIVIAL = "select {n} as one from transactions limit 1"
WARM_LITERAL = 1  # the warm side repeats one text; cold literals start above it and never repeat
SMALL = "select count(*) as n from transactions where block_number < 1000"
SUMS = ("n", "total")  # the group-bys' summed columns, compared as exact integers
TRIVIAL_SIDES = ["warm", "duckdb", "cold"]
# One side of a round: the timed call, and the check of its answer (not timed).
Side = tuple[Callable[[], Any], Callable[[Any], None]]


def _reference_transactions(start_block: int, rows: int, seed: int) -> pa.Table:
    """Transactions as Cryo writes them, in the columns the query and its neighbours touch: random 32-byte
    hashes, 500,000 senders with a long tail (a few send most), values, gas. ~57 bytes a row compressed."""
    rng = np.random.default_rng(seed)
    senders = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(20), 500_000, [None, pa.py_buffer(np.random.default_rng(0).bytes(20 * 500_000))])
    picks = np.minimum((rng.pareto(1.1, rows) * 2_000).astype(np.int64), 499_999)
    hashes = pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), rows, [None, pa.py_buffer(rng.bytes(32 * rows))])
    blocks = start_block + np.arange(rows) // 100
    return pa.table({
        "block_number": pa.array(blocks.astype(np.uint32)),
        "transaction_index": pa.array((np.arange(rows) % 100).astype(np.uint32)),
        "transaction_hash": hashes.cast(pa.binary()),
        "from_address": senders.take(pa.array(picks)).cast(pa.binary()),
        "value": pa.array(rng.integers(0, 10**12, rows, dtype=np.uint64)),
        "gas_used": pa.array(rng.integers(21_000, 500_000, rows, dtype=np.uint64)),
    })


def _compact_transactions(start_block: int, rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    pool = [i.to_bytes(20, "big") for i in range(1, 1001)]
    blocks = start_block + np.arange(rows) // 100
    return pa.table({
        "block_number": pa.array(blocks.astype(np.uint32)),
        "transaction_index": pa.array((np.arange(rows) % 100).astype(np.uint32)),
        "from_address": pa.array([pool[i] for i in rng.integers(0, 1000, rows)], pa.binary()),
        "value": pa.array(rng.integers(0, 10**12, rows, dtype=np.uint64)),
        "gas_used": pa.array(rng.integers(21_000, 500_000, rows, dtype=np.uint64)),
    })


# name -> (rows of one version, the group-by measured on it)
WORKLOADS: dict[str, tuple[Any, str]] = {
    "reference": (_reference_transactions, TOP_100),
    "compact": (_compact_transactions, GROUP_BY),
}


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- content of an answer (pure)
def _plain(value: Any) -> Any:
    """A value as the service's JSON writes it: binary as 0x-hex, integral decimals as integers."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def answer_digest(names: Sequence[str], rows: Sequence[Sequence[Any]], sums: Sequence[str] = SUMS) -> dict[str, Any]:
    """``method.digest`` of an answer: its rows, the exact sums of the ``sums`` columns present, and the
    hash of every whole row (each group's key with its count and sum), normalised so that the service's
    JSON (big integers as strings, binary as 0x-hex) and DuckDB's Python values compare equal."""
    summed = [i for i, name in enumerate(names) if name in sums]
    normal = [tuple(int(v) if i in summed else _plain(v) for i, v in enumerate(row)) for row in rows]
    totals = {names[i]: sum(row[i] for row in normal) for i in summed}
    return method.digest(len(normal), totals, normal)


def arrow_digest(table: pa.Table) -> dict[str, Any]:
    return answer_digest(table.column_names, list(zip(*(c.to_pylist() for c in table.columns), strict=True)))


def json_digest(body: dict[str, Any]) -> dict[str, Any]:
    """The digest of a service answer (``/v1/query``'s JSON body)."""
    return answer_digest([c["name"] for c in body["columns"]], body["rows"])


def check_answer(what: str, expected: dict[str, Any], got: dict[str, Any]) -> None:
    problems = method.content_mismatches({what: expected}, {what: got})
    if problems:
        raise RuntimeError("the answers differ in content: " + "; ".join(problems))


def cold_literals(start: int = WARM_LITERAL + 1) -> Iterator[int]:
    """Literals for the cold side: never the warm side's, never one twice (``next`` is atomic: threads may share)."""
    return itertools.count(start)


# ---------------------------------------------------------------- rounds
def timed_round(side: str, index: int, query: Callable[[], Any], check: Callable[[Any], None], seconds: float,
                groups: dict[str, list[int]]) -> tuple[method.Round, list[float]]:
    """Call ``query`` one call after another for at least ``seconds`` (at least once), reading the CPU of
    ``groups`` and the machine over it, and ``check`` each answer outside the timed call. The round's figure
    is the mean seconds per call (the window, with the checks, is longer); also returns each call's seconds."""
    meter = method.Meter(groups, shallow=("bench",)).start()
    times: list[float] = []
    began = time.monotonic()
    while not times or time.monotonic() - began < seconds:
        started = time.perf_counter()
        answer = query()
        times.append(time.perf_counter() - started)
        check(answer)
    window, cpu, machine = meter.stop()
    return method.Round(side, index, statistics.mean(times), cpu=cpu, machine_cpu=machine,
                        cores=os.cpu_count() or 1, window_s=window,
                        extra={"queries": len(times), **latency_ms(times)}), times


def latency_ms(times: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of ``times`` (seconds) in milliseconds."""
    p95 = statistics.quantiles(times, n=20)[18] if len(times) > 1 else times[0]
    return {"p50_ms": round(1000 * statistics.median(times), 2), "p95_ms": round(1000 * p95, 2)}


def comparison(rounds: list[method.Round], reference: str, subject: str, rule: method.Rule) -> dict[str, Any]:
    """Every pair (ratio, seconds per query, why excluded) and the summary of the counted ones."""
    pairs = method.pair_rounds(rounds, reference, subject)
    return {"reference": reference, "subject": subject, "summary": method.summary(pairs, rule).as_dict(),
            "pairs": [{"round": p.subject.index, "ratio": round(p.ratio, 3),
                       f"{reference}_ms": round(1000 * p.reference.seconds, 2),
                       f"{subject}_ms": round(1000 * p.subject.seconds, 2),
                       "outside_share": [round(p.reference.outside_share, 3), round(p.subject.outside_share, 3)],
                       "excluded": p.excluded(rule)} for p in pairs]}


def counted_indexes(rounds: list[method.Round], reference: str, subject: str, rule: method.Rule) -> set[int]:
    return {p.subject.index for p in method.pair_rounds(rounds, reference, subject) if not p.excluded(rule)}


# ---------------------------------------------------------------- the stack
def publish(settings: settings_mod.Settings, work: Path, workload: str, rows: int,
            versions: int) -> list[models.DatasetVersion]:
    """Commit ``rows`` rows as ``versions`` versions of ``{workload}/transactions`` (one file each)."""
    store = objectstore.S3ObjectStore(aws.client("s3", settings), settings.datasets_bucket)
    generate = WORKLOADS[workload][0]
    per = rows // versions
    out = []
    with psycopg.connect(settings.database_url or "", autocommit=True, row_factory=dict_row) as conn:
        for index in range(versions):
            lo, hi = index * (per // 100), (index + 1) * (per // 100)
            path = work / naming.cryo_file_name(workload, "transactions", lo, hi)
            pq.write_table(generate(lo, per, index), path, row_group_size=1_000_000)
            task = tasks.create(conn, task_models.CreateTask(operator="bench", payload={}))
            lease = tasks.claim(conn, task.task_id, worker_id="bench", lease_seconds=600)
            staged_file = commit.stage_file(store, path, task_id=task.task_id, attempt=lease.attempt,
                                            cryo_dataset="transactions", range_start=lo, range_end=hi)
            staged = models.StagedVersion(
                task_id=task.task_id, attempt=lease.attempt, chain_id=10143, dataset_key=f"{workload}/transactions",
                cryo_dataset="transactions", range_start=lo, range_end=hi, config_hash="be0c4be0c4",
                extract={}, cryo_version="bench", files=(staged_file,))
            with conn.transaction():
                out.append(commit.commit(conn, store, staged, task_id=task.task_id, attempt=lease.attempt))
            path.unlink()
    return out


def _token(settings: settings_mod.Settings, versions: list[models.DatasetVersion], subject: str = "bench") -> str:
    grant = auth_grants.build([
        {"dataset_key": v.dataset_key, "dataset_uuid": v.dataset_uuid, "dataset_version": v.dataset_version,
         "storage_prefix": v.storage_prefix, "range_start": v.range_start, "range_end": v.range_end}
        for v in versions])
    return tokens.mint_user_token(keys.from_settings(settings), issuer=settings.token_issuer, org_id=uuid.uuid4(),
                                  subject=subject, grants=grant, ttl=tokens.MAX_TTL)


def _cache_files(settings: settings_mod.Settings, versions: list[models.DatasetVersion]) -> list[str]:
    """The service's verified copies of these versions' files (its cache holds a folder per version)."""
    root = deps.cache_root(settings)
    files = sorted(str(p) for v in versions for p in (root / v.dataset_version).rglob("*.parquet"))
    if len(files) != len(versions):
        raise RuntimeError(f"expected one cached file per version ({len(versions)}), found {files}")
    return files


def _post(client: httpx.Client, sql: str) -> dict[str, Any]:
    response = client.post("/v1/query", json={"sql": sql})
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def _phases(database_url: str, query_ids: Sequence[str]) -> dict[str, Any]:
    """Median milliseconds per pipeline phase of these audited queries, and the service's own share
    (nothing if there are none: no round counted)."""
    if not query_ids:
        return {}
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT detail->'ms', duration_ms FROM state.audit_log "
                             "WHERE query_id = ANY(%s::uuid[]) AND decision = 'allowed'", (list(query_ids),)).fetchall()
    if len(found) != len(query_ids):
        raise RuntimeError(f"{len(query_ids)} queries answered, {len(found)} audit rows found")
    rows = [r[0] for r in found]
    phases = {name: round(statistics.median(float(r[name]) for r in rows), 3) for name in rows[0]}
    # From reading the token to just before the audit INSERT: the round trip minus this is HTTP and audit.
    phases["handled"] = round(statistics.median(float(r[1]) for r in found), 2)
    # Everything but the sandbox's own execution: token, gate, attach, shaping (audit and HTTP are not in it).
    phases["service_overhead_ms"] = round(sum(v for k, v in phases.items()
                                              if k not in ("execute", "handled", "worker")), 2)
    return {"phases_p50_ms": phases, "audited_queries": len(found)}


class Bench:
    """The running stack (Postgres, moto, the Query Service) and what every round measures."""

    def __init__(self, args: argparse.Namespace, settings: settings_mod.Settings, service_url: str,
                 groups: dict[str, list[int]], rule: method.Rule) -> None:
        self.args, self.settings, self.url, self.groups, self.rule = args, settings, service_url, groups, rule
        self.literals = cold_literals()

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=300, headers={"Authorization": f"Bearer {token}"})

    def group_by(self, workload: str, versions: list[models.DatasetVersion]) -> dict[str, Any]:
        """Service and plain DuckDB on the same query and files, ``--repeat`` pairs of rounds."""
        sql = WORKLOADS[workload][1]
        with self.client(_token(self.settings, versions)) as client:
            started = time.perf_counter()
            first = _post(client, sql)  # cold: downloads and verifies every version
            cold_attach = round(time.perf_counter() - started, 2)
            files = _cache_files(self.settings, versions)
            plain = duckdb.connect()
            relation = f"read_parquet({files!r})"
            held = plain.execute(f"select count(*) from {relation}").fetchall()
            if held != [(self.args.rows - self.args.rows % self.args.versions,)]:
                raise RuntimeError(f"{workload}: the cached files hold {held} rows, not {self.args.rows}")
            plain_sql = sql.replace("transactions", relation)
            expected = arrow_digest(plain.sql(plain_sql).to_arrow_table())
            check_answer(f"{workload} (service)", expected, json_digest(first))
            ids: dict[int, list[str]] = {}

            def service(index: int) -> Side:
                def check(body: dict[str, Any]) -> None:
                    check_answer(f"{workload} (service)", expected, json_digest(body))
                    ids.setdefault(index, []).append(body["query_id"])
                return (lambda: _post(client, sql)), check

            def reference(_: int) -> Side:
                return ((lambda: plain.sql(plain_sql).to_arrow_table()),
                        lambda table: check_answer(f"{workload} (duckdb)", expected, arrow_digest(table)))

            rounds, _ = self._rounds(["duckdb", "service"], {"duckdb": reference, "service": service})
        counted = counted_indexes(rounds, "duckdb", "service", self.rule)
        return {"query": sql, "parquet_mb": round(sum(Path(f).stat().st_size for f in files) / 2**20, 1),
                "rows_back": expected["rows"], "content": expected, "cold_attach_s": cold_attach,
                "comparison": comparison(rounds, "duckdb", "service", self.rule),
                **_phases(self.settings.database_url or "", [q for i in sorted(counted) for q in ids[i]]),
                "rounds": [r.as_dict() for r in rounds]}

    def trivial(self, versions: list[models.DatasetVersion]) -> dict[str, Any]:
        """The trivial query's round trip with the gate's memory cold (distinct texts) and warm (one text)."""
        with self.client(_token(self.settings, versions)) as client:
            plain = duckdb.connect()
            relation = f"read_parquet({_cache_files(self.settings, versions)!r})"
            ids: dict[tuple[str, int], list[str]] = {}

            def service(side: str) -> Callable[[int], Side]:
                def for_round(index: int) -> Side:
                    asked: list[int] = []

                    def query() -> dict[str, Any]:
                        asked.append(WARM_LITERAL if side == "warm" else next(self.literals))
                        return _post(client, TRIVIAL.format(n=asked[-1]))

                    def check(body: dict[str, Any]) -> None:
                        if body["rows"] != [[asked[-1]]]:
                            raise RuntimeError(f"trivial ({side}): asked for {asked[-1]}, the service answered "
                                               f"{body['rows']}")
                        ids.setdefault((side, index), []).append(body["query_id"])
                    return query, check
                return for_round

            def reference(_: int) -> Side:
                asked: list[int] = []

                def query() -> list[Any]:
                    asked.append(next(self.literals))
                    return plain.execute(TRIVIAL.format(n=asked[-1]).replace("transactions", relation)).fetchall()

                def check(got: list[Any]) -> None:
                    if got != [(asked[-1],)]:
                        raise RuntimeError(f"trivial (duckdb): asked for {asked[-1]}, DuckDB answered {got}")
                return query, check

            rounds, latencies = self._rounds(TRIVIAL_SIDES, {"warm": service("warm"), "cold": service("cold"),
                                                             "duckdb": reference})
        out: dict[str, Any] = {"query": TRIVIAL, "warm_query": TRIVIAL.format(n=WARM_LITERAL)}
        for side in ("cold", "warm"):
            counted = sorted(counted_indexes(rounds, "duckdb", side, self.rule))
            times = [t for i in counted for t in latencies[(side, i)]]
            out[side] = {**(latency_ms(times) if times else {}), "requests": len(times),
                         "comparison": comparison(rounds, "duckdb", side, self.rule),
                         **_phases(self.settings.database_url or "", [q for i in counted for q in ids[(side, i)]])}
        plain_times = [t for (side, _), ts in latencies.items() if side == "duckdb" for t in ts]
        out["duckdb"] = {**latency_ms(plain_times), "queries": len(plain_times)}
        out["rounds"] = [r.as_dict() for r in rounds]
        return out

    def _rounds(self, sides: list[str], runs: dict[str, Callable[[int], Side]]
                ) -> tuple[list[method.Round], dict[tuple[str, int], list[float]]]:
        """One warm-up call of each side, then ``--repeat`` rounds of every side, the order alternating.

        Returns the rounds and each round's per-call seconds, by (side, round)."""
        for side in sides:
            query, check = runs[side](-1)
            check(query())
        rounds = []
        latencies = {}
        for index in range(self.args.repeat):
            for side in method.order(index, sides):
                query, check = runs[side](index)
                result, latencies[(side, index)] = timed_round(side, index, query, check, self.args.round_seconds,
                                                               self.groups)
                rounds.append(result)
                _say(_line(result, self.rule))
        return rounds, latencies

    def concurrent(self, versions: list[models.DatasetVersion]) -> dict[str, Any]:
        """``--clients`` users at once, cold trivial and small aggregate alternating, every answer checked."""
        relation = f"read_parquet({_cache_files(self.settings, versions)!r})"
        small = duckdb.connect().execute(SMALL.replace("transactions", relation)).fetchall()
        # One user per client: the service shares its workers fairly between users (a single user may run
        # half the workers and queue 2 more), so 20 clients of one user would be refused by design.
        client_tokens = [_token(self.settings, versions, subject=f"bench-client-{n}") for n in range(self.args.clients)]
        counts = {"ok": 0, "errors": 0}
        first_errors: list[str] = []
        lock = threading.Lock()

        def worker(token: str) -> None:
            with self.client(token) as client:
                n = 0
                while time.monotonic() < deadline:
                    try:
                        if n % 2:
                            literal = next(self.literals)
                            rows = _post(client, TRIVIAL.format(n=literal))["rows"]
                            if rows != [[literal]]:
                                raise RuntimeError(f"asked for {literal}, answered {rows}")
                        elif (rows := _post(client, SMALL)["rows"]) != [list(r) for r in small]:
                            raise RuntimeError(f"small aggregate: {rows} != DuckDB's {small}")
                        outcome = "ok"
                    except Exception as exc:  # noqa: BLE001 - counted and reported
                        outcome = "errors"
                        with lock:
                            if len(first_errors) < 5:
                                first_errors.append(str(exc)[:300])
                    n += 1
                    with lock:
                        counts[outcome] += 1

        threads = [threading.Thread(target=worker, args=(token,)) for token in client_tokens]
        meter = method.Meter(self.groups, shallow=("bench",)).start()
        deadline = time.monotonic() + self.args.duration
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        window, cpu, machine = meter.stop()
        load = method.Round("concurrent", 0, window, cpu=cpu, machine_cpu=machine, cores=os.cpu_count() or 1)
        return {"clients": len(client_tokens), "duration_s": self.args.duration, **counts,
                "requests_per_s": round(counts["ok"] / self.args.duration, 1), "first_errors": first_errors,
                "cpu_pct": load.cpu_pct(), "outside_share": round(load.outside_share, 3)}


def _line(r: method.Round, rule: method.Rule) -> str:
    cpu = " ".join(f"{k}={v}%" for k, v in r.cpu_pct().items() if v)
    return (f"round {r.index} {r.side:8s} {1000 * r.seconds:9.2f} ms/query x {r.extra['queries']:5d}  cpu: {cpu}  "
            f"outside {r.outside_share:.0%} of the machine{'  EXCLUDED' if rule.reason(r) else ''}")


# ---------------------------------------------------------------- the whole run
def run(args: argparse.Namespace) -> dict[str, Any]:
    rule = method.Rule(args.max_outside)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="trace-bench-qs-") as tmp:
        work = Path(tmp)
        pg_dir, pg_port, moto_port = work / "pg", procs.free_port(), procs.free_port()
        pg_pid = postgres.start(pg_dir, pg_port)  # Lite's settings: fsync on
        moto_proc = None
        service = None
        try:
            moto_proc = moto.start(moto_port, work / "moto.log")
            settings = settings_mod.load({}, home=work / "home", database_url=postgres.url(pg_port),
                                         aws_endpoint_url=moto.url(moto_port), query_timeout_s=120.0,
                                         query_inline_max_bytes=64 * 1024 * 1024)
            migrate.apply(settings.database_url or "")
            provision.provision(settings)
            published: dict[str, list[models.DatasetVersion]] = {}
            for workload in args.workloads:
                started = time.perf_counter()
                published[workload] = publish(settings, work, workload, args.rows, args.versions)
                _say(f"{workload}: published {args.rows} rows as {args.versions} versions "
                     f"in {time.perf_counter() - started:.1f}s")
            service = query_lite.start(settings)
            assert service.pid is not None
            groups = {"service": [service.pid], "postgres": [pg_pid], "moto": [moto_proc.pid], "bench": [os.getpid()]}
            bench = Bench(args, settings, service.url, groups, rule)
            load_before = os.getloadavg()
            _say(f"load average before the rounds: {load_before}")
            results: dict[str, Any] = {
                "rows": args.rows, "versions": args.versions, "repeat": args.repeat,
                "round_seconds": args.round_seconds, "rule": {"max_outside_share": rule.max_outside_share},
                "cpus": os.cpu_count(), "query_workers": settings.query_workers, "postgres": "Lite's (fsync on)",
                "load_before": load_before, "group_by": {}}
            for workload, versions in published.items():
                results["group_by"][workload] = bench.group_by(workload, versions)
                _say(f"{workload}: {results['group_by'][workload]['comparison']['summary']}")
            first = published[args.workloads[0]]
            results["trivial"] = bench.trivial(first)
            results["concurrent"] = bench.concurrent(first)
            results["load_after"] = os.getloadavg()
        finally:
            if service is not None and service.pid:
                procs.stop(service.pid)
            if moto_proc is not None:
                procs.stop(moto_proc.pid)
            postgres.destroy(pg_dir)
    results["bench_seconds"] = round(time.monotonic() - began)
    results["targets"] = targets(results, args.workloads[0])
    return results


def targets(results: dict[str, Any], first: str) -> dict[str, bool]:
    """The group-by within 1.2x of DuckDB's time (median pair ratio >= 1/1.2), cold trivial p50 < 30 ms,
    no error under concurrency. A figure with no counted pair does not meet its target."""
    median = results["group_by"][first]["comparison"]["summary"]["median"]
    return {
        "group_by_within_1.2x": median is not None and median >= 1 / 1.2,
        "trivial_cold_p50_under_30ms": results["trivial"]["cold"].get("p50_ms", float("inf")) < 30,
        "concurrent_zero_errors": results["concurrent"]["errors"] == 0,
    }


def report(results: dict[str, Any]) -> str:
    """The figures as Markdown: every comparison with every pair, the trivial query's latencies and phases."""
    lines = [("| comparison | median of pair ratios, DuckDB s / service s (min-max) | pairs counted / excluded | "
              "every pair ratio (round: ratio; * excluded) |"), "|---|---|---|---|"]
    comparisons = [(f"group-by `{w}` ({g['parquet_mb']} MB, {g['rows_back']} rows back)", g["comparison"])
                   for w, g in results["group_by"].items()]
    comparisons += [(f"trivial, gate {side}", results["trivial"][side]["comparison"]) for side in ("cold", "warm")]
    excluded = []
    for name, c in comparisons:
        s = c["summary"]
        figure = f"**{s['median']:.3f}x** ({s['min']:.3f}-{s['max']:.3f})" if s["median"] is not None else "none"
        every = ", ".join(f"{p['round']}: {p['ratio']:.3f}{'*' if p['excluded'] else ''}" for p in c["pairs"])
        lines.append(f"| {name} | {figure} | {s['n']} / {s['excluded']} | {every} |")
        excluded += [f"- {name}, round {p['round']}: {'; '.join(p['excluded'])}" for p in c["pairs"] if p["excluded"]]
    lines += ["", *(["Excluded pairs:", *excluded] if excluded else ["Excluded pairs: none"]), ""]
    t = results["trivial"]
    lines += ["| trivial query | p50 ms | p95 ms | requests | gate ms (p50) | service's own work ms (p50) |",
              "|---|---|---|---|---|---|"]
    for side in ("cold", "warm"):
        phases = t[side].get("phases_p50_ms", {})
        lines.append(f"| service, gate {side} | {t[side].get('p50_ms')} | {t[side].get('p95_ms')} | "
                     f"{t[side]['requests']} | {phases.get('gate')} | {phases.get('service_overhead_ms')} |")
    d = t["duckdb"]
    lines.append(f"| plain DuckDB | {d['p50_ms']} | {d['p95_ms']} | {d['queries']} | | |")
    c = results["concurrent"]
    lines += ["", (f"Concurrent: {c['clients']} users for {c['duration_s']} s: {c['ok']} answered "
                   f"({c['requests_per_s']}/s), {c['errors']} errors; outside load {c['outside_share']:.0%} of the "
                   "machine."), f"Targets: {results['targets']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.query_service", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=9, help="rounds: pairs per comparison")
    parser.add_argument("--round-seconds", type=float, default=2.0,
                        help="each round runs its side's query repeatedly for at least this long")
    parser.add_argument("--max-outside", type=float, default=method.Rule().max_outside_share,
                        help="exclude a round whose CPU outside the measured processes exceeds this share of the "
                             "machine (0-1)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=["reference", "compact"],
                        help="the first one decides the target; trivial and concurrent run on it")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        method.Rule(args.max_outside)
    except ValueError as exc:
        parser.error(f"--max-outside: {exc}")
    for name in ("repeat", "clients", "versions"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected at least 1, got {getattr(args, name)}")
    if args.round_seconds <= 0 or args.duration <= 0:
        parser.error("--round-seconds and --duration must be positive")
    if args.rows < 100 * args.versions:
        parser.error(f"--rows: at least 100 rows per version ({100 * args.versions}), got {args.rows}")
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(report(results))
    return 0 if all(results["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
