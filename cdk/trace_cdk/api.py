"""The HTTP API: the routes the platform declaration gives functions and services.

- a function with an ``Http`` trigger (the ``dispatcher_api`` Lambda: ``ANY /{proxy+}``)
  gets its routes with payload format 2.0 (Powertools ``APIGatewayHttpResolver``).
  Routes with ``auth="iam"``: callers sign requests with SigV4; only principals
  granted ``execute-api:Invoke`` get through.
- a service with routes (the Query Service: ``POST /v1/query``, ``ANY /v1/query/{proxy+}``
  and ``POST /v1/task-query``) is reached through a VPC link to its internal load
  balancer. Its routes are ``auth="none"``: the Query Service verifies the Bearer
  token (user JWT or capability token, with its dataset grants) itself.

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
from trace_core import platform

from trace_cdk import config, log_groups, nag, names, network
from trace_cdk import services as services_mod

PAYLOAD_FORMAT = apigwv2.PayloadFormatVersion.VERSION_2_0

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
        functions: dict[str, lambda_.IFunction],
        services: services_mod.Services,
        declared: platform.Platform = platform.PLATFORM,
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
        for name, trigger in declared.http_functions().items():
            integration = integrations.HttpLambdaIntegration(
                names.function_id(name), functions[name], payload_format_version=PAYLOAD_FORMAT
            )
            self._routes(trigger.routes, integration)

        link_sg = network.closed_group(
            self, "VpcLinkSg", vpc=net.vpc, description="HTTP API VPC link: to the Query Service load balancer only"
        )
        link_sg.connections.allow_to(services.lb_sg, ec2.Port.tcp(services_mod.LB_PORT), "Query Service load balancer")
        self.vpc_link = apigwv2.VpcLink(self, "VpcLink", vpc=net.vpc, subnets=net.isolated, security_groups=[link_sg])
        query = integrations.HttpAlbIntegration("Query", services.listener, vpc_link=self.vpc_link)
        for spec in declared.services.values():
            self._routes(spec.routes, query)

    def _routes(self, routes: tuple[platform.HttpRoute, ...], integration: apigwv2.HttpRouteIntegration) -> None:
        for route in routes:
            # IAM is the API's default authorizer; "none" routes authorize in the service itself.
            authorizer = apigwv2.HttpNoneAuthorizer() if route.auth == "none" else None
            for added in self.http_api.add_routes(
                path=route.path, methods=[apigwv2.HttpMethod(route.method)], integration=integration,
                authorizer=authorizer,
            ):
                if route.auth == "none":
                    nag.acknowledge(
                        added,
                        "AwsSolutions-APIG4",
                        "The Query Service verifies the Bearer token and its dataset grants itself (invariant 9).",
                    )

    @property
    def url(self) -> str:
        return self.http_api.api_endpoint
