"""IAM: no wildcard actions nor resources (unless AWS offers nothing narrower), least privilege per role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from trace_core import platform

from tests.infra.conftest import Synthesized

# Actions that have no resource-level permissions: "*" is the only resource they accept.
RESOURCELESS_ACTIONS = {"ecr:GetAuthorizationToken", "ec2:DescribeManagedPrefixLists"}
ALLOWED_MANAGED_POLICIES = {"AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(synth: Synthesized) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner logical id, statement) of every identity policy: AWS::IAM::Policy and inline role policies."""
    for logical_id, policy in synth.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield logical_id, statement
    for logical_id, role in synth.of_type("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield logical_id, statement


def role_statements(synth: Synthesized, role: Any) -> list[dict[str, Any]]:
    role_id = synth.logical_id(role)
    return [
        s for policy in synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions_of(statements: list[dict[str, Any]], effect: str = "Allow") -> set[str]:
    return {a for s in statements if s["Effect"] == effect for a in _as_list(s["Action"])}


def test_no_wildcard_actions_anywhere(synthesized: Synthesized) -> None:
    found = list(statements(synthesized))
    assert found
    for owner, statement in found:
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{owner}: wildcard action {action}"


def test_wildcard_resources_only_for_actions_without_resource_permissions(synthesized: Synthesized) -> None:
    for owner, statement in statements(synthesized):
        if statement["Effect"] == "Allow" and "*" in _as_list(statement["Resource"]):
            assert set(_as_list(statement["Action"])) <= RESOURCELESS_ACTIONS, f"{owner}: {statement}"


def test_managed_policies_are_only_the_lambda_basics(synthesized: Synthesized) -> None:
    for logical_id, role in synthesized.of_type("AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            name = json.dumps(arn).rsplit("/", 1)[-1].strip('"]}')
            assert name in ALLOWED_MANAGED_POLICIES, f"{logical_id}: {arn}"


def test_only_the_outbox_drainer_publishes_to_queues(synthesized: Synthesized) -> None:
    drainer = synthesized.stack.functions.functions["outbox_drainer"]
    senders = set()
    for owner, statement in statements(synthesized):
        if "sqs:SendMessage" in _as_list(statement["Action"]):
            senders.add(owner)
    (drainer_policy,) = senders
    roles = synthesized.resources[drainer_policy]["Properties"]["Roles"]
    assert roles == [{"Ref": synthesized.logical_id(drainer.role)}]


def test_lambda_functions_touch_no_bucket(synthesized: Synthesized) -> None:
    for folder, function in synthesized.stack.functions.functions.items():
        assert not {a for a in actions_of(role_statements(synthesized, function.role)) if a.startswith("s3:")}, folder


def test_query_service_reads_datasets_but_never_staging_and_writes_results(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    found = role_statements(synthesized, stack.services.query.task_definition.task_role)
    datasets = synthesized.logical_id(stack.data.datasets)
    results = synthesized.logical_id(stack.data.results)

    def resources(statement: dict[str, Any]) -> str:
        return json.dumps(statement["Resource"])

    on_datasets = [s for s in found if datasets in resources(s)]
    assert actions_of(on_datasets) == {"s3:GetObject", "s3:ListBucket"}
    (deny,) = [s for s in on_datasets if s["Effect"] == "Deny"]
    assert deny["Action"] == "s3:GetObject" and "/staging/*" in resources(deny)
    assert "s3:PutObject" in actions_of([s for s in found if results in resources(s)])
    assert not {a for a in actions_of(found) if a.startswith("sqs:")}
    assert synthesized.logical_id(stack.data.scratch) not in json.dumps(found)


def test_workers_consume_only_their_own_queue(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    pools = {n: platform.PLATFORM.worker_pools[s.pool].queue for n, s in platform.PLATFORM.services.items() if s.pool}
    assert pools == {"worker": platform.TASK_QUEUE, "delivery": platform.DELIVERY_QUEUE}
    for name, queue in pools.items():
        service = stack.services.services[name]
        found = role_statements(synthesized, service.task_definition.task_role)
        sqs = [s for s in found if any(a.startswith("sqs:") for a in _as_list(s["Action"]))]
        queue_id = synthesized.logical_id(stack.queues[queue])
        assert sqs and all(s["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]} for s in sqs), name
        assert "sqs:SendMessage" not in actions_of(sqs), name


def test_delivery_workers_touch_no_bucket(synthesized: Synthesized) -> None:
    role = synthesized.stack.services.services["delivery"].task_definition.task_role
    assert not {a for a in actions_of(role_statements(synthesized, role)) if a.startswith("s3:")}
