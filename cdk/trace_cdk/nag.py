"""cdk-nag (AwsSolutions pack) on every stack, and every acknowledgment with its reason.

cdk-nag 3 reports through CDK's validation framework: an unacknowledged finding
makes ``app.synth()`` (and ``cdk synth``) fail. Findings are acknowledged on the
construct they concern, with :func:`acknowledge`, which refuses a rule id
without a pack prefix or a reason shorter than a sentence.

IAM wildcard findings (``AwsSolutions-IAM5[...]``) name the exact resource, so
they are acknowledged by :func:`acknowledge_policy_wildcards` from a short list
of :class:`WildcardRule` s: each says which wildcard is acceptable, for which
actions only, and why. A wildcard that no rule covers stays a finding.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import aws_cdk as cdk
import cdk_nag
from aws_cdk import aws_iam as iam
from constructs import IConstruct

MIN_REASON = 30

# AWS-managed policies CDK attaches to Lambda roles.
LAMBDA_MANAGED_POLICIES = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
)


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` (and everything under it), with the reason it is fine."""
    if not re.fullmatch(r"AwsSolutions-[A-Z]+\d+(\[.+\])?", rule_id):
        raise ValueError(f"rule_id {rule_id!r}: expected an AwsSolutions rule such as 'AwsSolutions-S1'")
    if len(reason.strip()) < MIN_REASON:
        raise ValueError(f"reason for {rule_id} on {scope.node.path}: expected a sentence saying why, got {reason!r}")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def check(app: cdk.App) -> None:
    """Run the AwsSolutions pack on the whole app at synth."""
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))


def acknowledgments(root: IConstruct) -> Iterator[tuple[str, str, str]]:
    """Every acknowledgment under ``root`` as (construct path, rule id, reason)."""
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY and entry.data:
                for key, reason in dict(entry.data).items():
                    yield construct.node.path, re.sub(r"^annotation::", "", key, flags=re.IGNORECASE), str(reason)


# ---------------------------------------------------------------- IAM wildcards


@dataclasses.dataclass(frozen=True)
class WildcardRule:
    """A wildcard resource that is acceptable for ``actions`` (every action of the statement must be one)."""

    resource: re.Pattern[str]
    actions: frozenset[str]
    reason: str


def object_keys_rule(bucket_logical_ids: Iterable[str]) -> WildcardRule:
    """Object-level S3 actions on the keys (or a prefix) of one of the named buckets."""
    ids = "|".join(re.escape(i) for i in sorted(bucket_logical_ids))
    return WildcardRule(
        resource=re.compile(rf"<({ids})\.Arn>/([A-Za-z0-9_.-]+/)*\*"),
        actions=frozenset(
            {
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            }
        ),
        reason="Object-level S3 actions need object ARNs; this one is scoped to the keys of one Trace bucket (prefix).",
    )


STATIC_RULES = (
    WildcardRule(
        resource=re.compile(r"\*"),
        actions=frozenset({"ecr:GetAuthorizationToken"}),
        reason="ecr:GetAuthorizationToken has no resource-level permissions; image pulls are scoped to the repository.",
    ),
    WildcardRule(
        resource=re.compile(r"\*"),
        actions=frozenset({"ec2:DescribeManagedPrefixLists"}),
        reason="A read-only Describe call without resource-level permissions (S3 prefix list lookup at deploy).",
    ),
    WildcardRule(
        resource=re.compile(r"<[A-Za-z0-9]+\.Arn>:\*"),
        actions=frozenset({"lambda:InvokeFunction"}),
        reason="The custom-resource framework invokes the versions of its one handler function.",
    ),
)


def flatten(reference: Any) -> str:
    """A resolved CloudFormation value as cdk-nag flattens it (utils/flatten-cfn-reference.js)."""
    if reference is None:
        return ""
    if isinstance(reference, str):
        return reference.replace("${", "<").replace("}", ">")
    if isinstance(reference, dict):
        if "Fn::Join" in reference:
            delimiter, items = reference["Fn::Join"]
            return delimiter.join(flatten(item) for item in items)
        if "Fn::Sub" in reference:
            return flatten(reference["Fn::Sub"])
        if "Fn::GetAtt" in reference:
            resource, attribute = reference["Fn::GetAtt"]
            return f"<{flatten(resource)}.{flatten(attribute)}>"
        if "Fn::ImportValue" in reference:
            return flatten(reference["Fn::ImportValue"])
        if "Ref" in reference:
            return f"<{flatten(reference['Ref'])}>"
    return json.dumps(reference, separators=(",", ":"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _documents(construct: IConstruct) -> list[Any]:
    stack = cdk.Stack.of(construct)
    if isinstance(construct, (iam.CfnPolicy, iam.CfnManagedPolicy)):
        return [stack.resolve(construct.policy_document)]
    if isinstance(construct, iam.CfnRole):
        return [stack.resolve(policy)["policyDocument"] for policy in stack.resolve(construct.policies) or []]
    return []


def wildcard_findings(construct: IConstruct) -> list[tuple[str, set[str]]]:
    """(finding, actions of the statement) for each wildcard cdk-nag will report on this policy construct."""
    found: list[tuple[str, set[str]]] = []
    for document in _documents(construct):
        for statement in (document or {}).get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            actions = {str(a) for a in _as_list(statement.get("Action", []))}
            found += [(f"Action::{a}", actions) for a in sorted(actions) if "*" in a]
            for resource in _as_list(statement.get("Resource", [])):
                flat = flatten(resource)
                if "*" in flat:
                    found.append((f"Resource::{flat}", actions))
    return found


def acknowledge_policy_wildcards(stack: cdk.Stack, rules: Iterable[WildcardRule]) -> list[str]:
    """Acknowledge each IAM5 finding that a rule covers; returns the findings left uncovered."""
    rules = list(rules)
    uncovered: list[str] = []
    for construct in stack.node.find_all():
        for finding, actions in wildcard_findings(construct):
            kind, _, target = finding.partition("::")
            rule = next(
                (r for r in rules if kind == "Resource" and r.resource.fullmatch(target) and actions <= r.actions),
                None,
            )
            if rule is None:
                uncovered.append(f"{construct.node.path}: {finding}")
                continue
            acknowledge(construct, f"AwsSolutions-IAM5[{finding}]", rule.reason)
    return uncovered
