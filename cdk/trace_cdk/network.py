"""The network: a VPC with no general egress, VPC endpoints, and the traffic matrix.

Subnets:
- ``isolated`` (no route out): RDS, the Lambda functions, the Query Service,
  the interface endpoints. They reach AWS through VPC endpoints only.
- ``egress`` (route to a NAT gateway): only the two named egress paths: RPC
  egress (the Cryo workers and the chain sync planner Lambda, which reach
  JSON-RPC providers) and delivery egress (the delivery workers' webhooks).
- ``public``: holds the NAT gateways and nothing else.

Security groups never allow all outbound. Every workload may reach the
interface endpoints (HTTPS), S3 through the gateway endpoint (HTTPS to the S3
prefix list) and Postgres; only ``rpc_egress`` and ``delivery_egress`` add an
internet rule, each its own.
"""

from __future__ import annotations

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from trace_cdk import config, log_groups, names

INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}

HTTPS = ec2.Port.tcp(443)
# CDK's own placeholder for "no egress": no host has this address, and ICMP type 252 does not exist.
NO_TRAFFIC = {"CidrIp": "255.255.255.255/32", "Description": "Disallow all traffic", "IpProtocol": "icmp",
              "FromPort": 252, "ToPort": 86}


def closed_group(scope: Construct, group_id: str, *, vpc: ec2.IVpc, description: str) -> ec2.SecurityGroup:
    """A security group that allows nothing until rules are added, each as its own rule resource.

    EC2 gives a new group an allow-all egress rule unless the group resource lists
    egress rules itself; CloudFormation removes that default only once a separate
    egress rule is created. Listing the no-traffic rule inline keeps the group
    closed from its first moment, whatever the order of creation.
    """
    group = ec2.SecurityGroup(
        scope, group_id, vpc=vpc, description=description, allow_all_outbound=False, disable_inline_rules=True
    )
    cfn = group.node.default_child
    assert isinstance(cfn, ec2.CfnSecurityGroup)
    cfn.add_property_override("SecurityGroupEgress", [NO_TRAFFIC])
    # CDK adds the same placeholder as a separate rule; EC2 would refuse the duplicate.
    for child in list(group.node.children):
        if isinstance(child, ec2.CfnSecurityGroupEgress) and child.cidr_ip == NO_TRAFFIC["CidrIp"]:
            group.node.try_remove_child(child.node.id)
    return group


class Network(Construct):
    """VPC, endpoints and one security group per kind of workload."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: config.StageConfig) -> None:
        super().__init__(scope, construct_id)
        flow_logs = log_groups.log_group(self, "FlowLogs", stage)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(stage.vpc_cidr),
            availability_zones=list(stage.availability_zones),
            nat_gateways=stage.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24, map_public_ip_on_launch=False
                ),
                ec2.SubnetConfiguration(name="egress", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22),
            ],
            restrict_default_security_group=True,
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self._keep_restrict_sg_logs(stage)
        self.isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.egress = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

        self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.isolated, self.egress]
        )
        self.endpoints_sg = self._group("Endpoints", "Interface VPC endpoints: HTTPS from Trace workloads only")
        for endpoint_id, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                endpoint_id,
                service=service,
                subnets=self.isolated,
                security_groups=[self.endpoints_sg],
                private_dns_enabled=True,
                open=False,  # ingress comes from the workload groups below, not the whole VPC
            )
        self.s3_prefix_list_id = self._s3_prefix_list(stage)

        self.database_sg = self._group("Database", "RDS PostgreSQL: Postgres from Trace workloads only")
        self.functions_sg = self._group("Functions", "Lambda functions: endpoints, S3 and Postgres only")
        self.query_sg = self._group("Query", "Query Service: endpoints, S3 and Postgres only (no internet)")
        self.rpc_egress_sg = self._group("RpcEgress", "Cryo workers: platform plus JSON-RPC to the chain provider")
        self.delivery_egress_sg = self._group("DeliveryEgress", "Delivery workers: platform plus HTTPS webhooks")
        for group in (self.functions_sg, self.query_sg, self.rpc_egress_sg, self.delivery_egress_sg):
            self._allow_platform(group)
        for port in stage.rpc_egress_ports:
            self.rpc_egress_sg.add_egress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(port), f"RPC egress: JSON-RPC provider on port {port}"
            )
        self.delivery_egress_sg.add_egress_rule(ec2.Peer.any_ipv4(), HTTPS, "Delivery egress: webhooks over HTTPS")

    def _keep_restrict_sg_logs(self, stage: config.StageConfig) -> None:
        """Give the Lambda behind ``restrict_default_security_group`` a log group with the stage's retention.

        CDK creates that function without a log group option; without one, Lambda would
        create a group that never expires.
        """
        provider = Stack.of(self).node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        handler = provider.node.try_find_child("Handler") if provider else None
        if isinstance(handler, CfnResource):
            logs = log_groups.log_group(self, "RestrictDefaultSgLogs", stage)
            handler.add_property_override("LoggingConfig", {"LogGroup": logs.log_group_name})

    def _group(self, group_id: str, description: str) -> ec2.SecurityGroup:
        return closed_group(self, f"{group_id}Sg", vpc=self.vpc, description=description)

    def _allow_platform(self, group: ec2.SecurityGroup) -> None:
        """What every workload needs: the interface endpoints, S3 via the gateway endpoint, Postgres."""
        group.connections.allow_to(self.endpoints_sg, HTTPS, "AWS APIs through the interface endpoints")
        group.add_egress_rule(ec2.Peer.prefix_list(self.s3_prefix_list_id), HTTPS, "S3 through the gateway endpoint")
        group.connections.allow_to(self.database_sg, ec2.Port.tcp(names.DATABASE_PORT), "Postgres")

    def _s3_prefix_list(self, stage: config.StageConfig) -> str:
        """The ID of the AWS-managed S3 prefix list, looked up at deploy time (never at synth)."""
        lookup = cr.AwsCustomResource(
            self,
            "S3PrefixList",
            on_update=cr.AwsSdkCall(
                service="EC2",
                action="describeManagedPrefixLists",
                parameters={"Filters": [{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{stage.region}.s3"]}]},
                physical_resource_id=cr.PhysicalResourceId.of(f"com.amazonaws.{stage.region}.s3"),
                output_paths=["PrefixLists.0.PrefixListId"],
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["ec2:DescribeManagedPrefixLists"], resources=["*"])]
            ),
            install_latest_aws_sdk=False,
            log_group=log_groups.log_group(self, "S3PrefixListLogs", stage),
        )
        return lookup.get_response_field("PrefixLists.0.PrefixListId")
