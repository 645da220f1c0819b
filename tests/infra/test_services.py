"""Fargate services and the HTTP API: commands, images, secrets, placement, routes and authorization."""

from __future__ import annotations

import json
import re
from typing import Any

from trace_cdk import services
from trace_core import platform

from tests.infra.conftest import REPO, Synthesized


def containers(synth: Synthesized) -> dict[str, dict[str, Any]]:
    found = {}
    for task in synth.of_type("AWS::ECS::TaskDefinition").values():
        (container,) = task["Properties"]["ContainerDefinitions"]
        found[container["Name"]] = container
    return found


def test_each_service_runs_its_entrypoint(synthesized: Synthesized) -> None:
    found = containers(synthesized)
    assert set(found) == {"Query", "Worker", "Delivery"}
    services = platform.PLATFORM.services
    assert found["Query"]["Command"] == list(services["query"].command)
    assert found["Worker"]["Command"] == found["Delivery"]["Command"] == ["python", "-m", "trace_core.worker"]
    env = {name: {e["Name"]: e["Value"] for e in c["Environment"]} for name, c in found.items()}
    assert (env["Worker"]["TRACE_WORKER_POOL"], env["Delivery"]["TRACE_WORKER_POOL"]) == ("chain", "delivery")
    query = synthesized.stage.query
    assert env["Query"]["TRACE_QUERY_PORT"] == str(query.port) and env["Query"]["TRACE_QUERY_HOST"] == "0.0.0.0"
    # the sandboxed DuckDB workers together stay within the task's memory
    assert int(env["Query"]["TRACE_QUERY_MEMORY_MB"]) * int(env["Query"]["TRACE_QUERY_WORKERS"]) < query.memory_mib
    assert found["Query"]["PortMappings"][0]["ContainerPort"] == synthesized.stage.query.port


def test_secrets_reach_containers_only_through_ecs_secrets(synthesized: Synthesized) -> None:
    found = containers(synthesized)
    secret_names = {name: {s["Name"] for s in c.get("Secrets", [])} for name, c in found.items()}
    assert secret_names == {"Query": {"PGPASSWORD"}, "Worker": {"PGPASSWORD"}, "Delivery": {"PGPASSWORD"}}
    db_secret = synthesized.logical_id(synthesized.stack.data.database_secret)
    for container in found.values():
        (password,) = [s for s in container["Secrets"] if s["Name"] == "PGPASSWORD"]
        assert db_secret in json.dumps(password["ValueFrom"]) and ":password::" in json.dumps(password["ValueFrom"])


def test_images_build_from_the_service_dockerfiles_with_a_small_context(synthesized: Synthesized) -> None:
    manifest = json.loads((synthesized.outdir / f"{synthesized.stack.stack_name}.assets.json").read_text())
    images = {i["source"]["dockerFile"]: i["source"]["directory"] for i in manifest["dockerImages"].values()}
    assert set(images) == {"services/query/Dockerfile", "services/worker/Dockerfile"}
    for directory in images.values():
        staged = synthesized.outdir / directory
        top = {p.name for p in staged.iterdir()}
        # THEN the build context holds the project and the Dockerfiles, not .venv, node_modules or tests
        assert {"pyproject.toml", "layers", "services"} <= top <= {"pyproject.toml", "README.md", "layers", "services"}
        assert (staged / "layers" / "trace_core" / "trace_core" / "settings.py").is_file()
        assert not list(staged.rglob("__pycache__"))


def test_dockerfiles_pin_a_python_cryo_supports_and_run_the_same_command() -> None:
    for name in ("query", "worker"):
        command = list(platform.PLATFORM.services[name].command)
        dockerfile = (REPO / "services" / name / "Dockerfile").read_text()
        base = re.search(r"^FROM python:(\d+\.\d+)", dockerfile, re.MULTILINE)
        assert base and base[1] in ("3.11", "3.12"), f"{name}: cryo 0.3.2 has wheels for 3.10-3.12 only"
        assert f"CMD {json.dumps(command)}" in dockerfile.replace(", ", ", ")
        assert re.search(r"^USER \d+", dockerfile, re.MULTILINE), f"{name}: run as a non-root user"


def test_prebuilt_images_replace_the_build() -> None:
    # GIVEN a stage that names prebuilt images
    import aws_cdk as cdk
    from trace_cdk import config
    from trace_cdk import services as services_mod

    from tests.infra.conftest import cdk_context

    stages = cdk_context()["trace:stages"]
    stages["dev"]["images"] = {"query": "123456789012.dkr.ecr.us-east-1.amazonaws.com/trace-query:1"}
    stage = config.stage_config(stages, "dev")
    # WHEN the image for each service is chosen
    query = services_mod.image(stage, "query", config.Assets())
    worker = services_mod.image(stage, "worker", config.Assets())
    # THEN the named one comes from the registry, the other still builds from its Dockerfile
    assert isinstance(query, cdk.aws_ecs.RepositoryImage)
    assert isinstance(worker, cdk.aws_ecs.AssetImage)


def test_services_roll_back_failed_deployments(synthesized: Synthesized) -> None:
    for name, service in synthesized.stack.services.services.items():
        props = synthesized.resources[synthesized.logical_id(service)]["Properties"]
        assert props["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}, name
        assert props["LaunchType"] == "FARGATE", name
    (cluster,) = synthesized.of_type("AWS::ECS::Cluster").values()
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["Properties"]["ClusterSettings"]


def test_query_load_balancer_is_internal_and_logged(synthesized: Synthesized) -> None:
    (lb,) = synthesized.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    props = lb["Properties"]
    assert props["Scheme"] == "internal"
    attributes = {a["Key"]: a["Value"] for a in props["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true"
    (group,) = synthesized.of_type("AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert group["Properties"]["HealthCheckPath"] == synthesized.stage.query.health_check_path


# ---------------------------------------------------------------- HTTP API


def routes(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.of_type("AWS::ApiGatewayV2::Route").values()}


def test_dispatcher_routes_need_sigv4_and_use_payload_2(synthesized: Synthesized) -> None:
    found = routes(synthesized)
    dispatcher = found["ANY /{proxy+}"]
    assert dispatcher["AuthorizationType"] == "AWS_IAM"
    integration_id = dispatcher["Target"]["Fn::Join"][1][1]["Ref"]
    integration = synthesized.resources[integration_id]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY" and integration["PayloadFormatVersion"] == "2.0"
    dispatcher_fn = synthesized.logical_id(synthesized.stack.functions.functions["dispatcher_api"])
    assert integration["IntegrationUri"] == {"Fn::GetAtt": [dispatcher_fn, "Arn"]}


def test_sample_dispatcher_events_match_the_payload_format() -> None:
    samples = sorted((REPO / "tests" / "events").glob("apigw_*.json"))
    assert samples, "tests/events/apigw_*.json: the dispatcher's sample events (for sam local invoke and the Lite host)"
    for sample in samples:
        assert json.loads(sample.read_text())["version"] == "2.0", sample.name


def test_query_routes_go_through_the_vpc_link_and_the_query_service_authorizes(synthesized: Synthesized) -> None:
    found = routes(synthesized)
    for key in ("POST /v1/query", "ANY /v1/query/{proxy+}", "POST /v1/task-query"):
        assert found[key]["AuthorizationType"] == "NONE", key
        integration_id = found[key]["Target"]["Fn::Join"][1][1]["Ref"]
        integration = synthesized.resources[integration_id]["Properties"]
        assert integration["ConnectionType"] == "VPC_LINK" and integration["IntegrationType"] == "HTTP_PROXY"
    assert set(found) == {"ANY /{proxy+}", "POST /v1/query", "ANY /v1/query/{proxy+}", "POST /v1/task-query"}
    assert services.LB_PORT == 80


def test_api_stage_logs_every_request_and_is_throttled(synthesized: Synthesized) -> None:
    (stage,) = synthesized.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default" and props["AutoDeploy"] is True
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert {"requestId", "status", "routeKey", "caller"} <= set(log_format)
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == synthesized.stage.api_throttle_rate
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == synthesized.stage.api_throttle_burst
