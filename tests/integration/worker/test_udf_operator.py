"""The ``udf_invoke`` operator: a dispatcher task runs one invocation of a registered bundle in the sandbox.

Real parts: Postgres (dispatcher, registry), the moto S3 server (the bundles bucket), pgqueue, the worker,
bubblewrap. What a user relies on: the handler's result is the task's output; a handler that throws fails
its task for good with the error type in ``last_error``; a bundle that is not registered fails for good
naming it; a second task of the same version runs on the warm instance.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg_pool import ConnectionPool
from trace_core.auth import issuing
from trace_core.datasets import objectstore
from trace_core.dispatcher import models
from trace_core.udf import archive, manifest, registry, service, signing
from trace_core.worker import config as worker_config
from trace_core.worker import direct, runner
from trace_core.worker import registry as worker_registry

from tests.integration.worker.conftest import wait_for

pytestmark = pytest.mark.usefixtures("dispatcher_loop")

PID_HANDLER = "import os\n\ndef handler(event, context):\n    return {'pid': os.getpid(), 'echo': event}\n"
THROWING = "def handler(event, context):\n    raise LookupError('row 7 has no value')\n"


@pytest.fixture
def bundles(moto_url: str, database_url: str, db_pool: ConnectionPool) -> Iterator[tuple[str, Callable[..., Any]]]:
    """A bundles bucket, a clean registry with the Lite org's key, and ``publish(name, source)``."""
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="t",
                      aws_secret_access_key="t")
    bucket = f"bundles-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE state.udf_bundle_versions, state.udf_bundles, state.udf_signing_keys")
        issuing.lite_principal(conn)
    reg = registry.PostgresBundleRegistry(db_pool)
    key = signing.generate_private_key()
    reg.add_key(issuing.LITE_ORG_SLUG, signing.public_key(key))
    store = objectstore.S3ObjectStore(s3, bucket)

    def publish(name: str, source: str, version: int = 1) -> None:
        data = archive.build({"main.py": source.encode()}, org=issuing.LITE_ORG_SLUG, name=name, version=version,
                             runtime="python3.12", entrypoint="main.handler",
                             limits=manifest.Limits(timeout_seconds=10, memory_mb=256), private_key=key)
        service.upload(data, org=issuing.LITE_ORG_SLUG, registry=reg, store=store)

    yield bucket, publish
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture
def udf_worker(bundles, db_pool: ConnectionPool, driver, queue_name: str, make_settings, database_url: str,
               moto_url: str) -> Iterator[runner.Worker]:
    bucket, _ = bundles
    settings = make_settings(database_url=database_url, aws_endpoint_url=moto_url, bundles_bucket=bucket)
    worker = runner.Worker(direct.for_driver(db_pool, driver), driver, settings,
                           worker_config.WorkerConfig(queue=queue_name, lease_seconds=15, poll_seconds=1.0,
                                                      receive_wait_seconds=0.5),
                           worker_registry.for_pool(names=("udf_invoke",)))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    yield worker
    worker.request_stop("abandon")
    thread.join(timeout=20)


def _finished(get_task: Callable[[Any], models.Task], task_id: Any) -> models.Task:
    return wait_for(lambda: (t := get_task(task_id)).status in ("completed", "failed", "dead") and t, timeout=60)


def test_the_handlers_result_is_the_tasks_output_and_the_instance_stays_warm(bundles, udf_worker, create,
                                                                             get_task) -> None:
    _, publish = bundles
    publish("echo", PID_HANDLER)
    first = _finished(get_task, create("udf_invoke", {"bundle": "echo", "event": {"rows": [1, 2]}}).task_id)
    assert first.status == "completed", first.last_error
    assert first.outputs is not None
    assert first.outputs["bundle"] == "echo" and first.outputs["version"] == 1
    assert first.outputs["result"]["echo"] == {"rows": [1, 2]}
    second = _finished(get_task, create("udf_invoke", {"bundle": "echo", "version": 1, "event": {}}).task_id)
    assert second.status == "completed", second.last_error
    assert second.outputs is not None
    assert second.outputs["result"]["pid"] == first.outputs["result"]["pid"]  # the same warm instance


def test_a_throwing_handler_fails_its_task_for_good_with_the_error_type(bundles, udf_worker, create, get_task,
                                                                          attempts) -> None:
    _, publish = bundles
    publish("thrower", THROWING)
    task = _finished(get_task, create("udf_invoke", {"bundle": "thrower", "event": {}}, max_attempts=3).task_id)
    assert task.status == "failed"
    assert task.last_error is not None
    assert "thrower@1 failed: LookupError: row 7 has no value" in task.last_error
    assert len(attempts(task.task_id)) == 1  # deterministic: not retried


@pytest.mark.parametrize(("payload", "why"), [
    ({"bundle": "nobody", "event": {}}, "no registered bundle 'nobody'"),
    ({"event": {}}, "payload field bundle"),
    ({"bundle": "echo", "version": 0}, "payload field version"),
])
def test_a_bad_or_unknown_bundle_fails_for_good_naming_why(bundles, udf_worker, create, get_task,
                                                          payload: dict[str, Any], why: str) -> None:
    _, publish = bundles
    publish("echo", PID_HANDLER)
    task = _finished(get_task, create("udf_invoke", payload, max_attempts=3).task_id)
    assert task.status == "failed" and task.last_error is not None and why in task.last_error


def test_the_worker_stops_its_instances_when_it_stops(bundles, db_pool, driver, queue_name, make_settings,
                                                       database_url, moto_url, create, get_task) -> None:
    bucket, publish = bundles
    publish("echo", PID_HANDLER)
    settings = make_settings(database_url=database_url, aws_endpoint_url=moto_url, bundles_bucket=bucket)
    worker = runner.Worker(direct.for_driver(db_pool, driver), driver, settings,
                           worker_config.WorkerConfig(queue=queue_name, poll_seconds=1.0, receive_wait_seconds=0.5),
                           worker_registry.for_pool(names=("udf_invoke",)))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        done = _finished(get_task, create("udf_invoke", {"bundle": "echo", "event": {}}).task_id)
        pid = done.outputs["result"]["pid"] if done.outputs else None
        assert done.status == "completed" and pid
    finally:
        worker.request_stop("finish")
        thread.join(timeout=20)
    # Every sandbox the worker started (a bwrap child of this process) is gone with it.
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _our_sandbox(p)]


def _our_sandbox(proc: Path) -> bool:
    try:
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return parent == os.getpid() and any(part.endswith((b"bwrap", b"unshare")) for part in cmdline[:3])
