"""Lambda: the layer, timeouts, log retention, the environment contract, triggers, deployable handlers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from trace_cdk import environment, names
from trace_core import platform
from trace_core import settings as settings_mod

from tests.infra.conftest import REPO, AssetDirs, Synthesized

# Modules a handler may import: the standard library, trace_core, the layer, the Lambda runtime.
LAYER_MODULES = {
    "pydantic", "pydantic_settings", "psycopg", "psycopg_pool", "aws_lambda_powertools", "jwt", "sqlglot", "yaml",
    "httpx", "eth_abi", "eth_hash", "aws_xray_sdk", "wrapt", "trace_core", "boto3", "botocore",
}
# Installed for Lite or Fargate, absent from the layer: a handler that needs one fails at cold start.
NOT_IN_LAYER = ("duckdb", "pyarrow", "cryo", "typer", "rich", "pgserver", "moto", "matplotlib", "fastapi", "uvicorn")
FRAMEWORK_HANDLERS = {"index.handler", "framework.onEvent", "__entrypoint__.handler"}


def platform_functions(synth: Synthesized) -> dict[str, tuple[str, dict[str, Any]]]:
    """folder -> (logical id, properties) of the functions built from functions/<folder>."""
    return {
        folder: (synth.logical_id(fn), synth.resources[synth.logical_id(fn)]["Properties"])
        for folder, fn in synth.stack.functions.functions.items()
    }


def test_every_platform_function_has_the_layer_python_312_and_a_timeout(synthesized: Synthesized) -> None:
    layer_id = synthesized.logical_id(synthesized.stack.functions.layer)
    functions = platform_functions(synthesized)
    assert set(functions) == set(names.FUNCTION_FOLDERS)
    for folder, (_logical_id, props) in functions.items():
        assert props["Layers"] == [{"Ref": layer_id}], folder
        assert props["Runtime"] == "python3.12" and props["Architectures"] == ["x86_64"], folder
        assert props["Handler"] == names.HANDLER, folder
        assert 1 <= props["Timeout"] <= 60, folder
    assert functions["dispatcher_api"][1]["Timeout"] < 30  # the HTTP API's integration limit


def test_every_lambda_logs_to_a_group_with_the_stage_retention(synthesized: Synthesized) -> None:
    # GIVEN every Lambda function in the template, the platform's and the CDK frameworks' alike
    lambdas = synthesized.of_type("AWS::Lambda::Function")
    assert lambdas
    for logical_id, fn in lambdas.items():
        # THEN each names its log group, and that group expires after the stage's retention
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert synthesized.resources[group]["Properties"]["RetentionInDays"] == synthesized.stage.log_retention_days, (
            logical_id
        )


def test_the_only_other_lambdas_are_cdk_framework_handlers(synthesized: Synthesized) -> None:
    platform = {lid for lid, _ in platform_functions(synthesized).values()}
    others = {
        lid: fn["Properties"]["Handler"]
        for lid, fn in synthesized.of_type("AWS::Lambda::Function").items()
        if lid not in platform
    }
    migrations = [lid for lid, handler in others.items() if handler == names.HANDLER]
    assert len(migrations) == 1  # the schema migration handler (cdk/handlers/migrations), with the layer too
    assert synthesized.of_type("AWS::Lambda::Function")[migrations[0]]["Properties"]["Layers"]
    assert set(others.values()) - {names.HANDLER} <= FRAMEWORK_HANDLERS


def _settings_variables() -> set[str]:
    return {f"TRACE_{name.upper()}" for name in settings_mod.Settings.model_fields}


def environments(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """Environment of every platform Lambda and container, by name."""
    found = {folder: props["Environment"]["Variables"] for folder, (_, props) in platform_functions(synth).items()}
    for task in synth.of_type("AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            found[container["Name"]] = {e["Name"]: e["Value"] for e in container["Environment"]}
    return found


def test_every_trace_variable_is_a_setting_so_deployables_start(synthesized: Synthesized) -> None:
    # settings.load() refuses unknown TRACE_* variables: one typo here and a deployable never starts.
    known = _settings_variables()
    for name, env in environments(synthesized).items():
        unknown = {key for key in env if key.startswith("TRACE_")} - known
        assert not unknown, f"{name}: {unknown} are not fields of trace_core.settings.Settings"


def test_powertools_is_configured_by_environment(synthesized: Synthesized) -> None:
    for folder, (_, props) in platform_functions(synthesized).items():
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == names.service_name(folder)
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == names.METRICS_NAMESPACE
        assert env["POWERTOOLS_LOG_LEVEL"] == synthesized.stage.log_level
        assert env["TRACE_DB_POOL_MAX"] == environment.LAMBDA["db_pool_max"]
        if "queue_driver" in platform.PLATFORM.functions[folder].settings:
            assert env["TRACE_QUEUE_DRIVER"] == "sqs", folder


def test_every_deployable_runs_the_aws_profile(synthesized: Synthesized) -> None:
    # Lite (the default profile) refuses to build an AWS client without a local endpoint.
    for name, env in environments(synthesized).items():
        assert env["TRACE_PROFILE"] == "aws", name


def test_no_secret_is_in_an_environment_variable(synthesized: Synthesized) -> None:
    lambdas = set(platform_functions(synthesized))
    for name, env in environments(synthesized).items():
        assert "PGPASSWORD" not in env and "TRACE_RPC_URL" not in env, name
        url = synthesized.stack.resolve(env["TRACE_DATABASE_URL"])
        assert "password" not in str(url).lower(), name
        if name in lambdas:  # a Lambda reads the password from the secret itself (trace_core.db.conninfo)
            assert env["TRACE_DATABASE_SECRET_ARN"], name
        else:  # a container gets it as PGPASSWORD from ECS secrets, and must not fetch it again
            assert "TRACE_DATABASE_SECRET_ARN" not in env, name
    for task in synthesized.of_type("AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            assert "PGPASSWORD" in {secret["Name"] for secret in container.get("Secrets", [])}, container["Name"]


def test_the_sink_reports_partial_batch_failures(synthesized: Synthesized) -> None:
    (mapping,) = synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    sink_id, _ = platform_functions(synthesized)["sink"]
    queue_id = synthesized.logical_id(synthesized.stack.queues[platform.SINK_QUEUE])
    assert props["FunctionName"] == {"Ref": sink_id}
    assert props["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_scheduled_functions_run_every_minute(synthesized: Synthesized) -> None:
    functions = platform_functions(synthesized)
    targets = {}
    for rule in synthesized.of_type("AWS::Events::Rule").values():
        props = rule["Properties"]
        assert props["ScheduleExpression"] == "rate(1 minute)" and props["State"] == "ENABLED"
        for target in props["Targets"]:
            targets[target["Arn"]["Fn::GetAtt"][0]] = target["RetryPolicy"]["MaximumRetryAttempts"]
    scheduled = ("outbox_drainer", "lease_reaper", "chain_sync_planner")
    assert targets == {functions[folder][0]: 0 for folder in scheduled}


# ---------------------------------------------------------------- the handler sources others write


@pytest.mark.parametrize("folder", names.FUNCTION_FOLDERS)
def test_handler_source_is_deployable_with_the_layer(folder: str, asset_dirs: AssetDirs) -> None:
    assert folder not in asset_dirs.missing_handlers, f"functions/{folder}/handler.py is missing"
    handler = REPO / "functions" / folder / "handler.py"
    tree = ast.parse(handler.read_text(), filename=str(handler))
    # GIVEN the handler module: it defines lambda_handler
    assert any(isinstance(n, ast.FunctionDef) and n.name == "lambda_handler" for n in tree.body), handler
    # AND it imports only what the Lambda has: stdlib, trace_core, the layer, the runtime (not functions.*)
    imported = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and getattr(n, "level", 0) == 0
        for a in (n.names if isinstance(n, ast.Import) else [n])  # type: ignore[union-attr]
    }
    foreign = imported - LAYER_MODULES - set(sys.stdlib_module_names) - {"__future__"}
    assert not foreign, f"{handler} imports {foreign}: the layer does not have them"
    # AND names it gives Powertools in code agree with the environment the stack sets
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        for keyword in call.keywords:
            if keyword.arg == "service" and isinstance(keyword.value, ast.Constant):
                assert keyword.value.value == names.service_name(folder), f"{handler}: service={keyword.value.value!r}"
            if keyword.arg == "namespace" and isinstance(keyword.value, ast.Constant):
                assert keyword.value.value == names.METRICS_NAMESPACE, f"{handler}: namespace={keyword.value.value!r}"


@pytest.mark.parametrize("folder", names.FUNCTION_FOLDERS)
def test_handler_imports_without_fargate_only_packages(folder: str, asset_dirs: AssetDirs) -> None:
    assert folder not in asset_dirs.missing_handlers, f"functions/{folder}/handler.py is missing"
    # GIVEN a fresh interpreter where the packages the layer lacks cannot be imported
    blocker = "; ".join(f"sys.modules[{m!r}] = None" for m in NOT_IN_LAYER)
    code = f"import sys; {blocker}; sys.path.insert(0, {str(REPO / 'functions' / folder)!r}); import handler"
    # WHEN the handler module is imported as Lambda would (from its own folder, nothing read at import)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                            cwd=Path("/"))
    # THEN it imports: nothing on its import path needs duckdb, pyarrow, cryo or the Lite tools
    assert result.returncode == 0, result.stderr[-2000:]
