"""The CDK app and the Lite host agree with the platform declaration (trace_core.platform).

Every declared function is deployed with its trigger (HTTP routes, schedule, SQS event
source with its batch size and partial batch responses), its timeout and exactly the
settings it declares; every queue with its DLQ and receive limit; every bucket; every
service with its command and worker pool. The Lite host's table comes from the same
declaration. And a new function or queue is one entry: a derived declaration grows
both CDK's functions and the Lite host's table.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from trace_cdk import names
from trace_core import platform
from trace_core import settings as settings_mod
from trace_core.lite import host

from tests.infra.conftest import REPO, STAND_IN, AssetDirs, Synthesized, cdk_context

PLATFORM = platform.PLATFORM


def function_props(synth: Synthesized) -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (logical id, properties) of the declared functions as synthesized."""
    return {
        name: (synth.logical_id(fn), synth.resources[synth.logical_id(fn)]["Properties"])
        for name, fn in synth.stack.functions.functions.items()
    }


def trace_variables(env: dict[str, Any]) -> set[str]:
    return {key for key in env if key.startswith("TRACE_")}


def declared_trace_variables(names_: tuple[str, ...]) -> set[str]:
    """The TRACE_* variables of declared settings (the standard AWS_* ones come from the runtime) and the name."""
    found = {settings_mod.variable(n) for n in names_}
    return {v for v in found if v.startswith("TRACE_")} | {settings_mod.DEPLOYABLE_VARIABLE}


def test_every_declared_function_is_deployed_with_its_timeout_and_handler(synthesized: Synthesized) -> None:
    functions = function_props(synthesized)
    assert list(functions) == list(PLATFORM.functions)
    for name, (logical_id, props) in functions.items():
        declared = PLATFORM.functions[name]
        assert logical_id == names.function_id(name)
        assert (props["Timeout"], props["Handler"]) == (declared.timeout_seconds, declared.handler), name


def test_each_function_environment_holds_exactly_its_declared_settings(synthesized: Synthesized) -> None:
    for name, (_, props) in function_props(synthesized).items():
        env = props["Environment"]["Variables"]
        assert trace_variables(env) == declared_trace_variables(PLATFORM.functions[name].settings), name
        assert env[settings_mod.DEPLOYABLE_VARIABLE] == name


def test_each_service_environment_holds_only_its_declared_settings(synthesized: Synthesized) -> None:
    for name, service in synthesized.stack.services.services.items():
        task = synthesized.resources[synthesized.logical_id(service.task_definition)]
        (container,) = task["Properties"]["ContainerDefinitions"]
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert trace_variables(env) <= declared_trace_variables(PLATFORM.services[name].settings), name
        assert env[settings_mod.DEPLOYABLE_VARIABLE] == name
        # AND it starts: its environment validates as its own settings
        loaded = settings_mod.load({k: v for k, v in env.items() if isinstance(v, str)})
        assert loaded.deployable == name and loaded.profile == "aws"


def test_schedules_are_the_declared_ones(synthesized: Synthesized) -> None:
    ids = {logical_id: name for name, (logical_id, _) in function_props(synthesized).items()}
    found = {}
    for rule in synthesized.of_type("AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            found[ids[target["Arn"]["Fn::GetAtt"][0]]] = rule["Properties"]["ScheduleExpression"]
    assert found == {
        name: f"rate({s.every_minutes} minute{'s' if s.every_minutes > 1 else ''})"
        for name, s in PLATFORM.scheduled().items()
    }


def test_queue_sources_are_the_declared_ones(synthesized: Synthesized) -> None:
    ids = {logical_id: name for name, (logical_id, _) in function_props(synthesized).items()}
    found = {}
    for mapping in synthesized.of_type("AWS::Lambda::EventSourceMapping").values():
        props = mapping["Properties"]
        queue_id = props["EventSourceArn"]["Fn::GetAtt"][0]
        queue = synthesized.resources[queue_id]["Properties"]["QueueName"]
        found[ids[props["FunctionName"]["Ref"]]] = platform.QueueSource(
            queue,
            batch_size=props["BatchSize"],
            max_batching_window_seconds=props["MaximumBatchingWindowInSeconds"],
            max_concurrency=props["ScalingConfig"]["MaximumConcurrency"],
            partial_batch_response=props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"],
        )
    assert found == dict(PLATFORM.queue_sources())


def test_http_routes_are_the_declared_ones(synthesized: Synthesized) -> None:
    found = {
        r["Properties"]["RouteKey"]: r["Properties"]["AuthorizationType"]
        for r in synthesized.of_type("AWS::ApiGatewayV2::Route").values()
    }
    declared = [*(r for t in PLATFORM.http_functions().values() for r in t.routes),
                *(r for s in PLATFORM.services.values() for r in s.routes)]
    assert found == {f"{r.method} {r.path}": "AWS_IAM" if r.auth == "iam" else "NONE" for r in declared}


def test_every_queue_has_its_dlq_and_receive_limit(synthesized: Synthesized) -> None:
    queues = {q["Properties"]["QueueName"]: (lid, q["Properties"]) for lid, q in
              synthesized.of_type("AWS::SQS::Queue").items()}
    assert set(queues) == {n for q in PLATFORM.queues.values() for n in (q.name, q.dlq)}
    for queue in PLATFORM.queues.values():
        dlq_id, _ = queues[queue.dlq]
        assert queues[queue.name][1]["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": queue.max_receives,
        }


def test_buckets_are_the_declared_ones_and_reach_the_deployables(synthesized: Synthesized) -> None:
    data = synthesized.stack.data
    assert set(data.buckets) == set(PLATFORM.buckets)
    worker = synthesized.stack.services.services["worker"].task_definition
    (container,) = synthesized.resources[synthesized.logical_id(worker)]["Properties"]["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    for key in PLATFORM.services["worker"].buckets:
        bucket = PLATFORM.buckets[key]
        assert env[settings_mod.variable(bucket.setting)] == {"Ref": synthesized.logical_id(data.buckets[key])}


def test_services_run_their_declared_command_and_pool(synthesized: Synthesized) -> None:
    services = synthesized.stack.services.services
    assert list(services) == list(PLATFORM.services)
    for name, service in services.items():
        declared = PLATFORM.services[name]
        task = synthesized.resources[synthesized.logical_id(service.task_definition)]
        (container,) = task["Properties"]["ContainerDefinitions"]
        assert container["Command"] == list(declared.command), name
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        if declared.pool is not None:
            assert env["TRACE_WORKER_POOL"] == declared.pool, name  # its queue: test_iam


def test_the_lite_host_and_provisioning_agree_with_the_declaration() -> None:
    from trace_core.lite import provision

    lite = settings_mod.load({"TRACE_DATABASE_URL": "postgresql://x", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    spec = host.default_spec(lite)
    assert set(spec.function_names) == set(PLATFORM.functions)
    assert {s.function for s in spec.schedules} == set(PLATFORM.scheduled())
    assert {(t.function, t.queue, t.batch_size) for t in spec.queue_triggers} == {
        (n, s.queue, s.batch_size) for n, s in PLATFORM.queue_sources().items()}
    assert {spec.api_function} == set(PLATFORM.http_functions())
    # each function gets the same settings as on AWS (those of them Lite has a value for)
    for name, own in spec.settings.items():
        env = settings_mod.environment(lite, name)
        assert trace_variables(env) <= declared_trace_variables(PLATFORM.functions[name].settings), name
        assert own.deployable == name
    assert {n: q.max_receives for n, q in PLATFORM.queues.items()} == provision.QUEUES
    assert provision.buckets(lite) == [getattr(lite, b.setting) for b in PLATFORM.buckets.values()]


# ---------------------------------------------------------------- one edit: a derived declaration


@pytest.fixture(scope="module")
def grown() -> platform.Platform:
    """The declaration plus one queue and the function it feeds."""
    return PLATFORM.extended(
        queues=[platform.Queue("trace-alerts", max_receives=4)],
        functions=[platform.Function(
            "alerts", "Alerts: evaluates rules", 30, platform.QueueSource("trace-alerts", batch_size=5),
            ("profile", "database_url", "database_secret_arn", "db_pool_max"),
        )],
    )


def test_a_new_function_and_queue_are_deployed_and_hosted_from_one_entry(
    grown: platform.Platform, asset_dirs: AssetDirs, tmp_path: Path
) -> None:
    import aws_cdk as cdk
    from aws_cdk import assertions
    from trace_cdk import config, data, functions, network, queues

    # GIVEN the function folders with a handler for the new function
    root = tmp_path / "functions"
    shutil.copytree(asset_dirs.functions, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "alerts").mkdir()
    (root / "alerts" / "handler.py").write_text(STAND_IN)
    # WHEN the queues and functions are built from the derived declaration
    stage = config.stage_config(cdk_context()["trace:stages"], "dev")
    app = cdk.App(outdir=str(tmp_path / "cdk.out"), context=cdk_context())  # cdk.json's feature flags
    stack = cdk.Stack(app, "Grown", env=cdk.Environment(region=stage.region))
    net = network.Network(stack, names.NETWORK, stage=stage)
    state = data.Data(stack, names.DATA, stage=stage, net=net)
    built_queues = queues.Queues(stack, names.QUEUES, visibility=functions.visibility(grown), declared=grown)
    built = functions.Functions(
        stack, names.FUNCTIONS, stage=stage, assets=config.Assets(layer_dir=asset_dirs.layer, functions_dir=root),
        net=net, data=state, queues=built_queues, declared=grown,
    )
    template = assertions.Template.from_stack(stack)
    # THEN CDK has one more function, fed by the new queue (with its DLQ) in batches of 5
    assert list(built.functions) == [*PLATFORM.functions, "alerts"]
    template.resource_count_is("AWS::Lambda::EventSourceMapping", len(PLATFORM.queue_sources()) + 1)
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {"BatchSize": 5})
    template.has_resource_properties("AWS::SQS::Queue", {"QueueName": "trace-alerts-dlq"})
    template.has_resource_properties("AWS::SQS::Queue", {
        "QueueName": "trace-alerts", "RedrivePolicy": assertions.Match.object_like({"maxReceiveCount": 4}),
        "VisibilityTimeout": 6 * 30,
    })
    template.has_resource_properties("AWS::Lambda::Function", {
        "Environment": {"Variables": assertions.Match.object_like({"TRACE_DEPLOYABLE": "alerts"})},
    })
    # AND the Lite host's table grows by the same function on the same queue
    lite = settings_mod.load({"TRACE_DATABASE_URL": "postgresql://x"})
    spec = host.default_spec(lite, grown)
    assert len(spec.function_names) == len(host.default_spec(lite).function_names) + 1
    assert ("trace-alerts", "alerts", 5) in {(t.queue, t.function, t.batch_size) for t in spec.queue_triggers}


def test_the_repository_has_a_handler_for_every_declared_function() -> None:
    for name in PLATFORM.functions:
        assert (REPO / "functions" / name / "handler.py").is_file(), name
