"""How a worker behaves: :class:`WorkerConfig` (validated on construction)."""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid
from typing import Literal

from trace_core import platform
from trace_core.dispatcher import models
from trace_core.worker import errors

StopMode = Literal["finish", "abandon"]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    """How a worker behaves. Defaults suit Lite and the benchmark alike."""

    queue: str = platform.TASK_QUEUE
    worker_id: str = dataclasses.field(default_factory=default_worker_id)
    concurrency: int = 32
    # Extra leases held for operators that finish fast: bigger claim/complete batches are the
    # throughput lever. Only while the operators' recent run time (EWMA) stays under
    # prefetch_below_seconds, so a slow task never keeps claimed work from idle workers.
    prefetch: int = 96
    prefetch_below_seconds: float = 0.05
    # Operators whose recent run time (EWMA) is under this run in the receive loop's own thread,
    # one after another, instead of being handed to an executor thread (0: never).
    inline_below_seconds: float = 0.002
    lease_seconds: int = 30
    heartbeat_seconds: float | None = None  # None: lease_seconds / 3
    receive_wait_seconds: float = 1.0
    poll_seconds: float = 5.0
    malformed_retry_seconds: int = 5
    on_stop: StopMode = "finish"
    grace_seconds: float = 20.0
    completion_batch: int = 256

    def __post_init__(self) -> None:
        checks = {
            "concurrency": self.concurrency >= 1,
            "prefetch": self.prefetch >= 0,
            "inline_below_seconds": 0 <= self.inline_below_seconds <= self.prefetch_below_seconds,
            "lease_seconds": 1 <= self.lease_seconds <= models.MAX_LEASE_SECONDS,
            "heartbeat_seconds": self.heartbeat_seconds is None or 0 < self.heartbeat_seconds < self.lease_seconds,
            "receive_wait_seconds": 0 <= self.receive_wait_seconds <= 20,
            "poll_seconds": self.poll_seconds > 0,
            "on_stop": self.on_stop in ("finish", "abandon"),
        }
        for field, ok in checks.items():
            if not ok:
                raise errors.WorkerError(
                    f"invalid worker setting {field}={getattr(self, field)!r}", field=field
                )

    @property
    def beat_every(self) -> float:
        return self.heartbeat_seconds or self.lease_seconds / 3
