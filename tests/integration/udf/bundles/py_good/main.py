"""A good Python handler: echoes the event with its instance's identity."""

import os
import uuid

BOOT = uuid.uuid4().hex  # one per instance: a warm invocation reports the same


def handler(event, context):
    return {
        "echo": event,
        "pid": os.getpid(),
        "boot": BOOT,
        "uid": os.getuid(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
