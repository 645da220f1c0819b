"""State: RDS PostgreSQL (the truth), its credentials in Secrets Manager, and the S3 buckets.

Buckets are encrypted, block all public access, refuse plain HTTP, log access
to a separate bucket, and expire what is temporary: scratch, results, the
staging prefix of datasets, and incomplete multipart uploads. Buckets and the
database survive ``cdk destroy`` (retained / snapshotted): data is not
removed by accident.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from trace_cdk import config, log_groups, nag, names, network

# A full version, upgraded on purpose by changing it here: with RDS's automatic minor
# upgrades the instance would drift ahead of the template, and the next deploy would
# ask for a downgrade. Postgres 16 as in Lite (pgserver).
ENGINE = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_13)


class Data(Construct):
    """The database, its credentials and the buckets."""

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: config.StageConfig, net: network.Network
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire", expiration=Duration.days(stage.access_log_expiration_days))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This bucket receives the server access logs of the other buckets; logging it into itself would loop.",
        )
        self.datasets = self._bucket(
            "Datasets",
            versioned=True,
            rules=[
                s3.LifecycleRule(
                    id="expire-staging",
                    prefix=stage.staging_prefix,
                    expiration=Duration.days(stage.staging_expiration_days),
                ),
                # Committed objects are never overwritten; old versions only come from mistakes or tampering.
                s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=Duration.days(30)),
            ],
        )
        self.results = self._bucket(
            "Results", rules=[s3.LifecycleRule(id="expire", expiration=Duration.days(stage.results_expiration_days))]
        )
        self.scratch = self._bucket(
            "Scratch", rules=[s3.LifecycleRule(id="expire", expiration=Duration.days(stage.scratch_expiration_days))]
        )
        # Signed user-function archives under their content address: written once, never overwritten, kept
        # while a version is registered (docs/specs/udf.md).
        self.bundles = self._bucket("Bundles", versioned=True, rules=[
            s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=Duration.days(30)),
        ])
        self.staging_prefix = stage.staging_prefix
        self.database = self._database(stage, net)
        self.database_secret: secretsmanager.ISecret = self.database.secret  # type: ignore[assignment]
        nag.acknowledge(
            self.database.node.find_child("Secret"),  # .secret is the attachment; the finding is on the secret
            "AwsSolutions-SMG4",
            "Rotation is off until every deployable re-reads the secret on authentication failure; "
            "rotate by hand with docs/deploy.md meanwhile.",
        )

    @property
    def buckets(self) -> dict[str, s3.Bucket]:
        return {"datasets": self.datasets, "results": self.results, "scratch": self.scratch, "bundles": self.bundles}

    def _bucket(self, bucket_id: str, *, rules: list[s3.LifecycleRule], versioned: bool = False) -> s3.Bucket:
        abort_uploads = s3.LifecycleRule(
            id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
        )
        return s3.Bucket(
            self,
            bucket_id,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{bucket_id.lower()}/",
            lifecycle_rules=[*rules, abort_uploads],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _database(self, stage: config.StageConfig, net: network.Network) -> rds.DatabaseInstance:
        size = stage.database
        identifier = f"{names.PROJECT}-{stage.stage}"
        # Created before the instance so that RDS writes into a group with our retention
        # (RDS's own cloudwatch_logs_retention would add a log-retention Lambda).
        postgres_logs = log_groups.log_group(
            self, "PostgresLogs", stage, name=f"/aws/rds/instance/{identifier}/postgresql"
        )
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=ENGINE,
            description=f"Trace {stage.stage}: TLS only, slow statements logged",
            parameters={"rds.force_ssl": "1", "log_min_duration_statement": "1000"},
        )
        database = rds.DatabaseInstance(
            self,
            "Postgres",
            instance_identifier=identifier,
            engine=ENGINE,
            instance_type=ec2.InstanceType(size.instance_type),
            vpc=net.vpc,
            vpc_subnets=net.isolated,
            security_groups=[net.database_sg],
            credentials=rds.Credentials.from_generated_secret(names.DATABASE_USER),
            database_name=names.DATABASE_NAME,
            port=names.DATABASE_PORT,
            parameter_group=parameters,
            storage_encrypted=True,
            storage_type=rds.StorageType.GP3,
            allocated_storage=size.allocated_storage_gb,
            max_allocated_storage=size.max_allocated_storage_gb,
            multi_az=size.multi_az,
            backup_retention=Duration.days(size.backup_retention_days),
            deletion_protection=size.deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT,
            publicly_accessible=False,
            iam_authentication=True,
            auto_minor_version_upgrade=False,
            cloudwatch_logs_exports=["postgresql"],
        )
        database.node.add_dependency(postgres_logs)
        nag.acknowledge(
            database,
            "AwsSolutions-RDS11",
            "The default port is not a control: only Trace workload security groups may reach the database.",
        )
        if not size.multi_az:
            nag.acknowledge(
                database, "AwsSolutions-RDS3", f"Stage {stage.stage} runs single-AZ by choice (database.multi_az)."
            )
        if not size.deletion_protection:
            nag.acknowledge(
                database,
                "AwsSolutions-RDS10",
                f"Stage {stage.stage} is disposable (database.deletion_protection is false); removal takes a snapshot.",
            )
        return database
