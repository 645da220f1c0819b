"""Task outcome metrics from a long-running worker (the task failure-rate alarm reads them).

CloudWatch embedded metric format on stdout through Powertools; the service
dimension comes from ``POWERTOOLS_SERVICE_NAME`` (the worker and delivery
services run the same code). Off unless ``TRACE_EMIT_METRICS`` is set.
"""

from __future__ import annotations

import threading

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "Trace"


class TaskMetrics:
    def __init__(self, enabled: bool) -> None:
        self._metrics = Metrics(namespace=NAMESPACE) if enabled else None
        self._lock = threading.Lock()

    def record(self, *, completed: int, failed: int) -> None:
        """Publish one batch's outcomes now (a worker has no invocation end to flush at)."""
        if self._metrics is None or not (completed or failed):
            return
        with self._lock:
            self._metrics.add_metric(name="TasksCompleted", unit=MetricUnit.Count, value=completed)
            self._metrics.add_metric(name="TasksFailed", unit=MetricUnit.Count, value=failed)
            self._metrics.flush_metrics()
