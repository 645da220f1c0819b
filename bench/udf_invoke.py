"""User functions through the Lite sandbox against the same handler run bare, per runtime (issue 17).

Side by side in one run, on the shared method (``bench/method.py``: paired rounds, the order alternating,
rounds with more than 10% of the machine busy elsewhere excluded with their pair):

- **cold start**: one invocation of a trivial handler on a new instance (bubblewrap, namespaces, seccomp,
  the Runtime API over a Unix socket) against the bare spawn of the same handler: ``python -c`` importing
  and calling it, ``node -e`` requiring and calling it, the Rust ``bootstrap`` spawned with no sandbox and
  served one invocation. Ratio = bare / sandboxed (target: at least 1 / 1.3 = 0.77).
- **warm**: invocations on a warm instance against calling the handler in-process (p50, p99; target: warm
  p50 under 5 ms).
- **1,000 rows** in and out of a Python handler, warm (target: p50 under 20 ms).
- **invocations per second** with 1 and 2 concurrent instances (warm, trivial handler).

    flock /tmp/trace-cpu.lock .venv/bin/python -m bench.udf_invoke [--rounds 5] [--cold 20] [--warm 200]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trace_core.udf import invoker as invoker_mod
from trace_core.udf import runtime_api, sandbox

from bench import method

ROOT = Path(__file__).resolve().parents[1]
RUST_TEMPLATE = ROOT / "runtimes" / "rust-bootstrap"
PY_HANDLER = "def handler(event, context):\n    return {'ok': True, 'rows': event.get('rows', [])}\n"
NODE_HANDLER = "exports.handler = async (event) => ({ ok: true, rows: event.rows || [] });\n"


def make_bundles(work: Path) -> dict[str, tuple[Path, sandbox.FunctionSpec]]:
    bundles: dict[str, tuple[Path, sandbox.FunctionSpec]] = {}
    python = work / "python"
    python.mkdir()
    (python / "main.py").write_text(PY_HANDLER)
    bundles["python"] = (python, sandbox.FunctionSpec("python3.12", "main.handler", "bench-python", 1, 256))
    node = work / "node"
    node.mkdir()
    (node / "index.js").write_text(NODE_HANDLER)
    bundles["node"] = (node, sandbox.FunctionSpec("nodejs22", "index.handler", "bench-node", 1, 256))
    if shutil.which("cargo"):
        target = work / "cargo-target"
        subprocess.run(["cargo", "build", "--release", "--offline", "--quiet"], cwd=RUST_TEMPLATE, check=True,
                       env={**os.environ, "CARGO_TARGET_DIR": str(target)})
        rust = work / "rust"
        rust.mkdir()
        shutil.copy(target / "release" / "bootstrap", rust / "bootstrap")
        os.chmod(rust / "bootstrap", 0o555)
        bundles["rust"] = (rust, sandbox.FunctionSpec("rust", "bootstrap", "bench-rust", 1, 128))
    return bundles


# ---------------------------------------------------------------- one operation of each side


def sandbox_cold(bundle: Path, spec: sandbox.FunctionSpec) -> float:
    runner = invoker_mod.LiteInvoker(idle_seconds=60.0)
    try:
        started = time.perf_counter()
        outcome = runner.invoke("cold", bundle, spec, {}, 10.0)
        elapsed = time.perf_counter() - started
    finally:
        runner.close()
    if not outcome.ok or (spec.runtime != "rust" and outcome.result.get("ok") is not True):
        raise RuntimeError(f"sandboxed {spec.runtime}: {outcome}")
    return elapsed


def bare_cold(runtime: str, bundle: Path, work: Path) -> float:
    if runtime == "python":
        code = (f"import sys, json; sys.path.insert(0, {str(bundle)!r}); import main; "
                "print(json.dumps(main.handler({}, None)))")
        argv = [sys.executable, "-c", code]
    elif runtime == "node":
        code = (f"require({str(bundle / 'index.js')!r}).handler({{}}, {{}})"
                ".then((r) => console.log(JSON.stringify(r)))")
        argv = ["node", "-e", code]
    else:
        return bare_rust(bundle, work)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or json.loads(done.stdout).get("ok") is not True:
        raise RuntimeError(f"bare {runtime}: {done.stderr}")
    return elapsed


def bare_rust(bundle: Path, work: Path) -> float:
    """The bootstrap spawned with no sandbox and served one invocation over the same Runtime API."""
    socket_dir = Path(tempfile.mkdtemp(dir=work))
    api = runtime_api.RuntimeApiServer(socket_dir / "runtime.sock", function_arn="arn:aws:lambda:local:0:function:b")
    try:
        started = time.perf_counter()
        proc = subprocess.Popen([str(bundle / "bootstrap")], env={"TRACE_RUNTIME_SOCKET": str(api.socket_path),
                                "AWS_LAMBDA_FUNCTION_NAME": "bench-rust"}, stdout=subprocess.DEVNULL)
        invocation = api.submit(b"{}", 10.0)
        invocation.done.wait(10.0)
        elapsed = time.perf_counter() - started
        proc.kill()
        proc.wait()
    finally:
        api.close()
        shutil.rmtree(socket_dir, ignore_errors=True)
    if invocation.outcome is None or not invocation.outcome.ok:
        raise RuntimeError(f"bare rust: {invocation.outcome}")
    return elapsed


# ---------------------------------------------------------------- rounds


def _processes() -> dict[int, tuple[int, int, float]]:
    """Every process: (parent, start time, CPU seconds so far)."""
    found: dict[int, tuple[int, int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / tick)
    return found


def _outside_cpu(before: dict[int, tuple[int, int, float]], after: dict[int, tuple[int, int, float]]) -> float:
    """CPU seconds of processes alive at both ends that are not this benchmark or its descendants.

    A sandbox's processes die inside their pid namespace and are never waited by us, so our own CPU cannot
    be read from ``os.times``; what others used meanwhile can be read instead (their processes that
    started and ended within the round are missed: an underestimate)."""
    ours = {os.getpid()}
    for pid, (parent, _, _) in sorted(after.items()):
        if parent in ours:
            ours.add(pid)
    return sum(cpu - before[pid][2] for pid, (_, start, cpu) in after.items()
               if pid not in ours and pid in before and before[pid][1] == start)


def timed_round(side: str, index: int, ops: int, op: Callable[[], float]) -> method.Round:
    before = _processes()
    machine = method.machine_cpu_seconds()
    started = time.perf_counter()
    samples = [op() for _ in range(ops)]
    window = time.perf_counter() - started
    machine_cpu = method.machine_cpu_seconds() - machine
    outside = _outside_cpu(before, _processes())
    return method.Round(side, index, statistics.median(samples), cpu={"bench": max(0.0, machine_cpu - outside)},
                        machine_cpu=machine_cpu, cores=os.cpu_count() or 1, window_s=window,
                        extra={"p99_ms": round(1000 * percentile(samples, 0.99), 2)})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def warm_latencies(runner: invoker_mod.LiteInvoker, bundle: Path, spec: sandbox.FunctionSpec, event: Any,
                   n: int) -> list[float]:
    runner.invoke("warm", bundle, spec, event, 10.0)  # start the instance
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        outcome = runner.invoke("warm", bundle, spec, event, 10.0)
        samples.append(time.perf_counter() - started)
        if not outcome.ok:
            raise RuntimeError(f"warm {spec.runtime}: {outcome}")
    return samples


def throughput(bundle: Path, spec: sandbox.FunctionSpec, concurrency: int, seconds: float = 2.0) -> float:
    runner = invoker_mod.LiteInvoker(idle_seconds=60.0)
    count = [0] * concurrency
    stop = time.perf_counter() + seconds

    def loop(slot: int) -> None:
        while time.perf_counter() < stop:
            if runner.invoke("tp", bundle, spec, {}, 10.0).ok:
                count[slot] += 1

    try:
        # start the instances: `concurrency` calls at once, so as many instances are warm before the clock runs
        warmups = [threading.Thread(target=runner.invoke, args=("tp", bundle, spec, {}, 10.0))
                   for _ in range(concurrency)]
        for thread in warmups:
            thread.start()
        for thread in warmups:
            thread.join()
        threads = [threading.Thread(target=loop, args=(slot,)) for slot in range(concurrency)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(count) / (time.perf_counter() - began)
    finally:
        runner.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold", type=int, default=20, help="cold starts per round")
    parser.add_argument("--warm", type=int, default=200, help="warm invocations per measurement")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rule = method.Rule()
    results: dict[str, Any] = {"cold": {}, "warm": {}, "throughput": {}}
    with tempfile.TemporaryDirectory(prefix="bench-udf-") as scratch:
        work = Path(scratch)
        bundles = make_bundles(work)
        for runtime, (bundle, spec) in bundles.items():
            rounds = []
            for index in range(args.rounds):
                for side in method.order(index, ["bare", "sandbox"]):
                    op = ((lambda b=bundle, s=spec: sandbox_cold(b, s)) if side == "sandbox"
                          else (lambda r=runtime, b=bundle: bare_cold(r, b, work)))
                    rounds.append(timed_round(side, index, args.cold, op))
                    print(f"{runtime} cold {side} round {index}: {1000 * rounds[-1].seconds:.1f} ms "
                          f"(outside {100 * rounds[-1].outside_share:.0f}%)", file=sys.stderr, flush=True)
            pairs = method.pair_rounds(rounds, "bare", "sandbox")
            results["cold"][runtime] = {"summary": method.summary(pairs, rule).as_dict(),
                                        "rounds": [r.as_dict() for r in rounds]}
            runner = invoker_mod.LiteInvoker(idle_seconds=60.0)
            try:
                warm = warm_latencies(runner, bundle, spec, {}, args.warm)
                rows = {"rows": [{"i": i, "hash": f"0x{i:064x}", "value": str(2**200 + i)} for i in range(1000)]}
                big = warm_latencies(runner, bundle, spec, rows, max(20, args.warm // 5)) if runtime == "python" else []
            finally:
                runner.close()
            results["warm"][runtime] = {
                "p50_ms": round(1000 * statistics.median(warm), 3), "p99_ms": round(1000 * percentile(warm, 0.99), 3),
                **({"rows_1000_p50_ms": round(1000 * statistics.median(big), 2),
                    "rows_1000_p99_ms": round(1000 * percentile(big, 0.99), 2)} if big else {})}
            results["throughput"][runtime] = {str(c): round(throughput(bundle, spec, c)) for c in (1, 2)}
        # the in-process reference for warm: the Python handler called in a loop
        namespace: dict[str, Any] = {}
        exec(PY_HANDLER, namespace)  # our own constant handler: the bare reference
        calls = []
        for _ in range(args.warm):
            started = time.perf_counter()
            namespace["handler"]({}, None)
            calls.append(time.perf_counter() - started)
        results["in_process_python_p50_us"] = round(1e6 * statistics.median(calls), 2)
    print(json.dumps({k: v for k, v in results.items() if k != "cold"}, indent=2))
    for runtime, data in results["cold"].items():
        print(f"cold start {runtime}: bare / sandbox {data['summary']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
