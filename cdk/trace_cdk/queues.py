"""SQS: the queues of the platform declaration, each with its own DLQ and redrive policy.

The queues, their DLQ names and receive limits come from ``trace_core.platform``
(``PLATFORM.queues``), which the Lite profile provisions too, so both profiles
have the same queues under the same names. Queues only carry wake-ups
(invariant 1): encryption and TLS are still enforced.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from trace_core import platform

# Messages wait this long in a DLQ for a human (the SQS maximum).
DLQ_RETENTION = Duration.days(14)
# A queue no function drains keeps SQS's default visibility; its consumers set their own per receive.
DEFAULT_VISIBILITY = Duration.seconds(30)


class Queues(Construct):
    """One queue and one DLQ per declared queue; ``visibility`` overrides a queue's visibility timeout."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        visibility: Mapping[str, Duration],
        declared: platform.Platform = platform.PLATFORM,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        for name, queue in declared.queues.items():
            construct_name = "".join(part.title() for part in name.split("-"))
            dlq = sqs.Queue(
                self,
                f"{construct_name}Dlq",
                queue_name=queue.dlq,
                retention_period=DLQ_RETENTION,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            self.dlqs[name] = dlq
            self.queues[name] = sqs.Queue(
                self,
                construct_name,
                queue_name=name,
                visibility_timeout=visibility.get(name, DEFAULT_VISIBILITY),
                retention_period=Duration.days(4),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=queue.max_receives),
            )

    def __getitem__(self, name: str) -> sqs.Queue:
        if name not in self.queues:
            raise KeyError(f"no queue {name!r}: expected one of {sorted(self.queues)} (trace_core.platform)")
        return self.queues[name]
