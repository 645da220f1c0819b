"""Fargate: the services of the platform declaration (``trace_core.platform.PLATFORM.services``).

- a service with HTTP routes (``query``: ``python -m trace_core.query.service``)
  runs in the isolated subnets (no internet), behind an internal Application Load
  Balancer that only the HTTP API's VPC link may reach. Reads datasets (never the
  staging prefix), writes exported results.
- a service with a worker pool (``worker``: the ``chain`` pool on the task queue;
  ``delivery``: the ``delivery`` pool on the delivery queue) runs
  ``python -m trace_core.worker`` in the egress subnets with the security group
  of its declared egress (``rpc``: JSON-RPC providers for the Cryo ingest, which
  also mints capability tokens; ``delivery``: webhooks), and consumes its pool's
  queue. It reads and writes the buckets it declares.

Each service's size is the stage setting of the same name (``trace:stages.<stage>.worker``).
Images build from ``services/<image>/Dockerfile`` at deploy time (``cdk deploy``
needs Docker then), or come prebuilt from the stage's ``images`` setting.
The database password reaches containers only as an ECS secret (``PGPASSWORD``),
never as a plain environment value. JSON-RPC URLs come with each chain sync job.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, IgnoreMode, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct
from trace_core import platform

from trace_cdk import access, config, environment, errors, log_groups, nag, names, network
from trace_cdk import data as data_mod
from trace_cdk import queues as queues_mod

# Only what an image build needs is sent to Docker (and hashed at synth): not .venv, node_modules, ...
IMAGE_CONTEXT = [
    "*",
    "!pyproject.toml",
    "!README.md",
    "!layers/",
    "!layers/trace_core/",
    "!layers/trace_core/trace_core/**",
    "!services/",
    "!services/**",
    "**/__pycache__",
]
LB_PORT = 80


def image(stage: config.StageConfig, name: str, assets: config.Assets) -> ecs.ContainerImage:
    """The stage's prebuilt image for ``name``, or a build of services/<name>/Dockerfile at deploy time."""
    prebuilt = stage.images.get(name)  # type: ignore[call-overload]
    if prebuilt:
        return ecs.ContainerImage.from_registry(prebuilt)
    # An image asset only records the build context's hash at synth; Docker runs at deploy.
    return ecs.ContainerImage.from_asset(
        str(assets.repo_root),
        file=f"services/{name}/Dockerfile",
        exclude=IMAGE_CONTEXT,
        ignore_mode=IgnoreMode.DOCKER,
        platform=ecr_assets.Platform.LINUX_AMD64,
    )


def token_keys_secret_name(stage: config.StageConfig) -> str:
    """The secret trace_core.auth.keys creates on first mint (TRACE_TOKEN_KEYS_SECRET)."""
    return f"{names.PROJECT}/{stage.stage}/token-signing-keys"


class Services(Construct):
    """The ECS cluster, the declared services, and the Query Service's internal load balancer."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: config.StageConfig,
        assets: config.Assets,
        net: network.Network,
        data: data_mod.Data,
        queues: queues_mod.Queues,
        declared: platform.Platform = platform.PLATFORM,
    ) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        self._net = net
        self._data = data
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=net.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        self._images = {
            spec.image: image(stage, spec.image, assets) for spec in declared.services.values()
        }
        self._token_keys_arn = Stack.of(self).format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{token_keys_secret_name(stage)}-??????",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self._values = environment.stage_values(
            stage,
            database=data.database,
            database_secret_arn=None,  # the password arrives as PGPASSWORD (ECS secrets), see _database_secret
            buckets={key: bucket.bucket_name for key, bucket in data.buckets.items()},
        ) | {
            "token_keys": "secretsmanager",
            "token_keys_secret": token_keys_secret_name(stage),
            # Workers emit TasksCompleted / TasksFailed (EMF) for the task failure-rate alarm.
            "emit_metrics": "true",
        }
        self._routed: str | None = None
        self.services: dict[str, ecs.FargateService] = {}
        for name, spec in declared.services.items():
            if spec.routes:
                self.services[name] = self._query_service(spec)
            elif spec.pool is not None:
                self.services[name] = self._worker_service(spec, declared.worker_pools[spec.pool], queues)
            else:
                raise errors.InfraConfigError(
                    f"service {name} has neither routes nor a worker pool: nothing would reach it",
                    field=f"trace_core.platform services[{name!r}]", expected="routes=(...) or pool=...",
                )

    @property
    def query(self) -> ecs.FargateService:
        """The service behind the load balancer (the one with HTTP routes)."""
        if self._routed is None:
            raise KeyError("no declared service has HTTP routes")
        return self.services[self._routed]

    # ------------------------------------------------------------ building blocks

    def _task_definition(
        self, name: str, size: config.ServiceSize, image: ecs.ContainerImage, *, command: list[str],
        env: dict[str, str], secrets: dict[str, ecs.Secret], port: int | None = None,
    ) -> ecs.FargateTaskDefinition:
        construct_name = name.title()
        task = ecs.FargateTaskDefinition(
            self,
            f"{construct_name}Task",
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64, operating_system_family=ecs.OperatingSystemFamily.LINUX
            ),
        )
        task.add_container(
            construct_name,
            image=image,
            command=command,
            environment=env,
            secrets=secrets,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=self._log_group(name)),
            port_mappings=[ecs.PortMapping(container_port=port)] if port else None,
            stop_timeout=Duration.seconds(30),
        )
        nag.acknowledge(
            task,
            "AwsSolutions-ECS2",
            "The plain environment holds non-secret configuration only; secrets come through ECS secrets.",
        )
        return task

    def _log_group(self, name: str) -> logs.LogGroup:
        self.log_groups[name] = log_groups.log_group(self, f"{name.title()}Logs", self._stage)
        return self.log_groups[name]

    def _size(self, name: str) -> config.ServiceSize:
        size = getattr(self._stage, name, None)
        if not isinstance(size, config.ServiceSize):
            raise errors.InfraConfigError(
                f"the stage has no size for service {name}",
                field=f"trace:stages.{self._stage.stage}.{name}", expected="a ServiceSize (add it to StageConfig)",
            )
        return size

    def _database_secret(self) -> dict[str, ecs.Secret]:
        return {"PGPASSWORD": ecs.Secret.from_secrets_manager(self._data.database_secret, "password")}

    def _token_keys(self, role: iam.IRole, *, create: bool) -> None:
        actions = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions + (["secretsmanager:CreateSecret"] if create else []),
                resources=[self._token_keys_arn],
            )
        )

    # ------------------------------------------------------------ services

    def _query_service(self, spec: platform.Service) -> ecs.FargateService:
        size = self._size(spec.name)
        if not isinstance(size, config.QuerySize) or self._routed is not None:
            raise errors.InfraConfigError(
                f"service {spec.name} has routes, but only one service with a QuerySize sits behind the load balancer",
                field=f"trace:stages.{self._stage.stage}.{spec.name}", expected="the query service",
            )
        self._routed = spec.name
        env = environment.render(spec.name, self._stage, spec.settings, self._values, own={
            "query_host": "0.0.0.0",
            "query_port": str(size.port),
            "query_workers": str(size.workers),
            # The DuckDB workers share three quarters of the task's memory; the rest is Python, Arrow, the OS.
            "query_memory_mb": str(size.memory_mib * 3 // 4 // size.workers),
        })
        task = self._task_definition(
            spec.name, size, self._images[spec.image], command=list(spec.command), env=env,
            secrets=self._database_secret(), port=size.port,
        )
        service = ecs.FargateService(
            self,
            spec.name.title(),
            cluster=self.cluster,
            task_definition=task,
            desired_count=size.desired_count,
            vpc_subnets=self._net.isolated,
            security_groups=[self._net.query_sg],
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
        )
        role = task.task_role
        access.read(role, self._data.datasets)
        # The Query Service never reads staged (uncommitted) objects: invariant 5, enforced by IAM too.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["s3:GetObject"],
                resources=[self._data.datasets.arn_for_objects(f"{self._data.staging_prefix}*")],
            )
        )
        access.read_write(role, self._data.results)
        self._token_keys(role, create=False)

        self.lb_sg = network.closed_group(
            self, "QueryLbSg", vpc=self._net.vpc,
            description="Query Service load balancer: from the HTTP API VPC link, to the Query Service only",
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "QueryLb",
            vpc=self._net.vpc,
            internet_facing=False,
            vpc_subnets=self._net.isolated,
            security_group=self.lb_sg,
            drop_invalid_header_fields=True,
        )
        self.load_balancer.log_access_logs(self._data.access_logs, prefix="query-lb")
        self.listener = self.load_balancer.add_listener(
            "Http", port=LB_PORT, protocol=elbv2.ApplicationProtocol.HTTP, open=False
        )
        self.listener.add_targets(
            "Query",
            port=size.port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[service],
            health_check=elbv2.HealthCheck(path=size.health_check_path, healthy_http_codes="200"),
            deregistration_delay=Duration.seconds(30),
        )
        return service

    def _worker_service(
        self, spec: platform.Service, pool: platform.WorkerPool, queues: queues_mod.Queues
    ) -> ecs.FargateService:
        """A worker of ``pool`` on its queue; the one with RPC egress (Cryo ingest) also mints capability tokens."""
        groups = {"rpc": self._net.rpc_egress_sg, "delivery": self._net.delivery_egress_sg}
        if spec.egress not in groups:
            raise errors.InfraConfigError(
                f"worker service {spec.name} declares egress {spec.egress!r}: workers run in the egress subnets",
                field=f"trace_core.platform services[{spec.name!r}].egress", expected=" or ".join(groups),
            )
        # The pool names the queue and the operators (trace_core.worker reads them from the declaration).
        env = environment.render(spec.name, self._stage, spec.settings, self._values, own={"worker_pool": pool.name})
        task = self._task_definition(
            spec.name, self._size(spec.name), self._images[spec.image], command=list(spec.command),
            env=env, secrets=self._database_secret(),
        )
        queues[pool.queue].grant_consume_messages(task.task_role)
        self._token_keys(task.task_role, create=spec.egress == "rpc")
        for bucket in spec.buckets:
            access.read_write(task.task_role, self._data.buckets[bucket], delete=True)
        return ecs.FargateService(
            self,
            spec.name.title(),
            cluster=self.cluster,
            task_definition=task,
            desired_count=self._size(spec.name).desired_count,
            vpc_subnets=self._net.egress,
            security_groups=[groups[spec.egress]],
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
        )
