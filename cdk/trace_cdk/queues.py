"""SQS: the task queues and the dataset-buffer queue, each with its own DLQ and redrive policy.

The set of queues and their receive limits come from the Lite profile
(``trace_core.lite.provision.QUEUES``), so both profiles have the same queues
under the same names. Queues only carry wake-ups (invariant 1): encryption and
TLS are still enforced.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from trace_cdk import names

# Messages wait this long in a DLQ for a human (the SQS maximum).
DLQ_RETENTION = Duration.days(14)


class Queues(Construct):
    """One queue and one DLQ per name in ``names.QUEUE_MAX_RECEIVES``."""

    def __init__(self, scope: Construct, construct_id: str, *, visibility: dict[str, Duration]) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        for name, max_receives in names.QUEUE_MAX_RECEIVES.items():
            construct_name = "".join(part.title() for part in name.split("-"))
            dlq = sqs.Queue(
                self,
                f"{construct_name}Dlq",
                queue_name=names.dlq_name(name),
                retention_period=DLQ_RETENTION,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            self.dlqs[name] = dlq
            self.queues[name] = sqs.Queue(
                self,
                construct_name,
                queue_name=name,
                visibility_timeout=visibility.get(name, Duration.seconds(30)),
                retention_period=Duration.days(4),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=max_receives),
            )

    def __getitem__(self, name: str) -> sqs.Queue:
        if name not in self.queues:
            raise KeyError(f"no queue {name!r}: expected one of {sorted(self.queues)} (trace_core.lite.provision.QUEUES)")
        return self.queues[name]
