"""`cdk synth` through the real CDK CLI: offline, no credentials, no lookups, the production stage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.infra.conftest import REPO, AssetDirs
from tests.infra.test_cfn_lint import lint

CDK = REPO / "node_modules" / ".bin" / "cdk"


def offline_environment() -> dict[str, str]:
    """No AWS credentials, no instance metadata, no telemetry: whatever synth needs must be local."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(AWS_EC2_METADATA_DISABLED="true", CDK_DISABLE_CLI_TELEMETRY="true",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return env


@pytest.mark.skipif(not CDK.exists() or not shutil.which("node"), reason="the CDK CLI needs `npm ci` (make install)")
def test_cdk_synth_of_the_prod_stage_works_offline(asset_dirs: AssetDirs, tmp_path: Path) -> None:
    # GIVEN the CLI, the repo's cdk.json, and no AWS credentials at all
    out = tmp_path / "cdk.out"
    command = [
        str(CDK), "synth", "--quiet", "--no-notices", "--no-version-reporting", "--output", str(out),
        "-c", "trace:stage=prod",
        "-c", f"trace:layerDir={asset_dirs.layer}",
        "-c", f"trace:functionsDir={asset_dirs.functions}",
    ]
    # WHEN the production stage is synthesized
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=offline_environment(), capture_output=True, text=True,
                            timeout=240, check=False)
    # THEN it succeeds (cdk-nag included), quickly, without asking for context it would have to look up
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert time.monotonic() - started < 180
    manifest = json.loads((out / "manifest.json").read_text())
    assert "missing" not in manifest, manifest.get("missing")
    template = out / "Trace-prod.template.json"
    resources = json.loads(template.read_text())["Resources"]
    (db,) = [r for r in resources.values() if r["Type"] == "AWS::RDS::DBInstance"]
    assert db["Properties"]["MultiAZ"] is True and db["Properties"]["DeletionProtection"] is True
    # AND cfn-lint passes on it too
    linted = lint(template)
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.skipif(not CDK.exists() or not shutil.which("node"), reason="the CDK CLI needs `npm ci` (make install)")
def test_cdk_synth_without_a_built_layer_says_how_to_build_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "--output", str(tmp_path / "out"),
         "-c", f"trace:layerDir={tmp_path / 'nowhere'}"],
        cwd=REPO, env=offline_environment(), capture_output=True, text=True, timeout=240, check=False,
    )
    assert result.returncode != 0
    assert "the trace_core layer is not built" in result.stderr
    assert "scripts/build_lambda_assets.sh" in result.stderr
