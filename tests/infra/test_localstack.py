"""local/localstack/ stays what Trace expects: pinned images, health checks, ports the docs use, and an
init script that creates exactly the buckets and queues Lite provisions (run here against moto: no Docker).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest
import yaml
from trace_cdk import data as data_mod
from trace_core import settings as settings_mod
from trace_core.lite import provision

from tests.fixtures import components
from tests.infra.conftest import REPO

HERE = REPO / "local" / "localstack"
COMPOSE = yaml.safe_load((HERE / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
INIT_SCRIPT = HERE / "init-aws.sh"
READY_HOOKS = "/etc/localstack/init/ready.d/"
# LocalStack images after this one (2026.3.0 on) refuse to start without LOCALSTACK_AUTH_TOKEN.
LAST_TOKENLESS_LOCALSTACK = (4, 14, 0)
DOC = (REPO / "docs" / "local.md").read_text()
SECTION = DOC[DOC.index("## With Docker: LocalStack") :].split("\n## ", 1)[0]


def _version(image: str) -> tuple[int, ...]:
    name, _, tag = image.partition(":")
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", tag), f"{name}: pin an exact version, not {tag or 'no tag'!r}"
    return tuple(int(part) for part in tag.split("."))


def _host_port(service: dict[str, Any], container_port: int) -> int:
    for mapping in service["ports"]:
        host, port, target = str(mapping).split(":")
        if int(target) == container_port:
            assert host == "127.0.0.1", f"{mapping}: bind the published port to 127.0.0.1 only"
            return int(port)
    raise AssertionError(f"container port {container_port} is not published: {service['ports']}")


def test_the_stack_is_postgres_and_localstack_with_pinned_images() -> None:
    # MinIO is gone: Trace reaches S3 through the one AWS endpoint, LocalStack's (decision 1307).
    assert set(SERVICES) == {"postgres", "localstack"}
    # Postgres: the minor version RDS runs
    assert _version(SERVICES["postgres"]["image"]) == tuple(
        int(p) for p in data_mod.ENGINE.engine_version.full_version.split(".")  # type: ignore[union-attr]
    )
    # LocalStack: a version that starts without an account, and the docs say why it is not newer
    assert SERVICES["localstack"]["image"].startswith("localstack/localstack:")
    assert _version(SERVICES["localstack"]["image"]) <= LAST_TOKENLESS_LOCALSTACK
    assert "LOCALSTACK_AUTH_TOKEN" in SECTION and SERVICES["localstack"]["image"].split(":")[1] in SECTION


def test_every_service_has_a_health_check_that_parses() -> None:
    for name, service in SERVICES.items():
        check = service.get("healthcheck", {}).get("test")
        assert check and check[0] in ("CMD", "CMD-SHELL"), f"{name}: no health check"
        if check[:2] == ["CMD", "python3"]:
            compile(check[check.index("-c") + 1], f"{name} healthcheck", "exec")
    # LocalStack is healthy only after its ready hooks (the init script) succeeded
    assert "/_localstack/init/ready" in " ".join(SERVICES["localstack"]["healthcheck"]["test"])


def test_ports_and_credentials_are_the_ones_the_docs_export() -> None:
    # GIVEN the URLs docs/local.md tells users to export
    endpoint = re.search(r"export AWS_ENDPOINT_URL=(\S+)", SECTION)[1]  # type: ignore[index]
    database = re.search(r"export TRACE_DATABASE_URL=(\S+)", SECTION)[1]  # type: ignore[index]
    # THEN they reach the ports the compose file publishes, with its credentials
    assert httpx.URL(endpoint).port == _host_port(SERVICES["localstack"], 4566)
    info = psycopg.conninfo.conninfo_to_dict(database)
    env = SERVICES["postgres"]["environment"]
    assert int(info["port"]) == _host_port(SERVICES["postgres"], 5432)
    assert (info["user"], info["password"], info["dbname"]) == (
        env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"],
    )
    assert info["host"] == "127.0.0.1"


def test_localstack_serves_every_aws_api_trace_core_calls() -> None:
    source = "\n".join(p.read_text() for p in (REPO / "layers" / "trace_core" / "trace_core").rglob("*.py"))
    used = set(re.findall(r'aws\.client\(\s*"([a-z0-9-]+)"', source)) | (
        {"s3"} if "aws.s3_client(" in source else set()
    )
    assert used >= {"s3", "sqs"}
    assert used <= set(SERVICES["localstack"]["environment"]["SERVICES"].split(","))
    # Trace's default region, where the init script's queues must be
    assert SERVICES["localstack"]["environment"]["AWS_DEFAULT_REGION"] == settings_mod.Settings.model_fields[
        "aws_region"
    ].default


def test_the_init_script_is_mounted_as_an_executable_ready_hook() -> None:
    (mount,) = [v for v in SERVICES["localstack"]["volumes"] if v.startswith("./")]
    source, target, mode = mount.split(":")
    assert HERE / source == INIT_SCRIPT and target == READY_HOOKS + INIT_SCRIPT.name and mode == "ro"
    # LocalStack runs a .sh hook as an executable: without the bit it fails and the health check stays red
    assert os.access(INIT_SCRIPT, os.X_OK)
    mode_in_git = subprocess.run(
        ["git", "ls-files", "-s", str(INIT_SCRIPT.relative_to(REPO))], cwd=REPO, capture_output=True, text=True,
        check=True,
    ).stdout.split()[0]
    assert mode_in_git == "100755"


@pytest.fixture(scope="module")
def private_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server of this module's own: it is reset between the two provisionings compared."""
    with components.running_moto(tmp_path_factory.mktemp("moto")) as url:
        yield url


def _state(endpoint: str) -> dict[str, Any]:
    """Buckets, and each queue's visibility timeout and redrive policy (DLQ by name), at ``endpoint``."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    queues: dict[str, dict[str, Any]] = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes.get("RedrivePolicy", "null"))
        queues[url.rsplit("/", 1)[-1]] = {
            "visibility": attributes["VisibilityTimeout"],
            "dlq": redrive and redrive["deadLetterTargetArn"].rsplit(":", 1)[-1],
            "max_receives": redrive and int(redrive["maxReceiveCount"]),
        }
    return {"buckets": {b["Name"] for b in s3.list_buckets().get("Buckets", [])}, "queues": queues}


def test_the_init_script_creates_exactly_what_lite_provisions(private_moto: str, tmp_path: Path) -> None:
    # GIVEN what provision() creates with default settings (the names' one declaration)
    settings = settings_mod.load({}, home=tmp_path / "home", aws_endpoint_url=private_moto)
    provision.provision(settings)
    expected = _state(private_moto)
    assert expected["buckets"] == set(provision.buckets(settings))
    assert {q: v["max_receives"] for q, v in expected["queues"].items() if v["dlq"]} == provision.QUEUES
    httpx.post(f"{private_moto}/moto-api/reset").raise_for_status()
    assert _state(private_moto) == {"buckets": set(), "queues": {}}
    # WHEN the init script runs, its awslocal calls sent to the same (reset) server
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "awslocal").write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).with_name("awslocal_moto.py")}" "$@"\n'
    )
    (bin_dir / "awslocal").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "AWS_ENDPOINT_URL": private_moto}
    result = subprocess.run([str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)
    # THEN it succeeds and leaves the same buckets, queues, DLQs and redrive policies
    assert result.returncode == 0, result.stdout + result.stderr
    assert _state(private_moto) == expected
    # AND running it again (a LocalStack restart with state) changes nothing
    rerun = subprocess.run([str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert _state(private_moto) == expected
