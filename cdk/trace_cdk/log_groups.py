"""Log groups: every one Trace creates has the stage's retention and is removed with the stack."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

from trace_cdk import config

_RETENTION = dict(zip(config.LOG_RETENTION_DAYS, [m for m in logs.RetentionDays if m.name != "INFINITE"]))


def retention(stage: config.StageConfig) -> logs.RetentionDays:
    """The stage's retention as the CDK enum (the config accepts only the periods CloudWatch allows)."""
    return _RETENTION[stage.log_retention_days]


def log_group(
    scope: Construct, construct_id: str, stage: config.StageConfig, *, name: str | None = None
) -> logs.LogGroup:
    """A log group with the stage's retention. Logs age out by retention, so deleting the stack deletes them."""
    return logs.LogGroup(
        scope, construct_id, log_group_name=name, retention=retention(stage), removal_policy=RemovalPolicy.DESTROY
    )
