"""`trace-lite` starts fast: registering its commands imports none of the heavy libraries they use.

The test suite and every user run `trace-lite` as a fresh process; before each command runs, the CLI imports
every command module to register it. Those modules therefore import what a command needs inside the command
(a function-level import), never at module level. This runs in a subprocess so the modules the test session
has already imported do not hide a regression.
"""

from __future__ import annotations

import json
import subprocess
import sys

# Each module that must stay out of `import trace_core.cli.main`, and why it is heavy.
HEAVY: dict[str, str] = {
    "boto3": "AWS clients: ~0.3 s; only commands that touch S3/SQS/KMS need them (trace_core.aws)",
    "botocore": "boto3's core: most of that 0.3 s",
    "pyarrow": "Arrow tables: ~0.25 s; only `query`, `show-version` and the analytics read Parquet/Arrow",
    "numpy": "pulled in by pyarrow and the analytics",
    "sqlglot": "SQL parsing: ~0.25 s; the analytics and the Query Service",
    "duckdb": "the Query Service's engine; never needed by the CLI process",
    "httpx": "HTTP client: ~0.15 s; only commands that call the chain, the Query Service or a health check",
    "fastapi": "the Query Service's web app; runs in its own process",
    "uvicorn": "the Lite host's server; only `trace-lite host` runs it",
    "matplotlib": "charts: only `analytics run --plot/--report` and `demo` draw",
    "trace_core.analytics": "stored analytics (pydantic models, sqlglot, the Query Service client): ~0.5 s",
    "trace_core.chain.seeder": "the chain activity generator (eth_abi): ~0.15 s; only `chain seed` and `demo`",
    "trace_core.query.service": "the Query Service and its client (pyarrow, httpx)",
    "trace_core.lite.durability": "dataset recovery (boto3, chain sync): only `up`, `apply` and `status`",
    "trace_core.worker.serve": "the worker (boto3, Cryo, the chain client): only `worker` and `host`",
}

# Import the CLI and build every command the way a run does (typer evaluates each command's parameter
# annotations then), and report which heavy modules were imported.
SNIPPET = """
import json, sys
import typer
from trace_core.cli import main
typer.main.get_command(main.app)
heavy = json.loads(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))))
"""


def imported_heavy_modules() -> list[str]:
    done = subprocess.run([sys.executable, "-c", SNIPPET, json.dumps(sorted(HEAVY))], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_registering_the_commands_imports_no_heavy_module() -> None:
    found = imported_heavy_modules()
    roots = sorted({h for h in HEAVY for m in found if m == h or m.startswith(h + ".")})
    assert not roots, (
        "importing trace_core.cli.main imported "
        + "; ".join(f"{h} ({HEAVY[h]})" for h in roots)
        + ". Import it inside the command that uses it (see trace_core/cli/*.py); find the importer with "
        "`python -X importtime -c 'import trace_core.cli.main'`."
    )
