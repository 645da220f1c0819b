"""cdk-nag (AwsSolutions): no unacknowledged finding, every acknowledgment with a reason, and nag really runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from trace_cdk import nag

from tests.infra.conftest import Synthesized


def test_app_synthesizes_with_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    # The session fixture synthesized with the AwsSolutions pack: any finding would have failed it.
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    failures = [p for p in report["pluginReports"] if p["conclusion"] != "success"]
    assert failures == []


def test_every_acknowledgment_names_a_rule_and_says_why(synthesized: Synthesized) -> None:
    found = [
        (path, rule, reason)
        for path, rule, reason in nag.acknowledgments(synthesized.stack)
        if rule.startswith("AwsSolutions")
    ]
    assert found, "expected acknowledgments (e.g. the access-log bucket's own logging)"
    for path, rule, reason in found:
        assert re.fullmatch(r"AwsSolutions-[A-Z]+\d+(\[.+\])?", rule), (path, rule)
        assert len(reason.strip()) >= nag.MIN_REASON, (path, rule, reason)


def test_wildcard_acknowledgments_cover_only_listed_cases(synthesized: Synthesized) -> None:
    reasons = {rule.reason for rule in nag.STATIC_RULES} | {nag.object_keys_rule([]).reason}
    for path, rule, reason in nag.acknowledgments(synthesized.stack):
        if rule.startswith("AwsSolutions-IAM5"):
            assert reason in reasons, (path, rule)


def test_acknowledge_refuses_a_missing_reason_or_an_unknown_rule() -> None:
    import aws_cdk as cdk

    scope = cdk.Stack(cdk.App(), "Scratch")
    with pytest.raises(ValueError, match="expected a sentence"):
        nag.acknowledge(scope, "AwsSolutions-S1", "fine")
    with pytest.raises(ValueError, match="expected an AwsSolutions rule"):
        nag.acknowledge(scope, "S1", "A reason that is long enough to be a sentence.")


def test_nag_fails_synthesis_on_an_uncovered_wildcard(tmp_path: Path) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_s3 as s3

    # GIVEN a small app checked the same way, with a grant on object keys of a listed bucket
    # and one on every object of an unknown bucket
    app = cdk.App(outdir=str(tmp_path / "out"))
    stack = cdk.Stack(app, "NagProbe", env=cdk.Environment(region="us-east-1"))
    bucket = s3.Bucket(stack, "Listed", enforce_ssl=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL)
    nag.acknowledge(bucket, "AwsSolutions-S1", "A probe bucket in a test app: its logs are not the point here.")
    role = iam.Role(stack, "Probe", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects("*")]))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["arn:aws:s3:::somebody-else/*"]))
    nag.check(app)
    # WHEN the wildcards are acknowledged by the app's rules
    uncovered = nag.acknowledge_policy_wildcards(
        stack, [nag.object_keys_rule([stack.resolve(stack.get_logical_id(bucket.node.default_child))])]
    )
    # THEN the unknown bucket's wildcard stays a finding, and synthesis fails on it
    assert [u.split(": ", 1)[1] for u in uncovered] == ["Resource::arn:aws:s3:::somebody-else/*"]
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "out" / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert rules == {"AwsSolutions-IAM5[Resource::arn:aws:s3:::somebody-else/*]"}
