"""The Trace CDK app: ``cdk synth`` / ``cdk deploy`` run this (see cdk.json and docs/deploy.md).

Synthesis is offline: no AWS calls, no lookups, no Docker. The stage comes from
context (``-c trace:stage=prod``). Deploying needs the full Lambda layer
(``scripts/build_lambda_assets.sh``); without it the app synthesizes with a
trace_core-only layer and the template refuses deployment (``trace_cdk.layer``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aws_cdk as cdk
from trace_cdk import stack
from trace_core import errors


def main() -> None:
    app = cdk.App()
    try:
        stack.build(app)
    except errors.TraceError as exc:
        fix = exc.details.get("fix")
        print(f"error: {exc.message}" + (f"\n  fix: {fix}" if fix else ""), file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()
