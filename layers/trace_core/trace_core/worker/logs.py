"""How a worker process logs: JSON lines in production, text lines in a terminal; secrets in URLs masked.

The production worker (``python -m trace_core.worker``) writes one JSON object per line
on stderr, as the Lambda handlers do through Powertools (``level``, ``location``,
``message``, ``timestamp``, ``service`` from ``POWERTOOLS_SERVICE_NAME``), plus the
logger's ``name`` and the ``threadName``: CloudWatch Logs Insights reads the fields.
``trace-lite worker`` and ``trace-lite host`` write the text lines a person reads.
"""

from __future__ import annotations

import logging
import sys

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from trace_core import redact

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


class RedactingText(logging.Formatter):
    """Text lines with secrets in URLs masked (an RPC key in an error message, a password in a DSN)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact.text(super().format(record))


class RedactingJson(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, with secrets in URLs masked."""

    def __init__(self) -> None:
        super().__init__(name="%(name)s", threadName="%(threadName)s", utc=True, use_rfc3339=True)

    def format(self, record: logging.LogRecord) -> str:
        return redact.text(super().format(record))


def configure(level: str, *, structured: bool) -> None:
    """Send every log record of this process to stderr, as JSON lines (``structured``) or text lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingJson() if structured else RedactingText(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
