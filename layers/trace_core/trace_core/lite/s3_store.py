"""The moto server's S3, kept on disk: every change is written through before the response, reloaded at start.

moto keeps S3 in memory. In Lite the server runs with a data directory
(``$TRACE_HOME/s3``), and :func:`install` makes it durable:

- moto's backend methods that create or remove an object or a bucket
  (``put_object``, which PutObject, CopyObject and CompleteMultipartUpload all
  end in; ``delete_object``, which DeleteObjects calls per key; ``create_bucket``;
  ``delete_bucket``) note what they touched, per request thread;
- :func:`wrap` runs after moto built its response and before a byte of it goes
  out: it writes each touched object's *current* state (bytes, content type and
  user metadata, ETag, checksum, last-modified) to its file, atomically (temporary
  file, fsync, rename), or removes the file. A client that saw a success can
  rely on the object being on disk; if the write fails, the client gets a 500.
- :func:`load` puts every stored bucket and object back into moto's backend at
  start, before the server accepts requests.

Layout (readable with ``ls``; the key is stored inside each file)::

    <root>/<bucket>/.bucket.json                   account, partition, region
    <root>/<bucket>/<seg>/<seg>/<last seg>@obj     b"trace-s3/1\\n" + JSON header + b"\\n" + bytes
    <root>/.tmp/                                   files being written

Each key segment is percent-encoded (``quote(seg, safe="")``; ``""``, ``.`` and
``..`` get their own spellings), and ``@`` (always encoded in a segment) marks
object files, so a key ``a`` and a key ``a/b`` never collide. Only the latest
version of an object is kept (Trace never enables versioning); tags and ACLs
are not kept. See docs/decisions/1303-durable-lite.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)

FORMAT = b"trace-s3/1\n"
OBJECT_SUFFIX = "@obj"
BUCKET_FILE = ".bucket.json"
TMP_DIR = ".tmp"
_SPECIAL = {"": "%", ".": "%2E", "..": "%2E%2E"}  # quote() leaves these as they are

# (backend, bucket, key or None for the bucket itself) touched by the current request's thread.
Change = tuple[Any, str, str | None]
_touched = threading.local()


def _segment(part: str) -> str:
    return _SPECIAL.get(part) or quote(part, safe="")


def object_path(root: Path, bucket: str, key: str) -> Path:
    """Where ``key`` of ``bucket`` is stored: a pure function of the key, never outside ``root/bucket``."""
    *dirs, last = key.split("/")
    return root.joinpath(_segment(bucket), *(_segment(d) for d in dirs), _segment(last) + OBJECT_SUFFIX)


class Mirror:
    """The on-disk copy of moto's S3 under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._tmp = self.root / TMP_DIR
        # One lock per key stripe: the write of a key reads moto's current state under it, so the
        # last write of a key always stores its last state. Directories are made and pruned under _dirs.
        self._stripes = [threading.Lock() for _ in range(64)]
        self._dirs = threading.Lock()

    # ------------------------------------------------------------ writing
    def apply(self, changes: Iterable[Change]) -> None:
        """Store the current state of every touched bucket and object (in order)."""
        for backend, bucket, key in changes:
            if key is None:
                self._sync_bucket(backend, bucket)
            else:
                self._sync_object(backend, bucket, key)

    def _sync_bucket(self, backend: Any, bucket: str) -> None:
        folder = self.root / _segment(bucket)
        found = backend.buckets.get(bucket)
        with self._dirs:
            if found is None:
                shutil.rmtree(folder, ignore_errors=True)
                return
            if (folder / BUCKET_FILE).exists():
                return
            folder.mkdir(parents=True, exist_ok=True)
        info = {"name": bucket, "account_id": backend.account_id, "partition": backend.partition,
                "region": found.region_name}
        self._write(folder / BUCKET_FILE, [json.dumps(info).encode()])

    def _sync_object(self, backend: Any, bucket: str, key: str) -> None:
        path = object_path(self.root, bucket, key)
        with self._stripes[hash((bucket, key)) % len(self._stripes)]:
            found = backend.buckets.get(bucket)
            current = found.keys.get(key) if found is not None else None
            if current is None or not hasattr(current, "value"):  # gone, or a delete marker
                self._remove(path, self.root / _segment(bucket))
                return
            header = {
                "key": key,
                "etag": current.etag.strip('"'),
                "last_modified": current.last_modified.isoformat(),
                "metadata": dict(current.metadata),
                "checksum_algorithm": current.checksum_algorithm,
                "checksum_value": current.checksum_value,
                "size": current.size,
            }
            self._write(path, [FORMAT, json.dumps(header).encode(), b"\n", current.value])

    def _write(self, path: Path, chunks: list[bytes]) -> None:
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / uuid.uuid4().hex
        try:
            with open(tmp, "wb") as out:
                out.writelines(chunks)
                out.flush()
                os.fsync(out.fileno())
            with self._dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _remove(self, path: Path, bucket_dir: Path) -> None:
        with self._dirs:
            path.unlink(missing_ok=True)
            # Prune emptied folders (a cleaned staging prefix leaves a tree of them), never the bucket's.
            parent = path.parent
            while parent != bucket_dir and bucket_dir in parent.parents:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def clear(self) -> None:
        """Forget everything (moto's own reset, ``POST /moto-api/reset``, wiped the memory too)."""
        with self._dirs:
            for child in self.root.iterdir() if self.root.exists() else ():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)

    # ------------------------------------------------------------ reading
    def load(self, backends: Any) -> tuple[int, int]:
        """Put every stored bucket and object into moto's ``s3_backends``; returns (buckets, objects)."""
        shutil.rmtree(self._tmp, ignore_errors=True)  # writes a crash interrupted: never acknowledged
        buckets = objects = 0
        if not self.root.exists():
            return 0, 0
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and p.name != TMP_DIR):
            try:
                info = json.loads((folder / BUCKET_FILE).read_text())
            except (OSError, ValueError) as exc:
                logger.warning("s3: skipping %s: no readable %s (%s)", folder, BUCKET_FILE, exc)
                continue
            backend = backends[info["account_id"]][info["partition"]]
            if info["name"] not in backend.buckets:
                backend.create_bucket(info["name"], info["region"])
            buckets += 1
            for path in _object_files(folder):
                try:
                    header, value = read_object(path)
                except (OSError, ValueError) as exc:
                    logger.warning("s3: skipping unreadable object file %s (%s)", path, exc)
                    continue
                _restore(backend, info["name"], header, value)
                objects += 1
        return buckets, objects


def _object_files(folder: Path) -> Iterator[Path]:
    for directory, _, files in os.walk(folder):
        for name in sorted(files):
            if name.endswith(OBJECT_SUFFIX):
                yield Path(directory) / name


def read_object(path: Path) -> tuple[dict[str, Any], bytes]:
    """The header and bytes of one stored object; ValueError if the file is not one."""
    with open(path, "rb") as handle:
        if handle.readline() != FORMAT:
            raise ValueError("not a trace-s3/1 object file")
        header = json.loads(handle.readline())
        value = handle.read()
    if len(value) != header["size"]:
        raise ValueError(f"{len(value)} bytes stored, header says {header['size']}")
    return header, value


def _restore(backend: Any, bucket: str, header: dict[str, Any], value: bytes) -> None:
    key = backend.put_object(bucket, header["key"], value, etag=header["etag"],
                             checksum_value=header.get("checksum_value"), disable_notification=True)
    key.set_metadata(dict(header["metadata"]))
    key.checksum_algorithm = header.get("checksum_algorithm")
    key.last_modified = dt.datetime.fromisoformat(header["last_modified"])


# ------------------------------------------------------------ moto hooks
def _recording(method: Callable[..., Any], bucket_arg: str, key_arg: str | None) -> Callable[..., Any]:
    signature = inspect.signature(method)

    @functools.wraps(method)
    def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        changes = getattr(_touched, "changes", None)
        if changes is not None:  # inside a request (not while loading)
            bound = signature.bind(self, *args, **kwargs).arguments
            changes.append((self, bound[bucket_arg], bound[key_arg] if key_arg else None))
        return result

    return recorded


_HOOKS = (("put_object", "bucket_name", "key_name"), ("delete_object", "bucket_name", "key_name"),
          ("create_bucket", "bucket_name", None), ("delete_bucket", "bucket_name", None))


def install() -> None:
    """Make moto's S3 backend note each bucket and object a request changes (once per process)."""
    from moto.s3.models import S3Backend

    for name, bucket_arg, key_arg in _HOOKS:
        method = getattr(S3Backend, name)
        if not getattr(method, "_trace_recorded", False):
            hooked = _recording(method, bucket_arg, key_arg)
            hooked._trace_recorded = True  # type: ignore[attr-defined]
            setattr(S3Backend, name, hooked)


@contextlib.contextmanager
def _recording_changes() -> Iterator[list[Change]]:
    changes: list[Change] = []
    _touched.changes = changes
    try:
        yield changes
    finally:
        _touched.changes = None


def wrap(app: Callable[..., Any], mirror: Mirror) -> Callable[..., Any]:
    """The WSGI ``app`` with every S3 change written to ``mirror`` before its response is sent."""

    def durable(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        held: list[Any] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            held[:] = [status, headers, exc_info]
            return _no_write

        with _recording_changes() as changes:
            body = app(environ, hold)
        try:
            if changes:
                mirror.apply(changes)
            elif environ.get("PATH_INFO") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                mirror.clear()
        except Exception as exc:  # any failure: the client must not believe an unsaved change was kept
            logger.exception("s3: writing a change to %s failed", mirror.root)
            if hasattr(body, "close"):
                body.close()
            message = (f"<Error><Code>InternalError</Code><Message>Lite could not store the change on disk: "
                       f"{type(exc).__name__}</Message></Error>").encode()
            start_response("500 Internal Server Error",
                           [("Content-Type", "application/xml"), ("Content-Length", str(len(message)))])
            return [message]
        start_response(*held)
        return body

    return durable


def _no_write(data: bytes) -> None:
    raise RuntimeError("moto's app wrote through start_response's write(); the durable wrapper does not support it")
