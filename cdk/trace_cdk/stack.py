"""``TraceStack``: one stack per stage, composed of one construct per capability.

Why one stack: IAM grants, security-group rules and alarms reference each
other across capabilities; in one template they are plain ``Ref``/``GetAtt``
(no export lock-in), cdk-nag findings can be acknowledged exactly, and
``sam local invoke`` needs a single template. Stateful resources are protected
by their removal policies instead (see docs/decisions/0401-one-stack-per-stage.md).
"""

from __future__ import annotations

import sys

import aws_cdk as cdk
from constructs import Construct
from trace_core import platform

from trace_cdk import (
    api,
    config,
    functions,
    layer,
    migrations,
    nag,
    names,
    network,
    observability,
    queues,
    services,
)
from trace_cdk import data as data_mod


class TraceStack(cdk.Stack):
    """Network, data, queues, functions, migrations, services, API and observability of one stage."""

    def __init__(
        self, scope: Construct, *, stage: config.StageConfig, assets: config.Assets, deployable: bool = True
    ) -> None:
        super().__init__(
            scope,
            names.stack_id(stage.stage),
            env=cdk.Environment(account=stage.account, region=stage.region),
            description=f"Trace {stage.stage}: chain data sync, query and alerts",
            termination_protection=stage.database.deletion_protection,
        )
        cdk.Tags.of(self).add("project", names.PROJECT)
        cdk.Tags.of(self).add("stage", stage.stage)
        self.network = network.Network(self, names.NETWORK, stage=stage)
        self.data = data_mod.Data(self, names.DATA, stage=stage, net=self.network)
        self.queues = queues.Queues(self, names.QUEUES, visibility=functions.visibility(platform.PLATFORM))
        self.functions = functions.Functions(
            self, names.FUNCTIONS, stage=stage, assets=assets, net=self.network, data=self.data, queues=self.queues
        )
        self.migrations = migrations.Migrations(
            self, names.MIGRATIONS, stage=stage, net=self.network, data=self.data, layer=self.functions.layer
        )
        self.services = services.Services(
            self, names.SERVICES, stage=stage, assets=assets, net=self.network, data=self.data, queues=self.queues
        )
        self.api = api.Api(
            self,
            names.API,
            stage=stage,
            net=self.network,
            functions=dict(self.functions.functions),
            services=self.services,
        )
        self.observability = observability.Observability(
            self,
            names.OBSERVABILITY,
            stage=stage,
            queues=self.queues,
            functions=dict(self.functions.functions),
            services=dict(self.services.services),
        )
        self._outputs()
        self._acknowledge()
        if not deployable:
            layer.refuse_deployment(self)

    def _outputs(self) -> None:
        outputs = {
            "ApiUrl": (self.api.url, "HTTP API: dispatcher (SigV4) and /v1/query (Bearer JWT)"),
            "DatasetsBucket": (self.data.datasets.bucket_name, "TRACE_DATASETS_BUCKET"),
            "ResultsBucket": (self.data.results.bucket_name, "TRACE_RESULTS_BUCKET"),
            "ScratchBucket": (self.data.scratch.bucket_name, "TRACE_SCRATCH_BUCKET"),
            "AccessLogsBucket": (self.data.access_logs.bucket_name, "Server and load balancer access logs"),
            "DatabaseEndpoint": (self.data.database.db_instance_endpoint_address, "RDS PostgreSQL (private)"),
            "DatabaseSecretArn": (self.data.database_secret.secret_arn, "Database credentials (RDS JSON)"),
            "ClusterName": (self.services.cluster.cluster_name, "ECS cluster of the Fargate services"),
            "WorkerServiceName": (
                self.services.services["worker"].service_name,
                "Cryo/platform workers (run one-off tasks like it)",
            ),
            "WorkerLogGroupName": (self.services.log_groups["worker"].log_group_name, "Worker logs"),
            "QueryLogGroupName": (self.services.log_groups["query"].log_group_name, "Query Service logs"),
            "AlarmTopicArn": (self.observability.topic.topic_arn, "Subscribe to receive alarms"),
            "DashboardName": (self.observability.dashboard.dashboard_name, "CloudWatch dashboard"),
        }
        for key, (value, description) in outputs.items():
            cdk.CfnOutput(self, key, value=value, description=description)

    def _acknowledge(self) -> None:
        for rule_id in nag.LAMBDA_MANAGED_POLICIES:
            nag.acknowledge(
                self,
                rule_id,
                "AWS-maintained minimal policies for Lambda logging and VPC network interfaces "
                "(the functions' own access is granted inline, per function).",
            )
        buckets = [*self.data.buckets.values(), self.data.access_logs]
        bucket_ids = [self.resolve(self.get_logical_id(b.node.default_child)) for b in buckets]  # type: ignore[arg-type]
        # Whatever no rule covers stays a finding and fails synth with cdk-nag's message.
        nag.acknowledge_policy_wildcards(self, [nag.object_keys_rule(bucket_ids), *nag.STATIC_RULES])


def build(app: cdk.App) -> TraceStack:
    """The stack of the stage selected in the app's context, with cdk-nag attached to the app.

    Without a built layer, a trace_core-only one is built and the template refuses deployment
    (``trace_cdk.layer``); what was done is said on stderr.
    """
    stage, assets = config.from_context(app.node.try_get_context)
    chosen = layer.resolve(assets)
    if chosen.note:
        print(chosen.note, file=sys.stderr)
    stack = TraceStack(
        app, stage=stage, assets=assets.model_copy(update={"layer_dir": chosen.path}), deployable=chosen.deployable
    )
    nag.check(app)
    return stack
