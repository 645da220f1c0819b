"""The platform declaration is consistent: names unique, every queue, pool, bucket and setting it names exists."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from trace_core import platform, settings

REPO = Path(__file__).resolve().parents[3]
PLATFORM = platform.PLATFORM


def test_the_declaration_checks_out_and_names_what_product_code_uses():
    # GIVEN the declaration WHEN it is checked again THEN nothing is missing
    PLATFORM.check()
    assert PLATFORM.worker_pools[platform.CHAIN_POOL].queue == platform.TASK_QUEUE
    assert PLATFORM.worker_pools[platform.CHAIN_POOL].operators == ("cryo_ingest", "noop")
    assert PLATFORM.worker_pools[platform.DELIVERY_POOL].queue == platform.DELIVERY_QUEUE
    assert {platform.TASK_QUEUE, platform.SINK_QUEUE, platform.DELIVERY_QUEUE} == set(PLATFORM.queues)
    assert PLATFORM.queue_sources()["sink"].queue == platform.SINK_QUEUE


def test_every_declared_setting_is_a_settings_field():
    for name in [*PLATFORM.functions, *PLATFORM.services]:
        declared = PLATFORM.settings_of(name)
        assert len(set(declared)) == len(declared), f"{name} declares a setting twice"
        assert set(declared) <= set(settings.Settings.model_fields), name
    for bucket in PLATFORM.buckets.values():
        assert bucket.setting in settings.Settings.model_fields, bucket.key


def test_every_function_has_its_handler_and_every_service_its_dockerfile():
    for function in PLATFORM.functions.values():
        module, attribute = function.handler.split(".")
        source = REPO / "functions" / function.name / f"{module}.py"
        assert f"def {attribute}(" in source.read_text(), source
    for service in PLATFORM.services.values():
        assert (REPO / "services" / service.image / "Dockerfile").is_file(), service.name


def test_lambda_triggers_fit_their_limits():
    for name, function in PLATFORM.functions.items():
        assert 1 <= function.timeout_seconds <= 900, name
    for name, trigger in PLATFORM.http_functions().items():
        assert PLATFORM.functions[name].timeout_seconds < 30, f"{name}: the HTTP API gives up after 30 s"
        assert trigger.routes, name
    for name, source in PLATFORM.queue_sources().items():
        assert 1 <= source.batch_size <= 10_000 and 2 <= source.max_concurrency <= 1000, name
        # SQS accepts a batch over 10 messages only with a batching window
        assert source.batch_size <= 10 or source.max_batching_window_seconds > 0, name


def _queue(name: str) -> platform.Queue:
    return platform.Queue(name, max_receives=3)


def _function(name: str, trigger: platform.Trigger, **kwargs: object) -> platform.Function:
    return platform.Function(name, "a test function", 10, trigger, ("database_url",), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "kind", "name"),
    [
        ({"queues": [_queue(platform.SINK_QUEUE)]}, "queue", platform.SINK_QUEUE),
        ({"functions": [_function("sink", platform.Schedule())]}, "function", "sink"),
        ({"functions": [_function("echo", platform.QueueSource("nowhere"))]}, "queue", "nowhere"),
        ({"functions": [_function("echo", platform.Schedule(), publishes=("nowhere",))]}, "queue", "nowhere"),
        ({"worker_pools": [platform.WorkerPool("spare", "nowhere", ("noop",))]}, "queue", "nowhere"),
        ({"worker_pools": [platform.WorkerPool("spare", platform.TASK_QUEUE, ())]}, "worker pool", "spare"),
        ({"worker_pools": [platform.WorkerPool("spare", platform.TASK_QUEUE, ("noop", "noop"))]}, "worker pool",
         "spare"),
        ({"services": [dataclasses.replace(PLATFORM.services["worker"], name="spare", pool="nowhere")]},
         "worker pool", "nowhere"),
        ({"services": [dataclasses.replace(PLATFORM.services["worker"], name="spare", buckets=("nowhere",))]},
         "bucket", "nowhere"),
        ({"services": [dataclasses.replace(PLATFORM.services["worker"], name="sink")]}, "deployable", "sink"),
    ],
)
def test_a_contradiction_is_refused_naming_it(extra, kind, name):
    # GIVEN the declaration with one contradicting part WHEN it is built THEN DeclarationError names the part
    with pytest.raises(platform.DeclarationError) as caught:
        PLATFORM.extended(**extra)
    assert (caught.value.details["kind"], caught.value.details["name"]) == (kind, name)
    assert "fix" in caught.value.details


def test_a_new_queue_and_function_are_one_entry_each():
    # GIVEN one more queue and a function it feeds
    grown = PLATFORM.extended(
        queues=[_queue("trace-alerts")],
        functions=[_function("alerts", platform.QueueSource("trace-alerts", batch_size=5))],
    )
    # THEN the derived views have them, and the original declaration is unchanged
    assert grown.queues["trace-alerts"].dlq == "trace-alerts-dlq"
    assert grown.queue_sources()["alerts"].batch_size == 5
    assert "alerts" not in PLATFORM.functions and "trace-alerts" not in PLATFORM.queues


def test_the_declaration_imports_nothing_of_lite_cli_or_cdk():
    import ast

    for source in (REPO / "layers" / "trace_core" / "trace_core" / "platform").glob("*.py"):
        tree = ast.parse(source.read_text())
        imported = {
            n.module if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in (n.names if isinstance(n, ast.Import) else [n])  # type: ignore[union-attr]
        }
        inside = {m for m in imported if m and m.startswith("trace_core")}
        assert inside <= {"trace_core.platform", "trace_core.platform.types", "trace_core.platform.errors",
                          "trace_core.platform.declaration", "trace_core.errors", "trace_core"}, source
        assert not {m for m in imported if m and m.split(".")[0] in ("trace_cdk", "aws_cdk", "boto3")}, source
