"""Network: no general egress, endpoints for every AWS API the platform uses, named egress paths only."""

from __future__ import annotations

from typing import Any

from trace_cdk import network
from trace_core import platform

from tests.infra.conftest import Synthesized

NO_TRAFFIC_CIDR = "255.255.255.255/32"


def _group_ref(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "GroupId"]}


def egress_of(synth: Synthesized, group: Any) -> list[dict[str, Any]]:
    """Every egress rule of ``group``: inline ones and separate rule resources."""
    logical_id = synth.logical_id(group)
    inline = synth.resources[logical_id]["Properties"].get("SecurityGroupEgress")
    assert inline is not None, f"{logical_id} lists no egress inline: EC2 would add allow-all egress"
    standalone = [
        r["Properties"]
        for r in synth.of_type("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == _group_ref(logical_id)
    ]
    return [rule for rule in inline + standalone if rule.get("CidrIp") != NO_TRAFFIC_CIDR]


def destinations(synth: Synthesized, group: Any) -> set[tuple[str, int]]:
    """(destination, port) of each egress rule, destinations named by logical id or CIDR."""
    found = set()
    for rule in egress_of(synth, group):
        if "DestinationSecurityGroupId" in rule:
            target = rule["DestinationSecurityGroupId"]["Fn::GetAtt"][0]
        elif "DestinationPrefixListId" in rule:
            target = "s3-prefix-list"
        else:
            target = rule["CidrIp"]
        assert rule["IpProtocol"] == "tcp" and rule["FromPort"] == rule["ToPort"], rule
        found.add((target, rule["FromPort"]))
    return found


def test_query_service_reaches_only_the_endpoints_s3_and_postgres(synthesized: Synthesized) -> None:
    # GIVEN the synthesized network
    net = synthesized.stack.network
    # WHEN the Query Service's egress rules are collected (inline and separate)
    found = destinations(synthesized, net.query_sg)
    # THEN they allow exactly the interface endpoints, S3 through the gateway endpoint, and RDS
    assert found == {
        (synthesized.logical_id(net.endpoints_sg), 443),
        ("s3-prefix-list", 443),
        (synthesized.logical_id(net.database_sg), 5432),
    }


def test_lambda_functions_reach_only_the_endpoints_s3_and_postgres(synthesized: Synthesized) -> None:
    net = synthesized.stack.network
    assert destinations(synthesized, net.functions_sg) == destinations(synthesized, net.query_sg)


def test_only_the_named_egress_paths_reach_the_internet(synthesized: Synthesized) -> None:
    # GIVEN every security group in the template
    net = synthesized.stack.network
    internet = {}
    for logical_id in synthesized.of_type("AWS::EC2::SecurityGroup"):
        group = next(g for g in _groups(synthesized) if synthesized.logical_id(g) == logical_id)
        cidrs = {(d, port) for d, port in destinations(synthesized, group) if "/" in d}
        if cidrs:
            internet[logical_id] = cidrs
    # THEN only RPC egress (the Cryo workers) and delivery egress (webhooks) have internet rules, HTTPS only
    assert internet == {
        synthesized.logical_id(net.rpc_egress_sg): {("0.0.0.0/0", port) for port in synthesized.stage.rpc_egress_ports},
        synthesized.logical_id(net.delivery_egress_sg): {("0.0.0.0/0", 443)},
    }


def _groups(synth: Synthesized) -> list[Any]:
    from aws_cdk import aws_ec2 as ec2

    return [c for c in synth.stack.node.find_all() if isinstance(c, ec2.SecurityGroup)]


def test_no_security_group_accepts_traffic_from_anywhere(synthesized: Synthesized) -> None:
    ingress = [r["Properties"] for r in synthesized.of_type("AWS::EC2::SecurityGroupIngress").values()]
    for group in synthesized.of_type("AWS::EC2::SecurityGroup").values():
        ingress += group["Properties"].get("SecurityGroupIngress") or []
    assert ingress, "expected some ingress rules"
    assert all("SourceSecurityGroupId" in rule for rule in ingress), ingress


def test_isolated_subnets_have_no_route_out(synthesized: Synthesized) -> None:
    # GIVEN the route tables of the isolated and egress subnets
    vpc = synthesized.stack.network.vpc
    routes = list(synthesized.of_type("AWS::EC2::Route").values())

    def default_routes(subnets: list[Any]) -> list[dict[str, Any]]:
        tables = {synthesized.stack.resolve(s.route_table.route_table_id)["Ref"] for s in subnets}
        return [
            r["Properties"]
            for r in routes
            if r["Properties"]["RouteTableId"]["Ref"] in tables
            and r["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0"
        ]

    # THEN isolated subnets (RDS, Lambda, Query Service) have no default route, egress subnets go via NAT
    assert default_routes(vpc.isolated_subnets) == []
    egress = default_routes(vpc.private_subnets)
    assert egress and all("NatGatewayId" in r for r in egress)
    assert len(synthesized.of_type("AWS::EC2::NatGateway")) == synthesized.stage.nat_gateways


def test_vpc_endpoints_cover_every_aws_api_the_platform_calls(synthesized: Synthesized) -> None:
    endpoints = list(synthesized.of_type("AWS::EC2::VPCEndpoint").values())
    services = {}
    for endpoint in endpoints:
        name = endpoint["Properties"]["ServiceName"]
        flat = name if isinstance(name, str) else "".join(str(p) for p in name["Fn::Join"][1])
        services[flat.rsplit(".", 1)[-1] if "ecr" not in flat else flat.split(".", 3)[-1]] = endpoint["Properties"]
    assert set(services) == {"s3", "sqs", "secretsmanager", "logs", "ecr.api", "ecr.dkr", "sts"}
    assert services["s3"]["VpcEndpointType"] == "Gateway"
    interface = [p for key, p in services.items() if key != "s3"]
    assert len(interface) == len(network.INTERFACE_ENDPOINTS)
    assert all(p["VpcEndpointType"] == "Interface" and p["PrivateDnsEnabled"] for p in interface)


def test_workloads_sit_in_the_subnets_of_their_egress_path(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    isolated = {stack.resolve(s.subnet_id)["Ref"] for s in stack.network.vpc.isolated_subnets}
    egress = {stack.resolve(s.subnet_id)["Ref"] for s in stack.network.vpc.private_subnets}

    def subnets(config: dict[str, Any]) -> set[str]:
        return {s["Ref"] for s in config.get("Subnets") or config["SubnetIds"]}

    # Lambda: isolated, except the functions that poll JSON-RPC providers (RPC egress, like the Cryo workers)
    in_vpc = {lid: fn["Properties"]["VpcConfig"] for lid, fn in synthesized.of_type("AWS::Lambda::Function").items()
              if "VpcConfig" in fn["Properties"]}
    assert len(in_vpc) == len(stack.functions.functions) + 1  # the platform functions and the migrations handler
    rpc_group = {"Fn::GetAtt": [synthesized.logical_id(stack.network.rpc_egress_sg), "GroupId"]}
    for folder, function in stack.functions.functions.items():
        config = in_vpc[synthesized.logical_id(function)]
        if platform.PLATFORM.functions[folder].rpc_egress:
            assert subnets(config) == egress and config["SecurityGroupIds"] == [rpc_group], folder
        else:
            assert subnets(config) == isolated, folder
    assert [f for f, spec in platform.PLATFORM.functions.items() if spec.rpc_egress] == ["chain_sync_planner"]
    placement = {
        name: synthesized.resources[synthesized.logical_id(service)]["Properties"]["NetworkConfiguration"][
            "AwsvpcConfiguration"
        ]
        for name, service in stack.services.services.items()
    }
    assert subnets(placement["query"]) == isolated
    assert subnets(placement["worker"]) == egress and subnets(placement["delivery"]) == egress
    assert all(p["AssignPublicIp"] == "DISABLED" for p in placement.values())


def test_vpc_traffic_is_logged(synthesized: Synthesized) -> None:
    flow_logs = list(synthesized.of_type("AWS::EC2::FlowLog").values())
    assert len(flow_logs) == 1 and flow_logs[0]["Properties"]["TrafficType"] == "ALL"
