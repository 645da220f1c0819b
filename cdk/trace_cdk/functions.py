"""Lambda: the ``trace_core`` layer, the defaults every function shares, and the platform functions.

``TraceFunction`` is the one place for Lambda defaults: Python 3.12 on x86_64,
``handler.lambda_handler``, the ``trace_core`` layer, the isolated subnets and
the functions security group, an explicit timeout, its own log group with the
stage's retention, and Powertools configured by environment.

``Functions`` builds every function of the platform declaration
(``trace_core.platform.PLATFORM.functions``, ``functions/<name>/handler.py``)
with its trigger: an HTTP trigger is wired by ``api.py``; a ``Schedule`` becomes
an EventBridge rule; a ``QueueSource`` an SQS event source with the declared
batch size, batching window, concurrency and partial batch responses. A function
that declares ``rpc_egress`` (the chain sync planner: it polls chain heads) runs
in the egress subnets with the RPC egress group, the others in the isolated subnets.
"""

from __future__ import annotations

import typing
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct
from trace_core import platform

from trace_cdk import config, environment, errors, log_groups, nag, names, network, queues
from trace_cdk import data as data_mod

RUNTIME = lambda_.Runtime.PYTHON_3_12
ASSET_EXCLUDE = ["__pycache__", "*.pyc", "tests", "*.md"]


def visibility(declared: platform.Platform) -> dict[str, Duration]:
    """The visibility timeout of each queue a function drains.

    SQS redelivers a message only after its visibility timeout: AWS advises 6x the function timeout.
    """
    return {
        source.queue: Duration.seconds(6 * declared.functions[name].timeout_seconds)
        for name, source in declared.queue_sources().items()
    }


def _minutes(count: int) -> str:
    return "minute" if count == 1 else f"{count} minutes"


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
    """The layer and the declared functions, with their triggers and least-privilege grants."""

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
        declared: platform.Platform = platform.PLATFORM,
    ) -> None:
        super().__init__(scope, construct_id)
        if assets.layer_dir is None:  # stack.build resolves it (trace_cdk.layer)
            raise errors.AssetMissingError("no layer folder was chosen", path="", fix="synthesize through stack.build")
        self.layer = trace_core_layer(self, "TraceCoreLayer", assets.layer_dir)
        self.functions: dict[str, lambda_.Function] = {}
        values = environment.stage_values(
            stage,
            database=data.database,
            database_secret_arn=data.database_secret.secret_arn,
            buckets={key: bucket.bucket_name for key, bucket in data.buckets.items()},
        )
        for name, spec in declared.functions.items():
            built = TraceFunction(
                self,
                names.function_id(name),
                stage=stage,
                code_dir=assets.functions_dir / name,
                description=f"Trace {stage.stage}: {spec.description}",
                timeout_seconds=spec.timeout_seconds,
                layer=self.layer,
                net=net,
                env=environment.render(name, stage, spec.settings, values, own=environment.LAMBDA),
                rpc_egress=spec.rpc_egress,
            )
            data.database_secret.grant_read(built.function)
            self.functions[name] = built.function
            for queue in spec.publishes:
                queues[queue].grant_send_messages(built.function)

        for name, schedule in declared.scheduled().items():
            events.Rule(
                self,
                f"{names.function_id(name)}Schedule",
                description=f"Trace {stage.stage}: run {name} every {_minutes(schedule.every_minutes)}",
                schedule=events.Schedule.rate(Duration.minutes(schedule.every_minutes)),
                # A missed tick is covered by the next one: no retries, no stale runs.
                targets=[
                    targets.LambdaFunction(
                        self.functions[name], retry_attempts=0, max_event_age=Duration.minutes(schedule.every_minutes)
                    )
                ],
            )
        for name, source in declared.queue_sources().items():
            self.functions[name].add_event_source(
                sources.SqsEventSource(
                    queues[source.queue],
                    batch_size=source.batch_size,
                    max_batching_window=Duration.seconds(source.max_batching_window_seconds),
                    report_batch_item_failures=source.partial_batch_response,
                    max_concurrency=source.max_concurrency,
                )
            )
