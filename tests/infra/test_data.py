"""State: buckets locked down, queues with DLQs, RDS private and encrypted, migrations on deploy."""

from __future__ import annotations

import json
from typing import Any

import pytest
from trace_cdk import migrations
from trace_core import platform
from trace_core.db import migrate
from trace_core.lite import provision

from tests.infra.conftest import Synthesized


def bucket_policy(synth: Synthesized, logical_id: str) -> dict[str, Any]:
    policies = [
        p["Properties"]["PolicyDocument"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logical_id}
    ]
    assert len(policies) == 1, f"{logical_id} should have one bucket policy"
    return policies[0]


def test_every_bucket_is_private_encrypted_and_refuses_plain_http(synthesized: Synthesized) -> None:
    buckets = synthesized.of_type("AWS::S3::Bucket")
    assert len(buckets) == 5  # datasets, results, scratch, bundles, access logs
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }, logical_id
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id
        assert bucket["DeletionPolicy"] == "Retain", logical_id
        denies = [
            s for s in bucket_policy(synthesized, logical_id)["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies and denies[0]["Action"] == "s3:*" and denies[0]["Principal"] == {"AWS": "*"}, logical_id


def test_data_buckets_log_access_to_the_log_bucket(synthesized: Synthesized) -> None:
    data = synthesized.stack.data
    logs_id = synthesized.logical_id(data.access_logs)
    for bucket in data.buckets.values():
        logging = synthesized.resources[synthesized.logical_id(bucket)]["Properties"]["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {"Ref": logs_id}


def _rules(synth: Synthesized, bucket: Any) -> dict[str, dict[str, Any]]:
    props = synth.resources[synth.logical_id(bucket)]["Properties"]
    return {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}


def test_temporary_data_expires(synthesized: Synthesized) -> None:
    # GIVEN the stage's lifecycle settings
    stage, data = synthesized.stage, synthesized.stack.data
    # THEN scratch and results expire whole, datasets only under the staging prefix
    assert _rules(synthesized, data.scratch)["expire"]["ExpirationInDays"] == stage.scratch_expiration_days
    assert _rules(synthesized, data.results)["expire"]["ExpirationInDays"] == stage.results_expiration_days
    staging = _rules(synthesized, data.datasets)["expire-staging"]
    assert staging["Prefix"] == stage.staging_prefix == "staging/"
    assert staging["ExpirationInDays"] == stage.staging_expiration_days
    assert not any("ExpirationInDays" in r and "Prefix" not in r for r in _rules(synthesized, data.datasets).values())
    # AND incomplete multipart uploads are aborted everywhere
    for bucket in data.buckets.values():
        assert _rules(synthesized, bucket)["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
            "DaysAfterInitiation": 1
        }


def test_every_lite_queue_exists_with_its_dlq_and_receive_limit(synthesized: Synthesized) -> None:
    # GIVEN the queues the Lite profile provisions
    queues = {
        q["Properties"]["QueueName"]: (lid, q["Properties"])
        for lid, q in synthesized.of_type("AWS::SQS::Queue").items()
    }
    assert set(queues) == set(provision.QUEUES) | {f"{n}-dlq" for n in provision.QUEUES}
    for name, max_receives in provision.QUEUES.items():
        # THEN each has a redrive policy to its own DLQ after the same number of receives as in Lite
        _, props = queues[name]
        dlq_id, dlq = queues[f"{name}-dlq"]
        assert props["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": max_receives,
        }
        assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
        assert props["SqsManagedSseEnabled"] and dlq["SqsManagedSseEnabled"]


def test_every_queue_refuses_plain_http(synthesized: Synthesized) -> None:
    policies = [p["Properties"] for p in synthesized.of_type("AWS::SQS::QueuePolicy").values()]
    covered = set()
    for policy in policies:
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}:
                covered.update(q["Ref"] for q in policy["Queues"])
    assert covered == set(synthesized.of_type("AWS::SQS::Queue"))


def test_sink_queue_hides_a_message_longer_than_the_sink_runs(synthesized: Synthesized) -> None:
    queue = synthesized.resources[synthesized.logical_id(synthesized.stack.queues[platform.SINK_QUEUE])]
    timeout = platform.PLATFORM.functions["sink"].timeout_seconds
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_database_is_private_encrypted_and_its_password_lives_in_secrets_manager(synthesized: Synthesized) -> None:
    (db,) = synthesized.of_type("AWS::RDS::DBInstance").values()
    props = db["Properties"]
    assert props["Engine"] == "postgres" and props["EngineVersion"].startswith("16.")
    assert props["StorageEncrypted"] is True and props["PubliclyAccessible"] is False
    assert props["DeletionProtection"] is synthesized.stage.database.deletion_protection
    assert db["DeletionPolicy"] == "Snapshot"
    password = json.dumps(props["MasterUserPassword"])
    assert "resolve:secretsmanager" in password and "SecretString:password" in password
    # in the isolated subnets only
    (group,) = synthesized.of_type("AWS::RDS::DBSubnetGroup").values()
    isolated = {synthesized.stack.resolve(s.subnet_id)["Ref"] for s in synthesized.stack.network.vpc.isolated_subnets}
    assert {s["Ref"] for s in group["Properties"]["SubnetIds"]} == isolated
    (parameters,) = synthesized.of_type("AWS::RDS::DBParameterGroup").values()
    assert parameters["Properties"]["Parameters"]["rds.force_ssl"] == "1"


def test_migrations_run_on_deploy_after_the_database_exists(synthesized: Synthesized) -> None:
    (resource,) = synthesized.of_type(migrations.RESOURCE_TYPE).values()
    db_id = next(iter(synthesized.of_type("AWS::RDS::DBInstance")))
    assert db_id in resource["DependsOn"]
    assert resource["Properties"]["MigrationsHash"] == migrations.migrations_hash()
    assert resource["DeletionPolicy"] == "Delete"


def test_migrations_hash_changes_with_any_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the shipped migrations and their hash
    shipped = migrate.available()
    before = migrations.migrations_hash()
    # WHEN one migration's text changes
    changed = [*shipped[:-1], migrate.Migration(shipped[-1].version, shipped[-1].name, shipped[-1].sql + "\n-- edit")]
    monkeypatch.setattr(migrate, "available", lambda: changed)
    # THEN the custom resource's property changes, so CloudFormation runs the migrations again
    assert migrations.migrations_hash() != before
