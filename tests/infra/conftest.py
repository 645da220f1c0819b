"""Infrastructure tests: the CDK app synthesized once per session, offline, with cdk-nag on.

Test-time assets (documented, never deployed):
- the layer is ``trace_core`` alone, built by ``trace_cdk.assets.build(deps=False)``
  (no network during ``make test``); synthesis only hashes the folder;
- the function folders are the real ``functions/<name>``; a missing handler is
  replaced by a stand-in in a temporary copy (so the other checks still
  synthesize), and ``test_functions.py::test_handler_source`` fails, naming it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CDK_DIR = REPO / "cdk"
if str(CDK_DIR) not in sys.path:
    sys.path.insert(0, str(CDK_DIR))
# Node 20 works with jsii; only the banner is silenced.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

STAND_IN = (
    '"""Test-time stand-in: the real handler is not written yet."""\n\n\n'
    "def lambda_handler(event, context):\n    return {}\n"
)


@dataclasses.dataclass(frozen=True)
class AssetDirs:
    layer: Path
    functions: Path
    missing_handlers: tuple[str, ...]


@dataclasses.dataclass
class Synthesized:
    stack: Any  # trace_cdk.stack.TraceStack
    template: Any  # aws_cdk.assertions.Template
    resources: dict[str, dict[str, Any]]
    outdir: Path
    stage: Any  # trace_cdk.config.StageConfig

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def logical_id(self, construct: Any) -> str:
        # The element's own id honours override_logical_id (stack.get_logical_id would not).
        return self.stack.resolve(construct.node.default_child.logical_id)


def cdk_context() -> dict[str, Any]:
    """The context of cdk.json: feature flags and stages, as the CLI would pass them."""
    return json.loads((REPO / "cdk.json").read_text())["context"]


@pytest.fixture(scope="session")
def asset_dirs(tmp_path_factory: pytest.TempPathFactory) -> AssetDirs:
    from trace_cdk import assets, names

    root = tmp_path_factory.mktemp("assets")
    layer = assets.build(root / "build", deps=False)
    missing = tuple(f for f in names.FUNCTION_FOLDERS if not (REPO / "functions" / f / "handler.py").is_file())
    functions = REPO / "functions"
    if missing:
        functions = root / "functions"
        for folder in names.FUNCTION_FOLDERS:
            target = functions / folder
            if folder in missing:
                target.mkdir(parents=True)
                (target / "handler.py").write_text(STAND_IN)
            else:
                shutil.copytree(REPO / "functions" / folder, target, ignore=shutil.ignore_patterns("__pycache__"))
    return AssetDirs(layer=layer, functions=functions, missing_handlers=missing)


def _violations(outdir: Path) -> str:
    report = outdir / "validation-report.json"
    if not report.exists():
        return "(no validation report)"
    lines = []
    for plugin in json.loads(report.read_text()).get("pluginReports", []):
        for violation in plugin.get("violations", []):
            paths = [c.get("constructPath") for c in violation.get("violatingConstructs", [])]
            lines.append(f"{violation['ruleName']}: {violation['description']} at {paths}")
    return "\n".join(lines)


@pytest.fixture(scope="session")
def synthesized(asset_dirs: AssetDirs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    """The dev stage of cdk.json, synthesized with cdk-nag; a finding fails every test that uses it."""
    import aws_cdk as cdk
    from aws_cdk import assertions
    from trace_cdk import config
    from trace_cdk import stack as stack_mod

    outdir = tmp_path_factory.mktemp("cdk") / "cdk.out"
    context = cdk_context() | {
        "trace:layerDir": str(asset_dirs.layer),
        "trace:functionsDir": str(asset_dirs.functions),
    }
    app = cdk.App(outdir=str(outdir), context=context)
    stack = stack_mod.build(app)
    try:
        app.synth()
    except RuntimeError as exc:  # jsii raises RuntimeError("ValidationFailed ...")
        pytest.fail(f"cdk synth failed: {exc}\n{_violations(outdir)}", pytrace=False)
    template = assertions.Template.from_stack(stack)
    yield Synthesized(
        stack=stack,
        template=template,
        resources=template.to_json()["Resources"],
        outdir=outdir,
        stage=config.from_context(app.node.try_get_context)[0],
    )
