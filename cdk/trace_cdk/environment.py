"""The environment contract of every deployable (Lambda functions and Fargate tasks).

Only ``TRACE_*`` variables that :class:`trace_core.settings.Settings` knows are
set (an unknown one makes ``settings.load()`` refuse to start), plus the
standard ``POWERTOOLS_*`` and ``PG*`` ones. No secret is ever put in an
environment variable here: the database URL carries no password; Fargate tasks
get ``PGPASSWORD`` injected by ECS from Secrets Manager, Lambda functions read
the secret named by ``TRACE_DATABASE_SECRET_ARN``.
"""

from __future__ import annotations

from aws_cdk import aws_rds as rds

from trace_cdk import config, names

# A Lambda execution environment serves one request at a time: a small pool per
# environment keeps many concurrent environments within RDS's connection limit.
LAMBDA: dict[str, str] = {"TRACE_DB_POOL_MAX": "2"}


def database_url(database: rds.DatabaseInstance) -> str:
    """``postgresql://trace@host:5432/trace?sslmode=require``; libpq takes the password from PGPASSWORD."""
    return (
        f"postgresql://{names.DATABASE_USER}@{database.db_instance_endpoint_address}:"
        f"{database.db_instance_endpoint_port}/{names.DATABASE_NAME}?sslmode=require"
    )


def platform(
    stage: config.StageConfig,
    *,
    component: str,
    database: rds.DatabaseInstance,
    database_secret_arn: str | None,
    buckets: dict[str, str],
    task_queue: str = names.TASK_QUEUE,
) -> dict[str, str]:
    """What every deployable of the stage is configured with; ``component`` names it for logs and metrics.

    ``database_secret_arn`` is for Lambdas, which read the password themselves (trace_core.db.conninfo);
    Fargate tasks get it as ``PGPASSWORD`` from ECS secrets and pass None.
    """
    env = {
        "POWERTOOLS_SERVICE_NAME": names.service_name(component),
        "POWERTOOLS_LOG_LEVEL": stage.log_level,
        "POWERTOOLS_METRICS_NAMESPACE": names.METRICS_NAMESPACE,
        # Tracing is off: the layer ships no aws-xray-sdk, and the VPC has no X-Ray endpoint.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "TRACE_LOG_LEVEL": stage.log_level,
        "TRACE_PROFILE": "aws",  # real AWS endpoints (Lite refuses to call AWS without a local endpoint)
        "TRACE_DATABASE_URL": database_url(database),
        "TRACE_QUEUE_DRIVER": "sqs",
        "TRACE_TASK_QUEUE": task_queue,
        "TRACE_DATASETS_BUCKET": buckets["datasets"],
        "TRACE_RESULTS_BUCKET": buckets["results"],
        "TRACE_SCRATCH_BUCKET": buckets["scratch"],
        "TRACE_CHAIN_ID": str(stage.chain_id),
    }
    if database_secret_arn is not None:
        env["TRACE_DATABASE_SECRET_ARN"] = database_secret_arn
    return env
