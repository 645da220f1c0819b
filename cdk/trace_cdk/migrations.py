"""Schema migrations as part of every deployment: a custom resource that runs ``trace_core.db.migrate``.

The handler (``cdk/handlers/migrations/handler.py``) runs in the VPC with the
trace_core layer, after the database and the VPC endpoints exist. The resource's
``MigrationsHash`` is a digest of the shipped migration files, so CloudFormation
calls it again exactly when a migration was added or changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aws_cdk import CustomResource
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from constructs import Construct
from trace_core import platform
from trace_core.db import migrate

from trace_cdk import config, environment, functions, log_groups, names, network
from trace_cdk import data as data_mod

HANDLER_DIR = Path(__file__).resolve().parents[1] / "handlers" / "migrations"
RESOURCE_TYPE = "Custom::TraceSchema"


def migrations_hash() -> str:
    """A digest of every migration shipped in trace_core (version and checksum)."""
    digest = hashlib.sha256()
    for migration in migrate.available():
        digest.update(f"{migration.version}:{migration.checksum}\n".encode())
    return digest.hexdigest()


class Migrations(Construct):
    """The migration handler, its provider and the ``Custom::TraceSchema`` resource."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: config.StageConfig,
        net: network.Network,
        data: data_mod.Data,
        layer: lambda_.ILayerVersion,
    ) -> None:
        super().__init__(scope, construct_id)
        handler = functions.TraceFunction(
            self,
            names.SCHEMA_MIGRATIONS,
            stage=stage,
            code_dir=HANDLER_DIR,
            description=f"Trace {stage.stage}: applies schema migrations during deployment",
            timeout_seconds=300,
            layer=layer,
            net=net,
            # A deploy-time function, not a platform deployable: it reads what every platform function reads.
            env=environment.render(
                "migrations",
                stage,
                platform.declaration.FUNCTION_SETTINGS,
                environment.stage_values(
                    stage,
                    database=data.database,
                    database_secret_arn=data.database_secret.secret_arn,
                    buckets={key: bucket.bucket_name for key, bucket in data.buckets.items()},
                ),
                own=environment.LAMBDA,
                deployable=False,
            ),
        )
        data.database_secret.grant_read(handler.function)
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=handler.function,
            log_group=log_groups.log_group(self, "ProviderLogs", stage),
        )
        self.resource = CustomResource(
            self,
            "Schema",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={"MigrationsHash": migrations_hash()},
        )
        # The handler needs the database up and the Secrets Manager endpoint and routes in place.
        self.resource.node.add_dependency(data.database)
        self.resource.node.add_dependency(net)
