"""The ``RuntimeInvoker`` port and its Lite adapter (sandboxed instances served the Runtime API).

An invocation always ends: with the handler's JSON result, or failed with an error type and a
message (the handler's own error type, ``Sandbox.Timedout``, ``Runtime.ExitError``,
``Runtime.InvalidResponse``, ``Function.ResponseSizeTooLarge``, ``RequestTooLargeException``, ...).

Like Lambda, an instance stays warm and serves further invocations of the same bundle version
(``instance_key``) until it has been idle for ``idle_seconds``; an instance whose invocation failed,
crashed or timed out is discarded (its process tree killed).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from trace_core.udf import runtime_api, sandbox

InvocationResult = runtime_api.InvocationResult
FunctionSpec = sandbox.FunctionSpec

INIT_TIMEOUT_SECONDS = 10.0  # Lambda's init phase limit: a runtime that never asks for work is stopped
_POLL_SECONDS = 0.02


class RuntimeInvoker(Protocol):
    """Runs one invocation of a bundle version's handler; never raises for what the handler does."""

    def invoke(self, instance_key: str, bundle_dir: Path, spec: sandbox.FunctionSpec, event: Any,
               timeout: float) -> runtime_api.InvocationResult: ...

    def close(self) -> None: ...


@dataclasses.dataclass
class WarmInstance:
    """A running instance and the Runtime API server it is served by."""

    key: str
    instance: sandbox.Instance
    api: runtime_api.RuntimeApiServer
    idle_since: float = 0.0
    invocations: int = 0


class LiteInvoker:
    """The Lite adapter: each instance a bubblewrap sandbox (:mod:`sandbox`) served the Runtime API."""

    def __init__(self, box: sandbox.Sandbox | None = None, *, idle_seconds: float = 60.0) -> None:
        self.sandbox = box or sandbox.Sandbox()
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._idle: dict[str, list[WarmInstance]] = {}
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap_idle, name="udf-idle-reaper", daemon=True)
        self._reaper.start()

    # --- the port

    def invoke(self, instance_key: str, bundle_dir: Path, spec: sandbox.FunctionSpec, event: Any,
               timeout: float) -> runtime_api.InvocationResult:
        try:
            payload = json.dumps(event, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            return InvocationResult.failed("InvalidRequestContentException", f"the event is not JSON: {exc}")
        if len(payload) > runtime_api.MAX_PAYLOAD_BYTES:
            return InvocationResult.failed(
                "RequestTooLargeException",
                f"the event is {len(payload)} bytes, more than the limit of {runtime_api.MAX_PAYLOAD_BYTES}")
        if self._closed.is_set():
            return InvocationResult.failed("Sandbox.Closed", "the invoker is closed")
        warm = self._take(instance_key)
        if warm is None:
            try:
                warm = self._start(instance_key, bundle_dir, spec)
            except sandbox.SandboxUnavailableError as exc:
                return InvocationResult.failed("Sandbox.Unavailable", str(exc))
            except (sandbox.SandboxStartError, OSError) as exc:
                return InvocationResult.failed("Sandbox.StartError", str(exc))
        result = self._run(warm, payload, timeout)
        if result.ok and warm.instance.alive() and not self._closed.is_set():
            warm.idle_since = time.monotonic()
            warm.invocations += 1
            with self._lock:
                self._idle.setdefault(instance_key, []).append(warm)
        else:
            self._discard(warm)
        return result

    def close(self) -> None:
        """Stop every instance (their process trees killed)."""
        self._closed.set()
        with self._lock:
            instances = [warm for pool in self._idle.values() for warm in pool]
            self._idle.clear()
        for warm in instances:
            self._discard(warm)
        self._reaper.join(timeout=5)

    # --- for tests and ``status``

    def idle_instances(self, instance_key: str) -> list[WarmInstance]:
        with self._lock:
            return list(self._idle.get(instance_key, ()))

    # --- internals

    def _take(self, key: str) -> WarmInstance | None:
        with self._lock:
            pool = self._idle.get(key, [])
            while pool:
                warm = pool.pop()
                if warm.instance.alive():
                    return warm
                self._discard_later(warm)
        return None

    def _start(self, key: str, bundle_dir: Path, spec: sandbox.FunctionSpec) -> WarmInstance:
        workdir = self.sandbox.new_workdir()
        api = runtime_api.RuntimeApiServer(
            workdir / "runtime.sock",
            function_arn=f"arn:aws:lambda:local:000000000000:function:{spec.name}:{spec.version}")
        try:
            instance = self.sandbox.start(spec, bundle_dir, api.socket_path, workdir)
        except BaseException:
            api.close()
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return WarmInstance(key=key, instance=instance, api=api)

    def _run(self, warm: WarmInstance, payload: bytes, timeout: float) -> runtime_api.InvocationResult:
        api, instance = warm.api, warm.instance
        invocation = api.submit(payload, timeout)
        init_deadline = time.monotonic() + INIT_TIMEOUT_SECONDS + timeout
        while True:
            if invocation.done.wait(_POLL_SECONDS) and invocation.outcome is not None:
                return invocation.outcome
            if api.init_error is not None:
                api.abandon(invocation)
                return api.init_error
            if not instance.alive():
                if invocation.done.is_set() and invocation.outcome is not None:  # answered, then exited
                    return invocation.outcome
                api.abandon(invocation)
                tail = instance.log_tail(1000).strip()
                return InvocationResult.failed(
                    "Runtime.ExitError", f"RequestId: {invocation.request_id} Error: {instance.exit_description()}"
                    + (f"; its last output: {tail}" if tail else ""))
            now_ms = time.time() * 1000
            if invocation.deadline_ms and now_ms > invocation.deadline_ms:
                api.abandon(invocation)
                instance.kill()
                return InvocationResult.failed("Sandbox.Timedout", f"Task timed out after {timeout:.2f} seconds")
            if not invocation.deadline_ms and time.monotonic() > init_deadline:
                api.abandon(invocation)
                instance.kill()
                return InvocationResult.failed(
                    "Sandbox.Timedout", f"the runtime did not ask for work within {INIT_TIMEOUT_SECONDS:.0f} seconds")

    def _discard(self, warm: WarmInstance) -> None:
        warm.instance.kill()
        warm.api.close()
        warm.instance.cleanup()

    def _discard_later(self, warm: WarmInstance) -> None:
        threading.Thread(target=self._discard, args=(warm,), daemon=True).start()

    def _reap_idle(self) -> None:
        while not self._closed.wait(min(1.0, max(self.idle_seconds / 4, 0.05))):
            now = time.monotonic()
            expired: list[WarmInstance] = []
            with self._lock:
                for key, pool in list(self._idle.items()):
                    keep = [w for w in pool if now - w.idle_since < self.idle_seconds and w.instance.alive()]
                    expired += [w for w in pool if w not in keep]
                    if keep:
                        self._idle[key] = keep
                    else:
                        del self._idle[key]
            for warm in expired:
                self._discard(warm)
