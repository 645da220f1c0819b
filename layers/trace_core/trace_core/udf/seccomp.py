"""The seccomp filter of the Lite sandbox: a classic BPF program, generated here (no libseccomp).

bubblewrap loads it (``--seccomp FD``) right before it runs the runtime. It denies what a
handler never needs and what widens the kernel's attack surface: tracing other processes,
mounting, new namespaces, kernel modules and keyrings, eBPF, perf, io_uring, and sockets of the
internet families (the sandbox has no network anyway). Everything else is allowed.

Only x86_64 is described; any other architecture (or the x32 ABI) is killed by the filter.
The layout is the kernel's ``struct seccomp_data`` and ``struct sock_filter``
(https://www.kernel.org/doc/html/latest/userspace-api/seccomp_filter.html).
"""

from __future__ import annotations

import errno
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
_NR = 0
_ARCH = 4
_ARG0 = 16  # the low 32 bits of args[0] on a little-endian machine

_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K

RET_KILL_PROCESS = 0x80000000
RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000

# x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl), denied with EPERM.
DENIED_X86_64: dict[str, int] = {
    "ptrace": 101, "syslog": 103, "uselib": 134, "vhangup": 153, "pivot_root": 155,
    "adjtimex": 159, "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173, "init_module": 175,
    "delete_module": 176, "quotactl": 179, "lookup_dcookie": 212, "clock_settime": 227, "add_key": 248,
    "request_key": 249, "keyctl": 250, "kexec_load": 246, "unshare": 272, "perf_event_open": 298,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313, "kexec_file_load": 320,
    "bpf": 321, "userfaultfd": 323, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "mount_setattr": 442,
}
# Answered "not implemented", so that libraries fall back: glibc from clone3 to clone (whose flags
# the filter can read), libuv from io_uring to its thread pool.
UNSUPPORTED_X86_64: dict[str, int] = {
    "clone3": 435, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
}
SOCKET_X86_64 = 41
CLONE_X86_64 = 56
DENIED_SOCKET_FAMILIES = {"AF_INET": 2, "AF_INET6": 10, "AF_PACKET": 17}
# clone flags that make namespaces (CLONE_NEWNS .. CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME)
CLONE_NAMESPACE_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
                         | 0x40000000 | 0x80)


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _errno(number: int) -> int:
    return _RET_ERRNO | (number & 0xFFFF)


def program() -> bytes:
    """The filter for x86_64, as bwrap's ``--seccomp`` reads it (struct sock_filter, native order)."""
    insns = [
        _insn(_LD_W_ABS, _ARCH),
        _insn(_JEQ, AUDIT_ARCH_X86_64, jt=1),
        _insn(_RET, RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _NR),
        _insn(_JGE, X32_SYSCALL_BIT, jf=1),
        _insn(_RET, RET_KILL_PROCESS),
    ]
    for number in DENIED_X86_64.values():
        insns += [_insn(_JEQ, number, jf=1), _insn(_RET, _errno(errno.EPERM))]
    for number in UNSUPPORTED_X86_64.values():
        insns += [_insn(_JEQ, number, jf=1), _insn(_RET, _errno(errno.ENOSYS))]
    # socket(family, ...): the internet families refused
    socket_block = [_insn(_LD_W_ABS, _ARG0)]
    for family in DENIED_SOCKET_FAMILIES.values():
        socket_block += [_insn(_JEQ, family, jf=1), _insn(_RET, _errno(errno.EAFNOSUPPORT))]
    socket_block.append(_insn(_RET, RET_ALLOW))
    insns += [_insn(_JEQ, SOCKET_X86_64, jf=len(socket_block)), *socket_block]
    # clone(flags, ...): no new namespaces
    clone_block = [_insn(_LD_W_ABS, _ARG0), _insn(_JSET, CLONE_NAMESPACE_FLAGS, jf=1),
                   _insn(_RET, _errno(errno.EPERM)), _insn(_RET, RET_ALLOW)]
    insns += [_insn(_JEQ, CLONE_X86_64, jf=len(clone_block)), *clone_block]
    insns.append(_insn(_RET, RET_ALLOW))
    return b"".join(insns)
