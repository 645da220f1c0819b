"""``moto_server``: the embedded AWS endpoint (S3, SQS, Secrets Manager, SES, EventBridge).

``start`` runs this module (``python -m trace_core.lite.moto``): moto's own server
(``moto.server``: its WSGI app on werkzeug, threaded) with two changes:

- the backend lookup is cached per host. moto otherwise lists its package directory
  (an ``isdir`` per service, about 180) and tries every service's URL patterns on
  every request: a fifth of the CPU of a small S3 request, and the chain sync makes
  twelve per range (docs/decisions/1001, point 12);
- SQS's per-message checks cost O(1), not O(queue): moto recomputes every queue
  attribute for each message's retention check and reads the clock through
  ``datetime`` per message per scan. At 2,000 queued messages a ``SendMessageBatch``
  cost 195 ms and a ``ReceiveMessage`` 1,105 ms of moto's CPU (12 and 4 ms after):
  the SQS path's wake-ups crawled at 8/s (issue 15, item 7;
  docs/architecture/sqs_throughput.md).

With ``--data-dir`` (what ``trace-lite up`` passes: ``$TRACE_HOME/s3``) S3 is durable:
every change is written to that directory before its response, and the server
reloads it at start (:mod:`trace_core.lite.s3_store`, docs/decisions/1303).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trace_core.lite import procs, s3_store


def url(port: int) -> str:
    return f"http://{procs.HOST}:{port}"


def start(port: int, log: Path, *, data_dir: Path | None = None) -> subprocess.Popen[bytes]:
    """Start the server on 127.0.0.1:``port``; with ``data_dir`` its S3 lives on disk there."""
    cmd = [sys.executable, "-m", "trace_core.lite.moto", "--host", procs.HOST, "--port", str(port)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    proc = procs.spawn(cmd, log)
    procs.wait_until("moto_server", lambda: healthy(port), proc=proc, log=log, timeout=30)
    return proc


def healthy(port: int) -> bool:
    import httpx  # deferred: `trace-lite` commands that never call it do not pay its import

    response = httpx.get(f"{url(port)}/moto-api/", timeout=1.0)
    return response.status_code == 200


def _app() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class Dispatcher(DomainDispatcherApplication):
        """moto's app, looking up which backend serves a host once per host (a pure function of it)."""

        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            # Called under the app's own lock (get_application).
            if host not in self._backends:
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    return Dispatcher()


def _fast_sqs() -> None:
    """moto's SQS retention check and clock, with the same results at O(1) per message."""
    import moto.sqs.models as sqs_models

    slow_millis: Callable[..., Any] = getattr(sqs_models, "unix_time_millis")  # noqa: B009 - not re-exported

    def now_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else float(slow_millis(dt))

    def retained(backend: Any, queue_name: str, message: Any) -> bool:
        # moto: get_queue_attributes(queue, ["MessageRetentionPeriod"]) builds all attributes, then reads one
        period = int(backend.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > time.time())

    setattr(sqs_models, "unix_time_millis", now_millis)  # noqa: B010 - patching moto's module on purpose
    setattr(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", retained)  # noqa: B010


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, as ``moto_server -H HOST -p PORT`` does."""
    parser = argparse.ArgumentParser(prog="python -m trace_core.lite.moto")
    parser.add_argument("--host", default=procs.HOST)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=None, help="Keep S3 on disk here (reloaded at start).")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs (e.g. SQS queue URLs) from it
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: sys.exit(0))
    _fast_sqs()
    app = _app()
    if args.data_dir is not None:
        app = _durable(app, args.data_dir)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


def _durable(app: Any, data_dir: Path) -> Any:
    from moto.s3.models import s3_backends

    s3_store.install()
    mirror = s3_store.Mirror(data_dir)
    started = time.monotonic()
    buckets, objects = mirror.load(s3_backends)
    print(f"s3: loaded {buckets} buckets, {objects} objects from {data_dir} in {time.monotonic() - started:.1f}s",
          flush=True)
    return s3_store.wrap(app, mirror)


if __name__ == "__main__":
    main()
