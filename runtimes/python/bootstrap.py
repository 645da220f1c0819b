"""Trace's Python runtime: the AWS Lambda Runtime API loop for a ``handler(event, context)`` bundle.

Runs inside the Lite sandbox on the project's interpreter (standard library only). It loads
``_HANDLER`` (``module.function``) from ``LAMBDA_TASK_ROOT``, then loops on
``GET /2018-06-01/runtime/invocation/next`` over the Unix socket ``TRACE_RUNTIME_SOCKET`` and posts
each result (JSON) or error (``{errorType, errorMessage, stackTrace}``), as Lambda's runtime does.
"""

import http.client
import json
import os
import socket
import sys
import time
import traceback

API = "/2018-06-01/runtime"
SANDBOX_UID = 65534


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=None)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


class _Api:
    def __init__(self, path):
        self._path = path
        self._conn = _UnixConnection(path)

    def request(self, method, url, body=None, headers=None):
        for attempt in (1, 2):
            try:
                self._conn.request(method, API + url, body=body, headers=headers or {})
                response = self._conn.getresponse()
                return response.status, response.getheaders(), response.read()
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                self._conn = _UnixConnection(self._path)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post(self, url, doc, error_type=None):
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if error_type:
            headers["Lambda-Runtime-Function-Error-Type"] = error_type
        try:
            return self.request("POST", url, body=body, headers=headers)[0]
        except (ConnectionError, http.client.HTTPException, OSError):
            return 0  # the server refused a body over its limit and closed: it has recorded the failure


class Context:
    """The ``context`` argument, as Lambda's Python runtime shapes it."""

    def __init__(self, request_id, deadline_ms, arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc, error_type=None):
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def _drop_privileges():
    # Started as the namespace's root (only when Trace runs as root): become SANDBOX_UID before any
    # user code runs. setuid from 0 clears every capability.
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(SANDBOX_UID)
        os.setuid(SANDBOX_UID)


class _InitError(Exception):
    def __init__(self, error_type, exc):
        super().__init__(str(exc))
        self.error_type = error_type
        self.cause = exc


def _load_handler(spec, task_root):
    """``module.function`` from ``task_root``; errors typed as Lambda's Python runtime types them."""
    import importlib

    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise _InitError("Runtime.MalformedHandlerName", ValueError(f"_HANDLER {spec!r} is not module.function"))
    sys.path.insert(0, task_root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _InitError("Runtime.ImportModuleError", exc) from exc
    except SyntaxError as exc:
        raise _InitError("Runtime.UserCodeSyntaxError", exc) from exc
    except Exception as exc:  # an error at import is the init error
        raise _InitError(type(exc).__name__, exc) from exc
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise _InitError("Runtime.HandlerNotFound",
                         AttributeError(f"handler {function_name!r} is missing on module {module_name!r}"))
    return handler


def main():
    _drop_privileges()
    api = _Api(os.environ.get("TRACE_RUNTIME_SOCKET", "/run/trace/runtime.sock"))
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    os.chdir(task_root)
    try:
        handler = _load_handler(os.environ.get("_HANDLER", ""), task_root)
    except _InitError as exc:
        api.post("/init/error", _error(exc.cause, exc.error_type), exc.error_type)
        sys.exit(1)
    while True:
        status, headers, body = api.request("GET", "/invocation/next")
        if status != 200:
            sys.exit(0)  # the server is closing
        names = {name.lower(): value for name, value in headers}
        request_id = names["lambda-runtime-aws-request-id"]
        context = Context(request_id, int(names.get("lambda-runtime-deadline-ms", "0")),
                          names.get("lambda-runtime-invoked-function-arn", ""))
        try:
            event = json.loads(body)
            result = handler(event, context)
        except Exception as exc:  # noqa: BLE001 (the handler's error is the invocation's)
            api.post(f"/invocation/{request_id}/error", _error(exc), type(exc).__name__)
            continue
        try:
            payload = json.dumps(result).encode()
        except (TypeError, ValueError) as exc:
            api.post(f"/invocation/{request_id}/error", _error(exc, "Runtime.MarshalError"), "Runtime.MarshalError")
            continue
        api.post(f"/invocation/{request_id}/response", payload)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
