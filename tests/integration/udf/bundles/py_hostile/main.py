"""A hostile Python handler: ``event["attack"]`` names what it tries (tests/integration/udf/test_sandbox.py)."""

import fcntl
import http.client
import json
import os
import signal
import socket
import struct
import sys
import time
import uuid

BOOT = uuid.uuid4().hex
SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1


class _Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.environ["TRACE_RUNTIME_SOCKET"])


def _post(request_id, body):
    conn = _Unix("localhost")
    conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", body=body,
                 headers={"Content-Length": str(len(body))})
    return conn.getresponse().status


def _interfaces():
    found = {}
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # any socket can ask about interfaces
    for _, name in socket.if_nameindex():
        flags = struct.unpack("16sH", fcntl.ioctl(probe, SIOCGIFFLAGS, struct.pack("16sH", name.encode(), 0)))[1]
        found[name] = bool(flags & IFF_UP)
    return found


def _syscalls():
    """What each forbidden call answers: its errno (0 would mean it worked)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    calls = {
        "unshare(CLONE_NEWUSER)": lambda: libc.unshare(0x10000000),
        "unshare(CLONE_NEWNET)": lambda: libc.unshare(0x40000000),
        "ptrace(PTRACE_TRACEME)": lambda: libc.ptrace(0, 0, None, None),
        "mount(tmpfs)": lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
        "keyctl": lambda: libc.syscall(250, 0, 0, 0, 0),
        "bpf": lambda: libc.syscall(321, 0, None, 0),
        "socket(AF_INET)": lambda: libc.socket(2, 1, 0),
        "socket(AF_INET6)": lambda: libc.socket(10, 1, 0),
    }
    found = {}
    for name, call in calls.items():
        ctypes.set_errno(0)
        found[name] = 0 if call() >= 0 else ctypes.get_errno()
    return found


def handler(event, context):
    attack = event.get("attack", "noop")
    if attack == "noop":
        return {"boot": BOOT, "uid": os.getuid(), "env": dict(os.environ)}
    if attack == "interfaces":
        return {"interfaces": _interfaces()}
    if attack == "tcp":
        with socket.create_connection(("127.0.0.1", event["port"]), timeout=2):
            return {"connected": True}
    if attack == "read":
        with open(event["path"], "rb") as f:
            return {"read": f.read(4096).decode("latin-1")}
    if attack == "list":
        return {"listed": os.listdir(event["path"])}
    if attack == "write":
        written = []
        for path in event["paths"]:
            try:
                with open(path, "w") as f:
                    f.write("x")
                written.append(path)
            except OSError:
                pass
        if written:
            return {"wrote": written}
        raise PermissionError(f"could not write any of {event['paths']}")
    if attack == "tmp":
        with open("/tmp/scratch", "w") as f:
            f.write("ok")
        return {"tmp": open("/tmp/scratch").read()}
    if attack == "forkbomb":
        children = 0
        while True:
            pid = os.fork()  # raises BlockingIOError once RLIMIT_NPROC is reached
            if pid == 0:
                time.sleep(3600)
                os._exit(0)
            children += 1
    if attack == "allocate":
        hog = []
        while True:
            hog.append(bytearray(16 * 1024 * 1024))
    if attack == "loop":
        while True:
            pass
    if attack == "sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(1)
    if attack == "stdout":
        chunk = "x" * (1024 * 1024)
        for _ in range(4096):  # 4 GB
            sys.stdout.write(chunk)
        return {"wrote": "4 GB"}
    if attack == "exit":
        os._exit(3)
    if attack == "forged":
        return {"status": _post(str(uuid.uuid4()), b'"forged"')}
    if attack == "twice":
        first = _post(context.aws_request_id, json.dumps({"answer": "first"}).encode())
        return {"answer": "second", "first_status": first}
    if attack == "invalid_json":
        _post(context.aws_request_id, b"{not json")
        return {"answer": "too late"}
    if attack == "oversize":
        return "x" * (7 * 1024 * 1024)
    if attack == "syscalls":
        return {"errno": _syscalls()}
    if attack == "unserialisable":
        return {"value": object()}
    raise ValueError(f"unknown attack {attack!r}")
