"""The environment of every deployable (Lambda functions and Fargate tasks), from the platform declaration.

A deployable's environment carries exactly the settings it declares
(``trace_core.platform``: ``Function.settings``, ``Service.settings``) that the
stack has a value for, its name (``TRACE_DEPLOYABLE``: ``settings.load()`` then
reads its declared settings only), and the standard ``POWERTOOLS_*`` ones. An
undeclared setting is never set; a deployable's own value for a setting it does
not declare is an error at synth. No secret is ever put in an environment
variable here: the database URL carries no password; Fargate tasks get
``PGPASSWORD`` injected by ECS from Secrets Manager, Lambda functions read the
secret named by ``TRACE_DATABASE_SECRET_ARN``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aws_cdk import aws_rds as rds
from trace_core import settings as settings_mod

from trace_cdk import config, errors, names

# A Lambda execution environment serves one request at a time: a small pool per
# environment keeps many concurrent environments within RDS's connection limit.
LAMBDA: dict[str, str] = {"db_pool_max": "2"}


def database_url(database: rds.DatabaseInstance) -> str:
    """``postgresql://trace@host:5432/trace?sslmode=require``; libpq takes the password from PGPASSWORD."""
    return (
        f"postgresql://{names.DATABASE_USER}@{database.db_instance_endpoint_address}:"
        f"{database.db_instance_endpoint_port}/{names.DATABASE_NAME}?sslmode=require"
    )


def stage_values(
    stage: config.StageConfig,
    *,
    database: rds.DatabaseInstance,
    database_secret_arn: str | None,
    buckets: Mapping[str, str],
) -> dict[str, str]:
    """The settings (by field name) the stage offers every deployable; each takes those it declares.

    ``database_secret_arn`` is for Lambdas, which read the password themselves (trace_core.db.conninfo);
    Fargate tasks get it as ``PGPASSWORD`` from ECS secrets and pass None.
    """
    values = {
        "log_level": stage.log_level,
        "profile": "aws",  # real AWS endpoints (Lite refuses to call AWS without a local endpoint)
        "database_url": database_url(database),
        "queue_driver": "sqs",
        "chain_id": str(stage.chain_id),
        **{bucket.setting: buckets[key] for key, bucket in names.platform.PLATFORM.buckets.items()},
    }
    if database_secret_arn is not None:
        values["database_secret_arn"] = database_secret_arn
    return values


def render(
    component: str,
    stage: config.StageConfig,
    declared: Iterable[str],
    values: Mapping[str, str],
    *,
    own: Mapping[str, str] | None = None,
    deployable: bool = True,
) -> dict[str, str]:
    """The environment of ``component``: its declared settings out of ``values``, then ``own`` (its own values),
    and ``TRACE_DEPLOYABLE`` (its name) if it is a deployable of the platform declaration.

    ``own`` may only hold settings ``component`` declares (InfraConfigError otherwise): a value nobody reads
    is a mistake, and an undeclared ``TRACE_*`` variable makes the deployable refuse to start.
    """
    declared = tuple(declared)
    stray = sorted(set(own or {}) - set(declared))
    if stray:
        raise errors.InfraConfigError(
            f"{component} is given {', '.join(stray)}, which it does not declare in trace_core.platform",
            field=stray[0], expected=f"one of {', '.join(declared)}",
        )
    merged = {**values, **(own or {})}
    env = {
        "POWERTOOLS_SERVICE_NAME": names.service_name(component),
        "POWERTOOLS_LOG_LEVEL": stage.log_level,
        "POWERTOOLS_METRICS_NAMESPACE": names.METRICS_NAMESPACE,
        # Tracing is off: the layer ships no aws-xray-sdk, and the VPC has no X-Ray endpoint.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    env |= {settings_mod.variable(name): merged[name] for name in declared if name in merged}
    if deployable:
        env[settings_mod.DEPLOYABLE_VARIABLE] = component
    return env
