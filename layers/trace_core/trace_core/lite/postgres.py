"""An embedded PostgreSQL server from the binaries the ``pgserver`` wheel ships.

We drive ``initdb``/``pg_ctl`` ourselves (not ``pgserver.get_server``) so the
server listens on 127.0.0.1 at a port we choose and outlives the process that
started it: ``trace-lite up`` returns, ``trace-lite down`` stops it.
Postgres refuses to run as root, so as root the server runs as a system user
``pgserver`` (created on first use, as pgserver itself does).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path
from typing import TypedDict

from trace_core import errors
from trace_core.lite import procs

SUPERUSER = "postgres"


RUNNER = "pgserver"


def _bin(name: str) -> Path:
    # Located without importing pgserver: its __init__ takes a lock file and registers atexit hooks.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise errors.ComponentError(
            "the embedded Postgres needs the 'pgserver' package",
            component="postgres",
            fix="run `make install`, or set TRACE_DATABASE_URL to an existing server",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def _runner() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RUNNER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/false", RUNNER], check=True, capture_output=True)
        return pwd.getpwnam(RUNNER)


class _RunAs(TypedDict, total=False):
    """subprocess.run's arguments that drop root for the server's own user."""

    user: str
    group: str
    extra_groups: list[str]


def _run_as() -> _RunAs:
    # Group too: with uid alone the process keeps gid 0, and a 0701 root-owned parent denies it.
    return _RunAs(user=RUNNER, group=RUNNER, extra_groups=[]) if _runner() is not None else _RunAs()


def _open_path(path: Path) -> None:
    """Let the runner traverse every parent of ``path`` (o+x), as pgserver does."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _grant_to_runner(path: Path) -> None:
    entry = _runner()
    if entry is None:
        return
    _open_path(path)
    _open_path(_bin("postgres"))
    for item in [path, *path.rglob("*")]:
        os.chown(item, entry.pw_uid, entry.pw_gid)


def url(port: int, database: str = "postgres") -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


def init(data_dir: Path) -> None:
    """Create the cluster in ``data_dir`` unless it exists."""
    if (data_dir / "PG_VERSION").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    _grant_to_runner(data_dir)
    subprocess.run(
        [str(_bin("initdb")), "-D", str(data_dir), "--auth=trust", "--encoding=utf8", "-U", SUPERUSER],
        check=True,
        capture_output=True,
        **_run_as(),
    )


def start(data_dir: Path, port: int, *, fast: bool = False, timeout: int = 30) -> int:
    """Start the server on 127.0.0.1:``port``; returns the postmaster pid.

    ``fast`` turns off fsync: for throwaway test clusters only.
    """
    data_dir = data_dir.resolve()  # the server runs in its data dir: relative paths would dangle
    init(data_dir)
    _drop_stale_pidfile(data_dir)
    # TCP on loopback only; no Unix socket (its path length is capped, and we never use it).
    options = f"-h 127.0.0.1 -p {port} -c unix_socket_directories=''"
    if fast:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    log = data_dir / "server.log"
    proc = subprocess.run(
        [str(_bin("pg_ctl")), "-D", str(data_dir), "-w", "-t", str(timeout), "-l", str(log), "-o", options, "start"],
        check=False,  # a failed start is reported below, with the server log's last line
        capture_output=True,
        text=True,
        **_run_as(),
    )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-600:] if log.exists() else proc.stderr
        last = tail.strip().splitlines()[-1] if tail.strip() else proc.stderr
        raise errors.ComponentError(
            f"embedded Postgres failed to start on 127.0.0.1:{port}: {last}",
            component="postgres",
            fix=f"see {log}; if the port is busy pick another with TRACE_POSTGRES_PORT",
        )
    pid = pid_of(data_dir)
    assert pid is not None
    return pid


def _drop_stale_pidfile(data_dir: Path) -> None:
    """Remove the lock of a postmaster that was killed and is dead but not yet reaped.

    Postgres itself drops a lock whose pid is gone, but refuses one whose pid still exists, and a
    killed postmaster stays a zombie until its parent (init, for the orphans of `trace-lite up`) reaps
    it, which some inits do late: `up` could not restart it until then.
    """
    pid = pid_of(data_dir)
    if pid is not None and not procs.alive(pid):
        (data_dir / "postmaster.pid").unlink(missing_ok=True)


def pid_of(data_dir: Path) -> int | None:
    pidfile = data_dir / "postmaster.pid"
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def stop(data_dir: Path, timeout: int = 30) -> None:
    """Stop the server (fast shutdown). A server that is not running is fine."""
    data_dir = data_dir.resolve()
    pid = pid_of(data_dir)
    if pid is None:
        return
    subprocess.run(
        [str(_bin("pg_ctl")), "-D", str(data_dir), "-m", "fast", "-w", "-t", str(timeout), "stop"],
        check=False,  # whatever pg_ctl says, procs.stop below makes sure the postmaster is gone
        capture_output=True,
        **_run_as(),
    )
    # pg_ctl returns once the pid file is gone; the postmaster may still be exiting.
    procs.stop(pid, timeout=timeout)


def destroy(data_dir: Path) -> None:
    stop(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
