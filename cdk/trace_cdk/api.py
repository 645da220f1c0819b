"""The HTTP API: the dispatcher API (IAM-signed) and the Query Service's ``/v1/query`` routes.

- ``ANY /{proxy+}`` -> the ``dispatcher_api`` Lambda, payload format 2.0
  (Powertools ``APIGatewayHttpResolver``). Callers sign requests with SigV4;
  only principals granted ``execute-api:Invoke`` get through.
- ``POST /v1/query``, ``ANY /v1/query/{proxy+}`` and ``POST /v1/task-query`` ->
  the Query Service through a VPC link to its internal load balancer. The Query
  Service verifies the Bearer token (user JWT or capability token, with its
  dataset grants) itself, so API Gateway does not authorize these.

The ``$default`` stage logs every request as JSON and is throttled per stage.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from trace_cdk import config, log_groups, nag, network
from trace_cdk import services as services_mod

PAYLOAD_FORMAT = apigwv2.PayloadFormatVersion.VERSION_2_0
QUERY_ROUTES = (
    ("/v1/query", apigwv2.HttpMethod.POST),
    ("/v1/query/{proxy+}", apigwv2.HttpMethod.ANY),
    ("/v1/task-query", apigwv2.HttpMethod.POST),
)

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "caller": "$context.identity.caller",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
    },
    separators=(",", ":"),
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    """IAccessLogSettings is a jsii interface, not a struct: Python implements it with a class."""

    def __init__(self, destination: apigwv2.IAccessLogDestination, log_format: str) -> None:
        self._destination = destination
        self._format = apigw.AccessLogFormat.custom(log_format)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


class Api(Construct):
    """The HTTP API, its ``$default`` stage, the routes and the VPC link to the Query Service."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: config.StageConfig,
        net: network.Network,
        dispatcher: lambda_.IFunction,
        services: services_mod.Services,
    ) -> None:
        super().__init__(scope, construct_id)
        self.http_api = apigwv2.HttpApi(
            self,
            "Http",
            api_name=f"trace-{stage.stage}",
            description=f"Trace {stage.stage}: dispatcher API and Query Service",
            create_default_stage=False,
            default_authorizer=authorizers.HttpIamAuthorizer(),
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            access_log_settings=_AccessLogs(
                apigwv2.LogGroupLogDestination(log_groups.log_group(self, "AccessLogs", stage)), ACCESS_LOG_FORMAT
            ),
            throttle=apigwv2.ThrottleSettings(rate_limit=stage.api_throttle_rate, burst_limit=stage.api_throttle_burst),
        )
        self.http_api.add_routes(
            path="/{proxy+}",
            methods=[apigwv2.HttpMethod.ANY],
            integration=integrations.HttpLambdaIntegration(
                "Dispatcher", dispatcher, payload_format_version=PAYLOAD_FORMAT
            ),
        )

        link_sg = network.closed_group(
            self, "VpcLinkSg", vpc=net.vpc, description="HTTP API VPC link: to the Query Service load balancer only"
        )
        link_sg.connections.allow_to(services.lb_sg, ec2.Port.tcp(services_mod.LB_PORT), "Query Service load balancer")
        self.vpc_link = apigwv2.VpcLink(self, "VpcLink", vpc=net.vpc, subnets=net.isolated, security_groups=[link_sg])
        query = integrations.HttpAlbIntegration("Query", services.listener, vpc_link=self.vpc_link)
        for path, method in QUERY_ROUTES:
            for route in self.http_api.add_routes(
                path=path, methods=[method], integration=query, authorizer=apigwv2.HttpNoneAuthorizer()
            ):
                nag.acknowledge(
                    route,
                    "AwsSolutions-APIG4",
                    "The Query Service verifies the Bearer token and its dataset grants itself (invariant 9).",
                )

    @property
    def url(self) -> str:
        return self.http_api.api_endpoint
