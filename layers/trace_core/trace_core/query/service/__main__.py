"""``python -m trace_core.query.service``: run the Query Service (uvicorn), or print its OpenAPI document.

Binds ``TRACE_QUERY_HOST`` (127.0.0.1 unless set: the Fargate task sets
0.0.0.0 behind its load balancer) on ``TRACE_QUERY_PORT`` (8080 when 0).
"""

from __future__ import annotations

import argparse
import json
import sys

import uvicorn

from trace_core import settings as settings_mod
from trace_core.query.service import app, deps

# Tokens pin every granted version in a header: allow headers well past h11's 16 KiB default.
MAX_HEADER_BYTES = 4 * 1024 * 1024
DEFAULT_PORT = 8080


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trace_core.query.service")
    parser.add_argument("--openapi", action="store_true", help="print the OpenAPI document and exit")
    args = parser.parse_args(argv)
    if args.openapi:
        document = app.create_app(lambda: None).openapi()  # type: ignore[arg-type, return-value]
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
        return
    settings = settings_mod.get()
    service = deps.build_service(settings)
    config = uvicorn.Config(
        app.create_app(service), host=settings.query_host, port=settings.query_port or DEFAULT_PORT,
        http="h11", h11_max_incomplete_event_size=MAX_HEADER_BYTES, log_level=settings.log_level.lower(),
        access_log=False, timeout_graceful_shutdown=10,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        service.close()


if __name__ == "__main__":
    main()
