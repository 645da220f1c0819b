"""The Lite sandbox: one bundle instance as a bubblewrap process tree (invariant 10, docs/specs/udf.md).

Each instance runs in new user, pid, net, ipc, uts, mount (and cgroup) namespaces with no network
at all (the loopback stays down), sees the bundle read-only at ``/var/task``, the runtime read-only,
a size-capped private tmpfs at ``/tmp``, ``/usr`` read-only, and the Runtime API as one Unix socket at
:data:`SOCKET_IN_SANDBOX`. Nothing else of the host is mounted: not ``/etc``, not the Lite state
directory, not Postgres' data. The environment is the one Lambda sets, plus the socket's path.

Rlimits (address space, CPU seconds, file size, open files, processes) are set on bubblewrap's
setup process while it is blocked (``--block-fd``), so the user's process inherits them. The
seccomp filter of :mod:`seccomp` is loaded by bubblewrap (``--seccomp``) right before it runs the
runtime. The instance's stdout and stderr go to a log file that RLIMIT_FSIZE caps.

As root, the network namespace is made by ``unshare --net`` (util-linux), where the loopback stays
down; bubblewrap would bring it up. As another user, bubblewrap makes it: isolated, with a loopback up.

When Trace runs as root, rlimits on processes would not hold (the kernel exempts uid 0 from
RLIMIT_NPROC) and a process mapped to root owns every root-owned file. So the namespace maps
in-namespace uid 0 to root only for bubblewrap's setup, and :data:`SANDBOX_UID` to an unprivileged
host uid (``SandboxLimits.host_uid``); our bootstraps switch to it before they load any user code.
As another user, bubblewrap maps that user, as usual.

bubblewrap comes from Debian's ``bubblewrap`` package (``scripts/fetch-bwrap.sh`` puts it in the venv).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

from trace_core.udf import errors, seccomp

SOCKET_IN_SANDBOX = "/run/trace/runtime.sock"
TASK_ROOT = "/var/task"
RUNTIME_ROOT = "/var/runtime"
SANDBOX_UID = 65534  # the uid the user's code runs as, inside the namespace
RUNTIMES_DIR = Path(__file__).resolve().parents[4] / "runtimes"

Runtime = Literal["python3.12", "nodejs22", "rust"]

# What the address space limit adds to the bundle's memory: the interpreter's own mappings
# (Node's V8 reserves about 1 GB of address space before it runs anything).
_AS_OVERHEAD_MB = {"python3.12": 256, "nodejs22": 2048, "rust": 256}


class SandboxUnavailableError(errors.UdfError):
    """The sandbox cannot run here (``reason``): no bwrap, no user namespaces, or a runtime not served."""


class SandboxStartError(errors.UdfError):
    """bubblewrap failed to start the instance; ``log`` holds its last output."""


@dataclasses.dataclass(frozen=True)
class FunctionSpec:
    """What the sandbox needs of a bundle version: its runtime, entrypoint, identity and memory."""

    runtime: Runtime
    entrypoint: str
    name: str
    version: int
    memory_mb: int = 128


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """Caps of one instance besides the bundle's memory and timeout."""

    tmp_bytes: int = 64 * 1024 * 1024
    file_size_bytes: int = 16 * 1024 * 1024  # also caps the instance's log (its stdout and stderr)
    open_files: int = 256
    processes: int = 64  # counted per host uid: the user's processes of all instances together
    cpu_seconds: int = 600  # over the instance's life; an instance over it is killed and replaced
    host_uid: int = 65534  # when Trace runs as root: the unprivileged host uid of the user's code
    host_gid: int = 65534


def find_bwrap() -> Path:
    """bwrap from the venv's bin (``scripts/fetch-bwrap.sh``) first, then ``PATH``."""
    venv_bwrap = Path(sys.prefix) / "bin" / "bwrap"
    if venv_bwrap.is_file() and os.access(venv_bwrap, os.X_OK):
        return venv_bwrap
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailableError(
            "bubblewrap (bwrap) is not installed: run scripts/fetch-bwrap.sh", reason="no-bwrap")
    return Path(found)


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def check_user_namespaces() -> None:
    """Refuse, naming why, where this kernel does not let us create user namespaces."""
    if not Path("/proc/self/ns/user").exists():
        raise SandboxUnavailableError("the kernel has no user namespaces (CONFIG_USER_NS)",
                                      reason="no-user-namespaces")
    if _read_int("/proc/sys/user/max_user_namespaces") == 0:
        raise SandboxUnavailableError("user namespaces are disabled (user.max_user_namespaces = 0)",
                                      reason="no-user-namespaces")
    if os.geteuid() != 0:
        if _read_int("/proc/sys/kernel/unprivileged_userns_clone") == 0:
            raise SandboxUnavailableError(
                "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
                reason="no-user-namespaces")
        if _read_int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1:
            raise SandboxUnavailableError(
                "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)",
                reason="no-user-namespaces")


def runtime_description(runtime: Runtime) -> str:
    """Which local interpreter serves ``runtime`` (for ``status`` and errors)."""
    if runtime == "python3.12":
        return f"python {sys.version.split()[0]} at {Path(sys.executable).resolve()}"
    if runtime == "nodejs22":
        node = shutil.which("node")
        if node is None:
            return "no node on PATH"
        version = subprocess.run([node, "--version"], check=False, capture_output=True, text=True,
                                 timeout=10).stdout.strip()
        return f"node {version} at {Path(node).resolve()}"
    return "the bundle's own bootstrap (Linux x86_64)"


def _runtime_launch(spec: FunctionSpec, as_root: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """The command inside the sandbox and the read-only binds (host path, sandbox path) it needs."""
    python = str(Path(sys.executable).resolve())
    python_bind = (sys.base_prefix, sys.base_prefix)
    if spec.runtime == "python3.12":
        # -I: no PYTHON* variables, no user site, no script directory on sys.path; -B: no .pyc writes
        return ([python, "-I", "-B", f"{RUNTIME_ROOT}/python/bootstrap.py"],
                [python_bind, (str(RUNTIMES_DIR / "python"), f"{RUNTIME_ROOT}/python")])
    if spec.runtime == "nodejs22":
        node = shutil.which("node")
        if node is None:
            raise SandboxUnavailableError("the nodejs22 runtime needs node on PATH; none is installed",
                                          reason="runtime-unavailable")
        node_path = str(Path(node).resolve())
        return ([node_path, f"--max-old-space-size={spec.memory_mb}", f"{RUNTIME_ROOT}/node/bootstrap.js"],
                [(node_path, node_path), (str(RUNTIMES_DIR / "node"), f"{RUNTIME_ROOT}/node")])
    # rust: the bundle's own executable. As root, a small Python shim switches uid first (a user's
    # binary cannot be trusted to).
    bootstrap = f"{TASK_ROOT}/bootstrap"
    if not as_root:
        return [bootstrap], []
    shim = (f"import os; os.setgroups([]); os.setgid({SANDBOX_UID}); os.setuid({SANDBOX_UID}); "
            f"os.execv({bootstrap!r}, [{bootstrap!r}])")
    return [python, "-I", "-S", "-c", shim], [python_bind]


def lambda_environment(spec: FunctionSpec) -> dict[str, str]:
    """The environment of the user's process: what Lambda sets, plus the Runtime API socket. Nothing else."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": str(spec.version),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"trace-lite/{spec.version}",
        "_HANDLER": spec.entrypoint,
        "LAMBDA_TASK_ROOT": TASK_ROOT,
        "TZ": ":UTC",
        "LANG": "C.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "TRACE_RUNTIME_SOCKET": SOCKET_IN_SANDBOX,
    }


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _parents_outside_usr(destinations: list[str]) -> list[str]:
    """The ancestors of ``destinations`` that bwrap would create, shallowest first."""
    found: list[str] = []
    for destination in destinations:
        for parent in reversed(Path(destination).parents):
            name = str(parent)
            if name != "/" and not (name == "/usr" or name.startswith("/usr/")) and name not in found:
                found.append(name)
    return found


class Instance:
    """One running instance. :meth:`kill` ends every process of it (its pid namespace) and waits."""

    def __init__(self, process: subprocess.Popen[bytes], child_pid: int, pid_namespace: int | None,
                 workdir: Path, log_path: Path) -> None:
        self.process = process
        self.child_pid = child_pid  # bubblewrap's setup process, the pid namespace's init
        self.pid_namespace = pid_namespace
        self.workdir = workdir
        self.log_path = log_path

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_description(self) -> str:
        """How the instance ended, for ``Runtime.ExitError``."""
        code = self.process.poll()
        if code is None:
            return "the runtime is still running"
        # bwrap exits with the code of the process it ran; 128+N when a signal N killed it
        if code > 128:
            with contextlib.suppress(ValueError):
                return f"the runtime was killed by {signal.Signals(code - 128).name} (exit code {code})"
        if code < 0:
            return f"bubblewrap was killed by {signal.Signals(-code).name}"
        return f"the runtime exited with code {code}"

    def log_tail(self, limit: int = 4096) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - limit))
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the pid namespace's init (the kernel then kills everything in it), then reap.

        The init first: bwrap's monitor, our child, reaps it and exits. Killing the monitor first would
        leave the init to the host's pid 1, which may never reap it.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.child_pid, signal.SIGKILL)
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def processes(self) -> list[int]:
        """Host pids still in this instance's pid namespace (empty once it is gone)."""
        if self.pid_namespace is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.stat(entry / "ns" / "pid").st_ino == self.pid_namespace:
                    found.append(int(entry.name))
        return found

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class Sandbox:
    """Starts instances of extracted bundles under bubblewrap."""

    def __init__(self, *, limits: SandboxLimits | None = None, workroot: Path | None = None,
                 bwrap: Path | None = None) -> None:
        check_user_namespaces()
        if platform.machine() != "x86_64":
            raise SandboxUnavailableError(
                f"the seccomp filter is written for x86_64 only, not {platform.machine()}", reason="architecture")
        self.seccomp_program = seccomp.program()
        self.bwrap = bwrap or find_bwrap()
        self.limits = limits or SandboxLimits()
        self.workroot = workroot
        self.as_root = os.geteuid() == 0
        self.unshare = shutil.which("unshare") if self.as_root else None

    def new_workdir(self) -> Path:
        """A private directory (0700) for an instance's socket and log."""
        if self.workroot is not None:
            self.workroot.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="udf-", dir=self.workroot))

    def command(self, spec: FunctionSpec, bundle_dir: Path, socket_path: Path) -> list[str]:
        """The bwrap command line (without the fd options) for ``spec`` over ``bundle_dir``."""
        argv, runtime_binds = _runtime_launch(spec, self.as_root)
        binds = [(str(bundle_dir), TASK_ROOT), *runtime_binds, (str(socket_path), SOCKET_IN_SANDBOX)]
        args = [str(self.bwrap), "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
                "--hostname", "sandbox", *_system_binds(),
                "--proc", "/proc", "--dev", "/dev",
                "--size", str(self.limits.tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
        # bwrap makes the missing parents of a bind's destination 0700, which the user's uid could not pass
        for parent in _parents_outside_usr([inside for _, inside in binds]):
            args += ["--perms", "0755", "--dir", parent]
        for host, inside in binds:
            args += ["--ro-bind", host, inside]
        args += ["--chdir", TASK_ROOT]
        if self.unshare is not None:
            # bwrap brings up the loopback of a network namespace it creates (and has no option not to):
            # as root, `unshare --net` makes the namespace instead, where the loopback stays down, and
            # bwrap joins it. The namespace belongs to the host's user namespace, so nothing inside can
            # bring the loopback up either.
            args = [self.unshare, "--net", "--", *args, "--share-net"]
        if self.as_root:
            # we write the id maps (Sandbox._map_ids); our bootstraps switch to SANDBOX_UID with these two
            # capabilities and so lose them (and every other) at once
            # (bwrap keeps all capabilities for a uid 0 sandbox unless told otherwise)
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        return [*args, "--", *argv]

    def start(self, spec: FunctionSpec, bundle_dir: Path, socket_path: Path, workdir: Path) -> Instance:
        """Start one instance; it connects to ``socket_path`` (served by the caller) for work."""
        if not bundle_dir.is_dir():
            raise SandboxStartError(f"no bundle directory at {bundle_dir}", bundle_dir=str(bundle_dir))
        if spec.runtime == "rust" and not (bundle_dir / "bootstrap").is_file():
            raise SandboxStartError("a rust bundle needs an executable named bootstrap", bundle_dir=str(bundle_dir))
        log_path = workdir / "instance.log"
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        userns_r, userns_w = os.pipe() if self.as_root else (-1, -1)
        seccomp_fd = _memfd(self.seccomp_program)
        fd_args = ["--info-fd", str(info_w), "--block-fd", str(block_r)]
        passed = [info_w, block_r]
        if self.as_root:
            fd_args += ["--userns-block-fd", str(userns_r)]
            passed.append(userns_r)
        if seccomp_fd != -1:
            fd_args += ["--seccomp", str(seccomp_fd)]
            passed.append(seccomp_fd)
        command = self.command(spec, bundle_dir, socket_path)
        at = command.index(str(self.bwrap)) + 1
        command[at:at] = fd_args
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, pass_fds=passed,
                env=lambda_environment(spec), start_new_session=True, cwd="/")
        finally:
            for fd in (log_fd, info_w, block_r, userns_r, seccomp_fd):
                if fd != -1:
                    os.close(fd)
        try:
            info = _read_info(info_r)
            child_pid = int(info["child-pid"])
            self._limit(child_pid, spec)
            if self.as_root:
                self._map_ids(child_pid)
                os.write(userns_w, b"1")
            os.write(block_w, b"1")
        except (OSError, ValueError, KeyError) as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            if "namespace" in tail:
                raise SandboxUnavailableError(f"bubblewrap cannot create the namespaces: {tail.strip()}",
                                              reason="no-user-namespaces") from exc
            raise SandboxStartError(f"bubblewrap did not start: {tail.strip() or exc}", log=tail) from exc
        finally:
            for fd in (block_w, userns_w):
                if fd != -1:
                    os.close(fd)
        pid_ns = None
        with contextlib.suppress(OSError):
            pid_ns = os.stat(f"/proc/{child_pid}/ns/pid").st_ino
        return Instance(process, child_pid, pid_ns, workdir, log_path)

    def _limit(self, pid: int, spec: FunctionSpec) -> None:
        limits = self.limits
        address_space = (spec.memory_mb + _AS_OVERHEAD_MB[spec.runtime]) * 1024 * 1024
        for which, value in ((resource.RLIMIT_AS, address_space), (resource.RLIMIT_CPU, limits.cpu_seconds),
                             (resource.RLIMIT_FSIZE, limits.file_size_bytes),
                             (resource.RLIMIT_NOFILE, limits.open_files),
                             (resource.RLIMIT_NPROC, limits.processes), (resource.RLIMIT_CORE, 0)):
            resource.prlimit(pid, which, (value, value))

    def _map_ids(self, pid: int) -> None:
        # 0 -> root for bubblewrap's setup only (the bootstraps leave it before user code runs)
        Path(f"/proc/{pid}/uid_map").write_text(f"0 0 1\n{SANDBOX_UID} {self.limits.host_uid} 1\n")
        Path(f"/proc/{pid}/gid_map").write_text(f"0 0 1\n{SANDBOX_UID} {self.limits.host_gid} 1\n")


def _read_info(fd: int) -> dict[str, int]:
    """bwrap's ``--info-fd`` JSON (written right after its clone), read to EOF."""
    data = b""
    with os.fdopen(fd, "rb") as info:
        while chunk := info.read(4096):
            data += chunk
    parsed = json.loads(data)
    if not isinstance(parsed, dict):
        raise ValueError("bwrap's info is not an object")  # noqa: TRY004 (bad input from bwrap, caught as such)
    return {str(k): int(v) for k, v in parsed.items()}


def _memfd(data: bytes) -> int:
    fd = os.memfd_create("trace-seccomp", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def wait_gone(instance: Instance, timeout: float = 5.0) -> bool:
    """True once no process of ``instance`` is left (polls its pid namespace)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not instance.processes():
            return True
        time.sleep(0.02)
    return not instance.processes()
