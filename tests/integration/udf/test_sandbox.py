"""The Lite sandbox and invoker against real bubblewrap: good handlers answer, hostile ones are contained.

Each hostile handler's invocation fails (or is refused) with an error type and message, its instance
is discarded with every process of it gone, and a good bundle still answers afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from trace_core.udf import invoker, runtime_api, sandbox

ROOT = Path(__file__).resolve().parents[3]
BUNDLES = Path(__file__).resolve().parent / "bundles"
HOST_UID = 64999  # when the tests run as root: the user's code runs as this host uid, used by nothing else


@pytest.fixture(scope="session")
def bwrap() -> Path:
    """bwrap, fetched into the venv by scripts/fetch-bwrap.sh on a fresh machine."""
    try:
        return sandbox.find_bwrap()
    except sandbox.SandboxUnavailableError:
        subprocess.run([str(ROOT / "scripts" / "fetch-bwrap.sh")], check=True, timeout=300)
        return sandbox.find_bwrap()


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test bundles as the loader leaves them: directories 0555, files 0444, owned by us."""
    target = tmp_path_factory.mktemp("bundles") / "b"
    shutil.copytree(BUNDLES, target)
    for path in sorted(target.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    target.chmod(0o555)
    return target


@pytest.fixture
def lite(bwrap: Path, tmp_path: Path) -> Iterator[invoker.LiteInvoker]:
    box = sandbox.Sandbox(bwrap=bwrap, workroot=tmp_path / "instances",
                          limits=sandbox.SandboxLimits(host_uid=HOST_UID, host_gid=HOST_UID, processes=32))
    lite = invoker.LiteInvoker(box, idle_seconds=30)
    before = _our_bwraps()
    yield lite
    lite.close()
    # no process of any instance is left: none runs as the sandbox's uid, no bwrap of ours remains
    assert _wait(lambda: not _processes_of_uid(HOST_UID if os.geteuid() == 0 else -1)), \
        _processes_of_uid(HOST_UID)
    assert _wait(lambda: _our_bwraps() <= before), _our_bwraps() - before


def _wait(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def _status_field(pid: str, field: str) -> str:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return ""


def _processes_of_uid(uid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and _status_field(p.name, "Uid").split()[:1] == [str(uid)]]


def _our_bwraps() -> set[int]:
    me = str(os.getpid())
    return {int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and _status_field(p.name, "PPid") == me and _status_field(p.name, "Name") == "bwrap"}


def _spec(name: str, runtime: sandbox.Runtime = "python3.12", entrypoint: str = "main.handler",
          memory_mb: int = 128) -> sandbox.FunctionSpec:
    return sandbox.FunctionSpec(runtime=runtime, entrypoint=entrypoint, name=name, version=1, memory_mb=memory_mb)


def _invoke(lite: invoker.LiteInvoker, bundles: Path, name: str, event: Any, *, timeout: float = 5.0,
            runtime: sandbox.Runtime = "python3.12", entrypoint: str = "main.handler") -> invoker.InvocationResult:
    return lite.invoke(f"{name}@1", bundles / name, _spec(name, runtime, entrypoint), event, timeout)


def _assert_good_still_works(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _invoke(lite, bundles, "py_good", {"after": "attack"})
    assert result.ok, result
    assert result.result["echo"] == {"after": "attack"}


def _warm_hostile(lite: invoker.LiteInvoker, bundles: Path) -> sandbox.Instance:
    result = _invoke(lite, bundles, "py_hostile", {"attack": "noop"})
    assert result.ok, result
    [warm] = lite.idle_instances("py_hostile@1")
    return warm.instance


def _attack(lite: invoker.LiteInvoker, bundles: Path, event: dict[str, Any], *,
            timeout: float = 5.0) -> invoker.InvocationResult:
    """Run one attack on a warm instance; the instance must be discarded with all its processes."""
    instance = _warm_hostile(lite, bundles)
    assert instance.processes(), "the warm instance runs"
    result = _invoke(lite, bundles, "py_hostile", event, timeout=timeout)
    if not result.ok:
        assert result.error_type and result.error_message is not None
        assert lite.idle_instances("py_hostile@1") == []
        assert sandbox.wait_gone(instance), f"processes left: {instance.processes()}"
        assert instance.process.poll() is not None
    _assert_good_still_works(lite, bundles)
    return result


# ---------------------------------------------------------------- good handlers


def test_a_python_handler_answers_with_the_lambda_context(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _invoke(lite, bundles, "py_good", {"rows": [1, 2], "params": {"k": "v"}})
    assert result.ok, result
    assert result.result["echo"] == {"rows": [1, 2], "params": {"k": "v"}}
    assert result.result["function_name"] == "py_good"
    assert 0 < result.result["remaining_ms"] <= 5000
    assert result.result["request_id"]


def test_a_warm_invocation_reuses_the_instance_and_is_fast(lite: invoker.LiteInvoker, bundles: Path) -> None:
    first = _invoke(lite, bundles, "py_good", {"n": 1})
    started = time.perf_counter()
    second = _invoke(lite, bundles, "py_good", {"n": 2})
    warm_seconds = time.perf_counter() - started
    assert first.ok and second.ok
    assert second.result["boot"] == first.result["boot"]
    assert second.result["pid"] == first.result["pid"]
    assert second.result["request_id"] != first.result["request_id"]
    assert warm_seconds < 0.1


def test_an_instance_idle_too_long_is_stopped(bwrap: Path, bundles: Path, tmp_path: Path) -> None:
    box = sandbox.Sandbox(bwrap=bwrap, workroot=tmp_path / "instances",
                          limits=sandbox.SandboxLimits(host_uid=HOST_UID, host_gid=HOST_UID))
    lite = invoker.LiteInvoker(box, idle_seconds=0.3)
    try:
        assert _invoke(lite, bundles, "py_good", {}).ok
        [warm] = lite.idle_instances("py_good@1")
        assert _wait(lambda: lite.idle_instances("py_good@1") == [], timeout=5)
        assert sandbox.wait_gone(warm.instance)
    finally:
        lite.close()


@pytest.mark.parametrize(("name", "entrypoint", "module"), [
    ("node_cjs", "index.handler", "commonjs"),
    ("node_esm", "index.handler", "esm"),
    ("node_esm_pkg", "index.handler", "esm-package"),
])
def test_a_node_handler_answers(lite: invoker.LiteInvoker, bundles: Path, name: str, entrypoint: str,
                                module: str) -> None:
    first = _invoke(lite, bundles, name, {"x": 1}, runtime="nodejs22", entrypoint=entrypoint)
    assert first.ok, first
    assert first.result["echo"] == {"x": 1}
    assert first.result["module"] == module
    if name != "node_esm_pkg":
        second = _invoke(lite, bundles, name, {"x": 2}, runtime="nodejs22", entrypoint=entrypoint)
        assert second.ok and second.result["boot"] == first.result["boot"]
        assert first.result["functionName"] == name


def test_a_node_handler_error_is_a_failed_invocation(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _invoke(lite, bundles, "node_cjs", {"attack": "throw"}, runtime="nodejs22", entrypoint="index.handler")
    assert not result.ok
    assert (result.error_type, result.error_message) == ("TypeError", "thrown on purpose")


def test_the_user_code_sees_only_the_lambda_environment(lite: invoker.LiteInvoker, bundles: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret")
    monkeypatch.setenv("TRACE_DATABASE_URL", "postgresql://host-secret")
    result = _invoke(lite, bundles, "py_hostile", {"attack": "noop"})
    assert result.ok, result
    env = result.result["env"]
    assert set(env) <= set(sandbox.lambda_environment(_spec("py_hostile"))) | {"PWD", "LC_CTYPE"}
    assert "host-secret" not in json.dumps(env)
    if os.geteuid() == 0:
        assert result.result["uid"] == sandbox.SANDBOX_UID  # the bootstrap left the namespace's root


# ---------------------------------------------------------------- failures of the handler


def test_a_handler_exception_is_a_failed_invocation_with_its_type(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "no such attack"})
    assert (result.ok, result.error_type) == (False, "ValueError")
    assert "no such attack" in (result.error_message or "")


def test_an_error_at_import_is_an_init_error(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _invoke(lite, bundles, "py_broken", {})
    assert (result.ok, result.error_type) == (False, "RuntimeError")
    assert "broken at import" in (result.error_message or "")
    _assert_good_still_works(lite, bundles)
    missing = lite.invoke("py_good@2", bundles / "py_good", _spec("py_good", entrypoint="nosuch.handler"), {}, 5)
    assert (missing.ok, missing.error_type) == (False, "Runtime.ImportModuleError")


def test_an_unserialisable_result_is_a_marshal_error(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "unserialisable"})
    assert (result.ok, result.error_type) == (False, "Runtime.MarshalError")


def test_an_exit_is_an_exit_error_with_its_code(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "exit"})
    assert (result.ok, result.error_type) == (False, "Runtime.ExitError")
    assert "code 3" in (result.error_message or "")


def test_an_invalid_json_response_is_refused(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "invalid_json"})
    assert (result.ok, result.error_type) == (False, "Runtime.InvalidResponse")


def test_an_oversize_result_is_refused(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "oversize"})
    assert (result.ok, result.error_type) == (False, "Function.ResponseSizeTooLarge")


def test_an_oversize_event_is_refused_before_any_instance_starts(lite: invoker.LiteInvoker, bundles: Path) -> None:
    event = {"rows": ["x" * runtime_api.MAX_PAYLOAD_BYTES]}
    result = _invoke(lite, bundles, "py_good", event)
    assert (result.ok, result.error_type) == (False, "RequestTooLargeException")
    assert lite.idle_instances("py_good@1") == []


def test_an_answer_for_a_forged_request_id_is_refused(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "forged"})
    assert result.ok, result
    assert result.result == {"status": 400}


def test_a_second_answer_is_refused_and_the_first_stands(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "twice"})
    assert result.ok, result
    assert result.result == {"answer": "first"}


# ---------------------------------------------------------------- hostile handlers


def test_no_network_a_tcp_listener_on_the_host_loopback_is_unreachable(lite: invoker.LiteInvoker,
                                                                      bundles: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        result = _attack(lite, bundles, {"attack": "tcp", "port": port})
        node = _invoke(lite, bundles, "node_cjs", {"attack": "tcp", "port": port}, runtime="nodejs22",
                       entrypoint="index.handler")
        with pytest.raises(TimeoutError):
            listener.accept()
    assert not result.ok, result
    assert not node.ok, node
    interfaces = _invoke(lite, bundles, "py_hostile", {"attack": "interfaces"})
    assert interfaces.ok, interfaces
    assert interfaces.result == {"interfaces": {"lo": False}}  # only a loopback, and it is down


def test_the_seccomp_filter_denies_namespaces_tracing_mounts_and_internet_sockets(
        lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _invoke(lite, bundles, "py_hostile", {"attack": "syscalls"})
    assert result.ok, result
    assert result.result["errno"] == {
        "unshare(CLONE_NEWUSER)": errno.EPERM, "unshare(CLONE_NEWNET)": errno.EPERM,
        "ptrace(PTRACE_TRACEME)": errno.EPERM, "mount(tmpfs)": errno.EPERM, "keyctl": errno.EPERM,
        "bpf": errno.EPERM, "socket(AF_INET)": errno.EAFNOSUPPORT, "socket(AF_INET6)": errno.EAFNOSUPPORT}


def test_etc_shadow_is_not_readable(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "read", "path": "/etc/shadow"})
    assert (result.ok, result.error_type) == (False, "FileNotFoundError")


def test_proc_1_environ_shows_nothing_of_the_host(lite: invoker.LiteInvoker, bundles: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HOST_MARKER", "host-marker-value")
    result = _attack(lite, bundles, {"attack": "read", "path": "/proc/1/environ"})
    if result.ok:  # readable (the tests do not run as root): the sandbox's own init, with Lambda's variables
        assert "host-marker-value" not in result.result["read"]
        assert "TRACE_HOST_MARKER" not in result.result["read"]
    else:
        assert result.error_type == "PermissionError"


def test_the_lite_state_directory_is_not_visible(lite: invoker.LiteInvoker, bundles: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "postgres").mkdir(parents=True)
    (home / "secret").write_text("state")
    (home / "postgres" / "PG_VERSION").write_text("16")
    for event in ({"attack": "read", "path": str(home / "secret")},
                  {"attack": "read", "path": str(home / "postgres" / "PG_VERSION")},
                  {"attack": "list", "path": str(home)},
                  {"attack": "list", "path": str(ROOT)}):
        result = _attack(lite, bundles, event)
        assert (result.ok, result.error_type) == (False, "FileNotFoundError"), (event, result)


def test_writes_outside_tmp_fail_and_tmp_works(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "write", "paths": [
        "/var/task/main.py", "/var/task/new", "/var/runtime/python/bootstrap.py", "/usr/x", "/x", "/etc/x",
        "/proc/sys/kernel/hostname"]})
    assert (result.ok, result.error_type) == (False, "PermissionError"), result
    tmp = _invoke(lite, bundles, "py_hostile", {"attack": "tmp"})
    assert tmp.ok and tmp.result == {"tmp": "ok"}


def test_a_fork_bomb_is_contained(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "forkbomb"})
    assert (result.ok, result.error_type) == (False, "BlockingIOError"), result


def test_allocating_until_killed_is_contained(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "allocate"})
    assert not result.ok
    assert result.error_type in ("MemoryError", "Runtime.ExitError"), result


def test_an_infinite_loop_times_out_and_is_killed(lite: invoker.LiteInvoker, bundles: Path) -> None:
    started = time.monotonic()
    result = _attack(lite, bundles, {"attack": "loop"}, timeout=1.0)
    assert (result.ok, result.error_type) == (False, "Sandbox.Timedout")
    assert time.monotonic() - started < 5


def test_ignoring_sigterm_does_not_survive_the_deadline(lite: invoker.LiteInvoker, bundles: Path) -> None:
    result = _attack(lite, bundles, {"attack": "sigterm"}, timeout=1.0)
    assert (result.ok, result.error_type) == (False, "Sandbox.Timedout")


def test_writing_gigabytes_to_stdout_is_bounded(lite: invoker.LiteInvoker, bundles: Path) -> None:
    instance = _warm_hostile(lite, bundles)
    result = _invoke(lite, bundles, "py_hostile", {"attack": "stdout"}, timeout=20)
    assert not result.ok, result
    assert sandbox.wait_gone(instance)
    # the log was capped by RLIMIT_FSIZE before the instance was discarded (and its directory removed)
    assert not instance.workdir.exists()
    assert result.error_type in ("OSError", "Runtime.ExitError"), result
    _assert_good_still_works(lite, bundles)


def test_the_log_of_an_instance_is_capped(bwrap: Path, bundles: Path, tmp_path: Path) -> None:
    box = sandbox.Sandbox(bwrap=bwrap, workroot=tmp_path / "instances",
                          limits=sandbox.SandboxLimits(host_uid=HOST_UID, host_gid=HOST_UID,
                                                       file_size_bytes=1024 * 1024))
    workdir = box.new_workdir()
    api = runtime_api.RuntimeApiServer(workdir / "runtime.sock", function_arn="arn:test")
    instance = box.start(_spec("py_hostile"), bundles / "py_hostile", api.socket_path, workdir)
    try:
        invocation = api.submit(json.dumps({"attack": "stdout"}).encode(), 20)
        assert invocation.done.wait(20)
        assert invocation.outcome is not None and not invocation.outcome.ok
        assert instance.log_path.stat().st_size <= 1024 * 1024
    finally:
        instance.kill()
        api.close()
        assert sandbox.wait_gone(instance)
        instance.cleanup()
