"""docs/deploy.md steps 3 and 10 as written: `cdk synth` on a clone with no layer built, then what
`sam local invoke` would run for every function the guide names, resolved by SAM CLI's own code.

SAM CLI lives in `.venv-sam` (its pins are not the platform's; `make install` builds it):
tests/infra/sam_resolve.py runs there, in a subprocess.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from trace_cdk import layer, names
from trace_core import settings as settings_mod
from trace_core.lite import postgres

from tests.infra.conftest import REPO
from tests.infra.test_cli_synth import CDK, offline_environment

DOC = (REPO / "docs" / "deploy.md").read_text()
SAM_PYTHON = REPO / ".venv-sam" / "bin" / "python"
RESOLVER = Path(__file__).with_name("sam_resolve.py")
INVOKE = re.compile(r"^\$SAM local invoke -t cdk\.out/Trace-\$STAGE\.template\.json (\w+) -e (\S+) (.*)$", re.MULTILINE)


def _shell_variable(name: str) -> str:
    """The value the guide assigns to ``name`` (``NAME=value`` or ``NAME="value"``), unexpanded."""
    match = re.search(rf"^{name}=(\"[^\"]*\"|\S+)", DOC, re.MULTILINE)
    assert match, f"docs/deploy.md no longer sets {name}"
    return match[1].strip('"')


def _env_vars_file() -> tuple[str, dict[str, Any]]:
    """The path and JSON of the --env-vars file the guide writes with a heredoc."""
    match = re.search(r"^cat > (\S+) <<'EOF'\n(.*?)\nEOF$", DOC, re.MULTILINE | re.DOTALL)
    assert match, "docs/deploy.md no longer writes the --env-vars file"
    return match[1], json.loads(match[2])


@dataclass
class GuideSynth:
    result: subprocess.CompletedProcess[str]
    template: Path
    build_dir: Path


@pytest.fixture(scope="module")
def guide_synth(tmp_path_factory: pytest.TempPathFactory) -> GuideSynth:
    """Step 3's `$CDK synth $CTX --quiet` run by bash with the guide's variables, offline, ACCOUNT empty.

    Only where it writes differs: --output and trace:buildDir point at an empty temporary
    folder, which is what a fresh clone has (no build/layer).
    """
    assert CDK.exists() and shutil.which("node"), "the CDK CLI is missing: run `make install`"
    assert re.search(r"^\$CDK synth \$CTX --quiet\b", DOC, re.MULTILINE), "step 3's synth command changed"
    root = tmp_path_factory.mktemp("guide")
    out, build = root / "cdk.out", root / "build"
    script = "\n".join([
        f"CDK={REPO / _shell_variable('CDK')}",
        "ACCOUNT=",
        f"STAGE={_shell_variable('STAGE')}",
        f'CTX="{_shell_variable("CTX")}"',
        f'$CDK synth $CTX --quiet --output "{out}" -c trace:buildDir="{build}"',
    ])
    result = subprocess.run(["bash", "-c", script], cwd=REPO, env=offline_environment(), capture_output=True,
                            text=True, timeout=240, check=False)
    return GuideSynth(result, out / f"Trace-{_shell_variable('STAGE')}.template.json", build)


def test_cdk_synth_works_on_a_fresh_clone_and_the_template_refuses_deployment(guide_synth: GuideSynth) -> None:
    # GIVEN no layer built and no AWS account  WHEN step 3 runs as written
    result = guide_synth.result
    # THEN it succeeds, having built the trace_core-only layer itself, and says what a deployment needs
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (guide_synth.build_dir / layer.SYNTH_ONLY / "layer" / "python" / "trace_core" / "__init__.py").is_file()
    assert "trace_core-only layer" in result.stderr and "scripts/build_lambda_assets.sh" in result.stderr
    # AND CloudFormation would reject that template before changing anything
    template = json.loads(guide_synth.template.read_text())
    (assertion,) = template["Rules"][layer.RULE]["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": layer.PARAMETER}, layer.DEPLOYABLE]}
    assert template["Parameters"][layer.PARAMETER]["Default"] != layer.DEPLOYABLE
    assert "scripts/build_lambda_assets.sh" in assertion["AssertDescription"]


def _resolve(template: Path, env_file: Path, functions: list[str]) -> dict[str, Any]:
    assert SAM_PYTHON.exists(), f"{SAM_PYTHON} is missing: `make install` builds the SAM CLI's environment"
    result = subprocess.run([str(SAM_PYTHON), str(RESOLVER), str(template), str(env_file), *functions],
                            env={**offline_environment(), "SAM_CLI_TELEMETRY": "0"}, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_sam_resolves_every_function_the_guide_names(guide_synth: GuideSynth, tmp_path: Path) -> None:
    assert guide_synth.result.returncode == 0, guide_synth.result.stderr[-3000:]
    # GIVEN the functions the guide says SAM finds by name, and the ones it invokes
    listed = re.search(r"SAM finds it\s+by that name: (.*?)\(", DOC, re.DOTALL)
    assert listed, "docs/deploy.md step 10 no longer lists the function names"
    named = re.findall(r"`(\w+)`", listed[1])
    assert set(named) == {names.function_id(f) for f in names.FUNCTION_FOLDERS} | {names.SCHEMA_MIGRATIONS}
    invoked = INVOKE.findall(DOC)
    assert invoked and {fn for fn, _, _ in invoked} <= set(named)
    env_path, env_json = _env_vars_file()
    env_file = tmp_path / "sam-env.json"
    env_file.write_text(json.dumps(env_json))
    # WHEN SAM CLI's resolver looks each one up in the synthesized template
    found = _resolve(guide_synth.template, env_file, named)
    # THEN each is that function, with its handler, code and the trace_core layer from cdk.out
    for name in named:
        function = found[name]
        assert function, f"sam local invoke would not find {name}"
        assert function["logical_id"] == name
        assert (function["handler"], function["runtime"]) == (names.HANDLER, "python3.12")
        assert (Path(function["code"]) / "handler.py").is_file(), name
        (layer_dir,) = function["layers"]
        assert (Path(layer_dir) / "python" / "trace_core" / "__init__.py").is_file(), name
    # AND every command invokes it with an existing event and the file the guide wrote
    for _name, event, rest in invoked:
        assert (REPO / event).is_file(), event
        assert f"--env-vars {env_path}" in rest and "--docker-network host" in rest, rest


def test_the_guides_env_vars_reach_lite_postgres(guide_synth: GuideSynth, tmp_path: Path) -> None:
    assert guide_synth.result.returncode == 0, guide_synth.result.stderr[-3000:]
    # GIVEN the guide's --env-vars file and the port it starts Lite's Postgres on
    _, env_json = _env_vars_file()
    overrides = env_json["Parameters"]
    port = re.search(r"^TRACE_POSTGRES_PORT=(\d+) trace-lite up$", DOC, re.MULTILINE)
    assert port, "docs/deploy.md step 10 no longer fixes Lite's Postgres port"
    env_file = tmp_path / "sam-env.json"
    env_file.write_text(json.dumps(env_json))
    invoked = sorted({fn for fn, _, _ in INVOKE.findall(DOC)})
    # WHEN SAM builds each invoked function's environment from the template and that file
    found = _resolve(guide_synth.template, env_file, invoked)
    for name in invoked:
        function = found[name]
        # THEN every override is one the template declares (SAM drops the others silently) and applies
        assert set(overrides) <= set(function["declared"]), set(overrides) - set(function["declared"])
        environment = function["environment"]
        assert {key: environment[key] for key in overrides} == overrides
        # AND the database URL is the one Lite's Postgres serves on that port (host network: its loopback)
        assert environment["TRACE_DATABASE_URL"] == postgres.url(int(port[1]))
        # AND trace_core accepts the whole environment, with Lite's default queue driver
        settings = settings_mod.load(
            {k: v for k, v in environment.items() if k.startswith("TRACE_")}, home=tmp_path / "home"
        )
        assert settings.queue_driver == settings_mod.Settings.model_fields["queue_driver"].default
        assert not settings.database_secret_arn
