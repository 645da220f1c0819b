"""Lambda: the ``trace_core`` layer, the defaults every function shares, and the platform functions.

``TraceFunction`` is the one place for Lambda defaults: Python 3.12 on x86_64,
``handler.lambda_handler``, the ``trace_core`` layer, the isolated subnets and
the functions security group, an explicit timeout, its own log group with the
stage's retention, and Powertools configured by environment.

Functions (``functions/<folder>/handler.py``):
- ``dispatcher_api``: behind the HTTP API (see ``api.py``);
- ``outbox_drainer``, ``lease_reaper`` and ``chain_sync_planner``: every minute
  on EventBridge schedules;
- ``sink``: on the dataset-buffer queue, reporting partial batch failures.

All run in the isolated subnets except the chain sync planner, which polls the
chain heads of follow_head jobs: it takes the RPC egress path of the Cryo workers.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from trace_cdk import config, environment, errors, log_groups, nag, names, network, queues
from trace_cdk import data as data_mod

RUNTIME = lambda_.Runtime.PYTHON_3_12
ASSET_EXCLUDE = ["__pycache__", "*.pyc", "tests", "*.md"]
SCHEDULE = Duration.minutes(1)


@dataclasses.dataclass(frozen=True)
class FunctionSpec:
    description: str
    timeout_seconds: int
    scheduled: bool = False  # runs every minute on an EventBridge schedule
    rpc_egress: bool = False  # reaches JSON-RPC providers on the internet (egress subnets, RPC egress group)


SPECS: dict[str, FunctionSpec] = {
    # The HTTP API gives up after 30 s: answer before it does.
    names.DISPATCHER_API: FunctionSpec("Dispatcher API: tasks, leases, heartbeats, completions", 29),
    # Scheduled ones stay below the one-minute period, so runs rarely overlap (overlap is safe: SKIP LOCKED).
    names.OUTBOX_DRAINER: FunctionSpec("Publishes pending outbox rows to SQS", 55, scheduled=True),
    names.LEASE_REAPER: FunctionSpec("Retries or buries tasks whose lease expired", 55, scheduled=True),
    names.CHAIN_SYNC_PLANNER: FunctionSpec(
        "Chain sync planner: follow_head polling, repair, reschedule", 55, scheduled=True, rpc_egress=True
    ),
    names.SINK: FunctionSpec("Writes dataset-buffer messages idempotently; reports failed items", 60),
}
# SQS redelivers a message only after its visibility timeout: AWS advises 6x the function timeout.
SINK_VISIBILITY = Duration.seconds(6 * SPECS[names.SINK].timeout_seconds)


def trace_core_layer(scope: Construct, construct_id: str, layer_dir: Path) -> lambda_.LayerVersion:
    """The layer folder ``layer_dir`` (``python/trace_core``, plus its Lambda dependencies when fully built)."""
    if not (layer_dir / "python" / "trace_core" / "__init__.py").is_file():
        raise errors.AssetMissingError(
            f"the trace_core layer is not built: {layer_dir}/python/trace_core is missing",
            path=str(layer_dir),
            fix="run scripts/build_lambda_assets.sh (or pass -c trace:layerDir=DIR)",
        )
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=lambda_.Code.from_asset(str(layer_dir), exclude=["__pycache__", "*.pyc"]),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[lambda_.Architecture.X86_64],
        description="trace_core and its Lambda dependencies (no duckdb, pyarrow or cryo)",
    )


class TraceFunction(Construct):
    """A Lambda function with Trace's defaults; ``.function`` is the function.

    ``construct_id`` is also the function's CloudFormation logical id (``names.function_id``),
    so it must be unique in the stack.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: config.StageConfig,
        code_dir: Path,
        description: str,
        timeout_seconds: int,
        layer: lambda_.ILayerVersion,
        net: network.Network,
        env: dict[str, str],
        rpc_egress: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        if not (code_dir / "handler.py").is_file():
            raise errors.AssetMissingError(
                f"Lambda handler missing: {code_dir}/handler.py does not exist",
                path=str(code_dir),
                fix="write the handler (lambda_handler) or point -c trace:functionsDir at a folder that has it",
            )
        self.log_group = log_groups.log_group(self, "Logs", stage)
        self.function = lambda_.Function(
            self,
            construct_id,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=names.HANDLER,
            code=lambda_.Code.from_asset(str(code_dir), exclude=ASSET_EXCLUDE),
            layers=[layer],
            timeout=Duration.seconds(timeout_seconds),
            memory_size=stage.lambda_memory_mb,
            vpc=net.vpc,
            vpc_subnets=net.egress if rpc_egress else net.isolated,
            security_groups=[net.rpc_egress_sg if rpc_egress else net.functions_sg],
            log_group=self.log_group,
            environment=env,
            description=description,
            tracing=lambda_.Tracing.DISABLED,
        )
        typing.cast(lambda_.CfnFunction, self.function.node.default_child).override_logical_id(construct_id)
        nag.acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Pinned to Python 3.12, the newest Python Trace supports everywhere (cryo has no 3.13 wheels), "
            "so the layer, the Fargate images and Lite run the same interpreter line.",
        )


class Functions(Construct):
    """The layer and the platform functions, with their triggers and least-privilege grants."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: config.StageConfig,
        assets: config.Assets,
        net: network.Network,
        data: data_mod.Data,
        queues: queues.Queues,
    ) -> None:
        super().__init__(scope, construct_id)
        if assets.layer_dir is None:  # stack.build resolves it (trace_cdk.layer)
            raise errors.AssetMissingError("no layer folder was chosen", path="", fix="synthesize through stack.build")
        self.layer = trace_core_layer(self, "TraceCoreLayer", assets.layer_dir)
        self.functions: dict[str, lambda_.Function] = {}
        for folder, spec in SPECS.items():
            env = environment.platform(
                stage,
                component=folder,
                database=data.database,
                database_secret_arn=data.database_secret.secret_arn,
                buckets={key: bucket.bucket_name for key, bucket in data.buckets.items()},
            ) | environment.LAMBDA
            built = TraceFunction(
                self,
                names.function_id(folder),
                stage=stage,
                code_dir=assets.functions_dir / folder,
                description=f"Trace {stage.stage}: {spec.description}",
                timeout_seconds=spec.timeout_seconds,
                layer=self.layer,
                net=net,
                env=env,
                rpc_egress=spec.rpc_egress,
            )
            data.database_secret.grant_read(built.function)
            self.functions[folder] = built.function

        for folder in (f for f, spec in SPECS.items() if spec.scheduled):
            events.Rule(
                self,
                f"{names.function_id(folder)}Schedule",
                description=f"Trace {stage.stage}: run {folder} every minute",
                schedule=events.Schedule.rate(SCHEDULE),
                # A missed tick is covered by the next one: no retries, no stale runs.
                targets=[
                    targets.LambdaFunction(
                        self.functions[folder], retry_attempts=0, max_event_age=Duration.minutes(1)
                    )
                ],
            )
        for queue in queues.queues.values():
            queue.grant_send_messages(self.functions[names.OUTBOX_DRAINER])
        self.functions[names.SINK].add_event_source(
            sources.SqsEventSource(
                queues[names.SINK_QUEUE],
                batch_size=10,
                max_batching_window=Duration.seconds(5),
                report_batch_item_failures=True,
                max_concurrency=5,
            )
        )
