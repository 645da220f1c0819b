"""Alarms and the dashboard. Every alarm notifies one SNS topic (add an e-mail with ``alarm_email``).

Alarms:
- a DLQ holds a message (any DLQ);
- a platform Lambda function errors or is throttled;
- the task failure rate of a worker service (``TasksFailed`` / (``TasksFailed`` +
  ``TasksCompleted``)) exceeds ``task_failure_rate_percent`` over 15 minutes;
- the oldest unpublished outbox row is older than ``outbox_age_seconds``.

The last two watch metrics the platform emits (names in :mod:`trace_cdk.names`);
no data means no alarm.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from trace_core import platform

from trace_cdk import config, names
from trace_cdk import queues as queues_mod

FAILURE_WINDOW = Duration.minutes(15)
OUTBOX_PERIODS = 3


def _title(name: str) -> str:
    return "".join(part.title() for part in name.replace("-", "_").split("_"))


class Observability(Construct):
    """The alarm topic, the alarms (``.alarms`` by construct id) and one dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: config.StageConfig,
        queues: queues_mod.Queues,
        functions: dict[str, lambda_.IFunction],
        services: dict[str, ecs.FargateService],
    ) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        self.topic = sns.Topic(self, "AlarmTopic", display_name=f"Trace {stage.stage} alarms", enforce_ssl=True)
        if stage.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(stage.alarm_email))
        self.alarms: dict[str, cw.Alarm] = {}

        for queue_name, dlq in queues.dlqs.items():
            self._alarm(
                f"{_title(queue_name)}DlqDepth",
                dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
                threshold=0,
                description=f"{names.dlq_name(queue_name)} holds messages: inspect them, fix the cause, redrive",
            )
        for folder, function in functions.items():
            period = Duration.minutes(5)
            self._alarm(
                f"{_title(folder)}Errors",
                function.metric_errors(period=period, statistic="Sum"),
                threshold=0,
                description=f"Lambda {folder} raised errors",
            )
            self._alarm(
                f"{_title(folder)}Throttles",
                function.metric_throttles(period=period, statistic="Sum"),
                threshold=0,
                description=f"Lambda {folder} was throttled (concurrency limit reached)",
            )
        self.failure_rates = {
            name: self._failure_rate(name)
            for name in services
            if platform.PLATFORM.services[name].pool is not None  # the workers emit the task metrics
        }
        for name, rate in self.failure_rates.items():
            self._alarm(
                f"{_title(name)}TaskFailureRate",
                rate,
                threshold=stage.task_failure_rate_percent,
                description=(
                    f"More than {stage.task_failure_rate_percent}% of {name} task attempts failed in 15 minutes"
                ),
            )
        self.outbox_age = self._metric(
            names.METRIC_OUTBOX_OLDEST_AGE, names.OUTBOX_DRAINER, "Maximum", Duration.minutes(1)
        )
        self._alarm(
            "OutboxAge",
            self.outbox_age,
            threshold=stage.outbox_age_seconds,
            periods=OUTBOX_PERIODS,
            description=(
                f"The oldest unpublished outbox row is older than {stage.outbox_age_seconds} s: "
                "is the drainer running?"
            ),
        )
        self.dashboard = self._dashboard(queues, functions, services)

    def _metric(self, metric_name: str, component: str, statistic: str, period: Duration) -> cw.Metric:
        return cw.Metric(
            namespace=names.METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"service": names.service_name(component)},
            statistic=statistic,
            period=period,
        )

    def _failure_rate(self, component: str) -> cw.MathExpression:
        # Metric ids must be unique within a graph that shows several services' rates.
        failed, completed = f"failed_{component}", f"completed_{component}"
        return cw.MathExpression(
            expression=f"IF({failed} + {completed} > 0, 100 * {failed} / ({failed} + {completed}), 0)",
            using_metrics={
                failed: self._metric(names.METRIC_TASKS_FAILED, component, "Sum", FAILURE_WINDOW),
                completed: self._metric(names.METRIC_TASKS_COMPLETED, component, "Sum", FAILURE_WINDOW),
            },
            label=f"{component} task failure rate (%)",
            period=FAILURE_WINDOW,
        )

    def _alarm(
        self,
        alarm_id: str,
        metric: cw.Metric | cw.MathExpression,
        *,
        threshold: float,
        description: str,
        periods: int = 1,
    ) -> cw.Alarm:
        alarm = metric.create_alarm(
            self,
            alarm_id,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=f"Trace {self._stage.stage}: {description}",
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarms[alarm_id] = alarm
        return alarm

    def _dashboard(
        self,
        queues: queues_mod.Queues,
        functions: dict[str, lambda_.IFunction],
        services: dict[str, ecs.FargateService],
    ) -> cw.Dashboard:
        period = Duration.minutes(5)
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"trace-{self._stage.stage}")
        dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=4)
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Lambda invocations and errors",
                left=[f.metric_invocations(period=period, label=n) for n, f in functions.items()],
                right=[f.metric_errors(period=period, label=f"{n} errors") for n, f in functions.items()],
                width=12,
            ),
            cw.GraphWidget(
                title="Lambda duration (p99)",
                left=[f.metric_duration(period=period, statistic="p99", label=n) for n, f in functions.items()],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Queue depth and oldest message age",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=period, label=n)
                    for n, q in queues.queues.items()
                ],
                right=[
                    q.metric_approximate_age_of_oldest_message(period=period, label=f"{n} age")
                    for n, q in queues.queues.items()
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="DLQ depth",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=period, label=names.dlq_name(n))
                    for n, q in queues.dlqs.items()
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Task failure rate (%) and outbox age (s)",
                left=list(self.failure_rates.values()),
                right=[self.outbox_age],
                width=12,
            ),
            cw.GraphWidget(
                title="Fargate CPU and memory (%)",
                left=[s.metric_cpu_utilization(period=period, label=f"{n} cpu") for n, s in services.items()],
                right=[s.metric_memory_utilization(period=period, label=f"{n} memory") for n, s in services.items()],
                width=12,
            ),
        )
        return dashboard
