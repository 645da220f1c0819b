"""Linux Landlock for the query worker: the OS-level line behind DuckDB's own settings.

A process that calls :func:`restrict` (and every thread or child it creates
afterwards) can from then on only read beneath the ``read`` paths, read and
write beneath the ``write`` paths, make no TCP connections and bind no TCP
ports (ABI >= 4), and signal or reach abstract sockets only within its own
domain (ABI >= 6). It needs no privileges and cannot be undone.

Landlock exists on Linux 5.13+ when the kernel enables it; elsewhere
:func:`restrict` returns a reason and changes nothing (the engine reports the
sandbox level it got). Threads that already exist when :func:`restrict` runs
stay unrestricted, so the worker calls it before DuckDB creates any thread.

Kernel interface: https://docs.kernel.org/userspace-api/landlock.html
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os
import platform
import struct
from collections.abc import Iterable
from pathlib import Path

# Syscall numbers are the same on every architecture (added after the unified table).
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_EXECUTE = 1 << 0
_WRITE_FILE = 1 << 1
_READ_FILE = 1 << 2
_READ_DIR = 1 << 3
_REMOVE_DIR = 1 << 4
_REMOVE_FILE = 1 << 5
_MAKE_CHAR = 1 << 6
_MAKE_DIR = 1 << 7
_MAKE_REG = 1 << 8
_MAKE_SOCK = 1 << 9
_MAKE_FIFO = 1 << 10
_MAKE_BLOCK = 1 << 11
_MAKE_SYM = 1 << 12
_REFER = 1 << 13  # ABI 2
_TRUNCATE = 1 << 14  # ABI 3
_IOCTL_DEV = 1 << 15  # ABI 5
_FILE_ONLY = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
_READ = _EXECUTE | _READ_FILE | _READ_DIR
_NET_ALL = (1 << 0) | (1 << 1)  # bind and connect TCP, ABI 4
_SCOPE_ALL = (1 << 0) | (1 << 1)  # abstract unix sockets and signals, ABI 6


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What :func:`restrict` achieved: ``abi`` > 0 when enforced, else ``reason`` says why not."""

    abi: int
    reason: str

    @property
    def enforced(self) -> bool:
        return self.abi > 0


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is not available."""
    if platform.system() != "Linux":
        return 0
    libc = _libc()
    version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return int(version) if version > 0 else 0


def _handled_fs(abi: int) -> int:
    handled = (1 << 13) - 1
    if abi >= 2:
        handled |= _REFER
    if abi >= 3:
        handled |= _TRUNCATE
    if abi >= 5:
        handled |= _IOCTL_DEV
    return handled


def _ruleset_attr(abi: int, handled_fs: int) -> bytes:
    if abi >= 6:
        return struct.pack("=QQQ", handled_fs, _NET_ALL, _SCOPE_ALL)
    if abi >= 4:
        return struct.pack("=QQ", handled_fs, _NET_ALL)
    return struct.pack("=Q", handled_fs)


def restrict(*, read: Iterable[Path], write: Iterable[Path]) -> Outcome:
    """Confine this process to reading ``read`` and reading/writing ``write``; no TCP. Missing paths are skipped."""
    abi = abi_version()
    if abi <= 0:
        return Outcome(0, f"Landlock is not available on this kernel ({platform.system()} {platform.release()})")
    libc = _libc()
    handled = _handled_fs(abi)
    attr = _ruleset_attr(abi, handled)
    ruleset = libc.syscall(
        _SYS_CREATE_RULESET, ctypes.create_string_buffer(attr, len(attr)), ctypes.c_size_t(len(attr)),
        ctypes.c_uint32(0),
    )
    if ruleset < 0:
        return Outcome(0, f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}")
    try:
        for paths, access in ((read, _READ), (write, handled)):
            for path in paths:
                _add_rule(libc, int(ruleset), Path(path), access & handled)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return Outcome(0, f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
        if libc.syscall(_SYS_RESTRICT_SELF, int(ruleset), ctypes.c_uint32(0)) != 0:
            return Outcome(0, f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(int(ruleset))
    return Outcome(abi, "enforced")


def _add_rule(libc: ctypes.CDLL, ruleset: int, path: Path, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not path.is_dir():
            access &= _FILE_ONLY  # directory rights on a file are EINVAL
        rule = struct.pack("=Qi", access, fd)  # struct landlock_path_beneath_attr is packed
        if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.create_string_buffer(rule, len(rule)),
                        ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule({path}) failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
