"""Bundle archives: building them deterministically, and the fail-closed check at upload and load.

Pure: bytes in, a verdict out (and, for :func:`load`, files written into a fresh directory). No S3,
no Postgres: the caller passes the signing keys as a lookup and the registry's facts as values, and
stores the archive under :func:`content_address` itself.

Every refusal is a :class:`~trace_core.udf.errors.BundleRejectedError` naming the entry and the
rule; nothing is returned, and :func:`load` leaves nothing behind, unless every rule holds. The
rules, in the order they are checked, are listed in docs/specs/udf.md ("The loader's rules").
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from trace_core.udf import errors, models, paths, signing
from trace_core.udf import manifest as manifest_mod

Rule = errors.Rule
ARCHIVE = "<archive>"  # the entry named when a rule is about the archive as a whole
MIB = 1024 * 1024
CHUNK = 64 * 1024

# Modes set by us, whatever the archive says.
FILE_MODE = 0o444
EXECUTABLE_MODE = 0o555
DIRECTORY_MODE = 0o555
EXECUTABLES = frozenset({manifest_mod.RUST_BOOTSTRAP})  # top-level paths that are run, not read

# A fixed timestamp (the earliest a zip can say) makes the same files give the same archive bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_UNIX = 3  # ZipInfo.create_system: the mode in the high bits of external_attr is a Unix st_mode
_UTF8_NAME = 0x800
_ENCRYPTED = 0x1 | 0x40 | 0x2000  # traditional, strong, central-directory encryption
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
# Never packed by build: byte-code caches and VCS metadata are not part of a function.
SKIPPED_DIRECTORIES = frozenset({"__pycache__", ".git"})

KeyLookup = Callable[[str, str], models.SigningKey | None]
"""``(org, key_id) -> SigningKey | None``: the registry's keys (``PostgresBundleRegistry.get_key``)."""


@dataclasses.dataclass(frozen=True)
class Caps:
    """Size caps of a bundle (zip-bomb and resource limits). Defaults follow Lambda's own quotas."""

    max_archive_bytes: int = 50 * MIB  # Lambda's limit for a zip uploaded directly
    max_total_bytes: int = 250 * MIB  # Lambda's limit for a function unzipped
    max_file_bytes: int = 100 * MIB
    max_entries: int = 5000
    max_depth: int = paths.DEFAULT_MAX_DEPTH
    max_ratio: int = 200  # uncompressed / compressed, per entry and for the whole archive
    ratio_floor_bytes: int = 1 * MIB  # smaller files may compress better than that (whitespace, zeros)


@dataclasses.dataclass(frozen=True)
class VerifiedBundle:
    """An archive that passed every rule: its signed manifest, digest, size and content address."""

    manifest: manifest_mod.Manifest
    sha256: str
    size: int
    storage_key: str


@dataclasses.dataclass(frozen=True)
class LoadedBundle:
    """A verified bundle extracted into ``root`` (files 0444, ``bootstrap`` 0555, directories 0555)."""

    bundle: VerifiedBundle
    root: Path


def content_address(org: str, sha256: str) -> str:
    """Where an archive is stored: a pure function of its org and digest (retries overwrite the same key)."""
    return f"bundles/{org}/{sha256}.zip"


# ---------------------------------------------------------------- building


def read_directory(directory: Path) -> dict[str, bytes]:
    """The files under ``directory`` by bundle path (``bundle_manifest.json`` and caches skipped).

    A symlink, device or other special file is refused, as the loader would refuse it.
    """
    found: dict[str, bytes] = {}
    for current, dirs, files in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRECTORIES)
        for name in [*dirs, *files]:
            full = Path(current, name)
            rel = full.relative_to(directory).as_posix()
            mode = full.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise errors.BundleRejectedError("a bundle holds regular files only", entry=rel, rule=Rule.SYMLINK)
            if name in files and not stat.S_ISREG(mode):
                raise errors.BundleRejectedError("a bundle holds regular files only", entry=rel,
                                                 rule=Rule.NOT_REGULAR_FILE)
        for name in files:
            rel = Path(current, name).relative_to(directory).as_posix()
            if rel != manifest_mod.MANIFEST_ENTRY:
                found[rel] = Path(current, name).read_bytes()
    return found


def file_entries(files: Mapping[str, bytes]) -> tuple[manifest_mod.FileEntry, ...]:
    """The manifest's ``files`` for these contents (sorted by path)."""
    return tuple(manifest_mod.FileEntry(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
                 for path, data in sorted(files.items()))


def build(files: Mapping[str, bytes], *, org: str, name: str, version: int, runtime: manifest_mod.Runtime,
          entrypoint: str, limits: manifest_mod.Limits, private_key: bytes) -> bytes:
    """A signed bundle archive of ``files``: same inputs, same bytes."""
    unsigned = manifest_mod.validate({
        "manifest_version": manifest_mod.MANIFEST_VERSION, "org": org, "name": name, "version": version,
        "runtime": runtime, "entrypoint": entrypoint, "limits": limits.model_dump(),
        "files": [f.model_dump() for f in file_entries(files)],
        "key_id": signing.key_id(signing.public_key(private_key)),
    })
    return pack(signing.sign_manifest(unsigned, private_key), files)


def pack(manifest: manifest_mod.Manifest, files: Mapping[str, bytes]) -> bytes:
    """The zip of ``manifest`` and ``files``: sorted entries, fixed timestamps, deflate, modes set by us.

    ``files`` must be exactly the manifest's files, with their digests and sizes.
    """
    if file_entries(files) != manifest.files:
        raise ValueError("files are not the manifest's files (paths, sha256 or sizes differ)")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path, data in sorted({**files, manifest_mod.MANIFEST_ENTRY: manifest.to_json()}.items()):
            info = zipfile.ZipInfo(path, date_time=ZIP_EPOCH)
            info.create_system = _UNIX
            info.external_attr = (stat.S_IFREG | (0o755 if path in EXECUTABLES else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compresslevel=9)
    return out.getvalue()


# ---------------------------------------------------------------- checking


def check_upload(archive: bytes, *, org: str, keys: KeyLookup, latest_version: int | None,
                 caps: Caps = Caps()) -> VerifiedBundle:
    """Every rule, for an archive ``org`` uploads; ``latest_version`` is the newest registered (or None).

    The version must be strictly newer: the same version again is a replay, an older one a rollback.
    """

    def identity(manifest: manifest_mod.Manifest) -> None:
        if manifest.org != org:
            raise errors.BundleRejectedError(f"signed for org {manifest.org!r}, uploaded by {org!r}",
                                             entry=manifest_mod.MANIFEST_ENTRY, rule=Rule.ORG_MISMATCH)
        if latest_version is not None and manifest.version <= latest_version:
            raise errors.version_not_newer(manifest.name, manifest.version, latest_version)

    return _Check(archive, keys, caps).run(identity, None)


def check_load(archive: bytes, *, expected: models.BundleVersion, keys: KeyLookup,
               caps: Caps = Caps()) -> VerifiedBundle:
    """Every rule, for an archive fetched to run ``expected`` (its registered digest, size and manifest)."""
    check = _Check(archive, keys, caps, expected=expected)
    return check.run(_load_identity(expected), None)


def load(archive: bytes, destination: Path, *, expected: models.BundleVersion, keys: KeyLookup,
         caps: Caps = Caps()) -> LoadedBundle:
    """:func:`check_load`, extracting into ``destination`` (which must not exist) in the same pass.

    Files are written into a private staging directory beside ``destination`` and renamed into place
    only when every rule held; on any refusal the staging directory is removed.
    """
    if destination.exists() or destination.is_symlink():
        raise errors.ExtractionError(f"{destination} exists; a bundle is extracted into a fresh directory",
                                     path=str(destination))
    if not destination.parent.is_dir():
        raise errors.ExtractionError(f"{destination.parent} is not a directory", path=str(destination))
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        bundle = _Check(archive, keys, caps, expected=expected).run(_load_identity(expected), staging)
        _seal(staging, bundle.manifest.files)
        # rename(2) replaces an empty directory created meanwhile; callers own ``destination``'s parent.
        staging.rename(destination)
    except BaseException:
        remove(staging)
        raise
    return LoadedBundle(bundle=bundle, root=destination)


def remove(root: Path) -> None:
    """Delete an extracted bundle (its directories are read-only, so plain ``rmtree`` cannot)."""
    if not root.exists():
        return
    for current, _dirs, _files in os.walk(root):
        os.chmod(current, 0o700)
    shutil.rmtree(root)


def _load_identity(expected: models.BundleVersion) -> Callable[[manifest_mod.Manifest], None]:
    def identity(manifest: manifest_mod.Manifest) -> None:
        found = (manifest.org, manifest.name, manifest.version)
        wanted = (expected.org, expected.name, expected.version)
        if found != wanted or manifest != expected.manifest:
            raise errors.BundleRejectedError(
                f"the archive holds {found[0]}/{found[1]}@{found[2]}, not the registered manifest of "
                f"{wanted[0]}/{wanted[1]}@{wanted[2]}", entry=manifest_mod.MANIFEST_ENTRY,
                rule=Rule.IDENTITY_MISMATCH)
    return identity


def _seal(root: Path, files: Iterable[manifest_mod.FileEntry]) -> None:
    """Set the modes: files 0444 (``bootstrap`` 0555), then directories 0555, deepest first."""
    for entry in files:
        os.chmod(root / entry.path, EXECUTABLE_MODE if entry.path in EXECUTABLES else FILE_MODE)
    directories = sorted((Path(d) for d, _, _ in os.walk(root)), key=lambda p: len(p.parts), reverse=True)
    for directory in directories:
        os.chmod(directory, DIRECTORY_MODE)


def _refuse(message: str, entry: str, rule: errors.Rule) -> errors.BundleRejectedError:
    return errors.BundleRejectedError(message, entry=entry, rule=rule)


class _Check:
    """One pass over one archive, in the order of docs/specs/udf.md."""

    def __init__(self, archive: bytes, keys: KeyLookup, caps: Caps,
                 expected: models.BundleVersion | None = None) -> None:
        self.archive = archive
        self.keys = keys
        self.caps = caps
        self.expected = expected
        self.total = 0

    def run(self, identity: Callable[[manifest_mod.Manifest], None], destination: Path | None) -> VerifiedBundle:
        sha256 = self._whole_archive()
        try:
            zf = zipfile.ZipFile(io.BytesIO(self.archive))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
            raise _refuse(f"not a readable zip archive ({exc})", ARCHIVE, Rule.NOT_A_ZIP) from exc
        with zf:
            infos = zf.infolist()
            if len(infos) > self.caps.max_entries + 1:  # + the manifest
                raise _refuse(f"{len(infos)} entries, more than {self.caps.max_entries} files and the manifest",
                              infos[self.caps.max_entries + 1].orig_filename, Rule.ENTRY_COUNT)
            self._layout(zf, infos)
            by_name = self._entries(infos)
            manifest = self._manifest(zf, by_name)
            identity(manifest)
            self._match(manifest, by_name)
            for entry in manifest.files:
                self._stream(zf, by_name[entry.path], entry, destination)
        return VerifiedBundle(manifest=manifest, sha256=sha256, size=len(self.archive),
                              storage_key=content_address(manifest.org, sha256))

    def _whole_archive(self) -> str:
        size, caps = len(self.archive), self.caps
        if size > caps.max_archive_bytes:
            raise _refuse(f"the archive is {size} bytes, more than {caps.max_archive_bytes}", ARCHIVE,
                          Rule.ARCHIVE_SIZE)
        sha256 = hashlib.sha256(self.archive).hexdigest()
        if self.expected is not None:
            if size != self.expected.size:
                raise _refuse(f"the archive is {size} bytes, the registry says {self.expected.size}", ARCHIVE,
                              Rule.ARCHIVE_SIZE)
            if sha256 != self.expected.sha256:
                raise _refuse(f"the archive's sha256 is {sha256}, the registry says {self.expected.sha256}",
                              ARCHIVE, Rule.ARCHIVE_SHA256)
        return sha256

    def _layout(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
        """Entries start at byte 0 and never overlap (no prepended data, no overlapping-entry bomb)."""
        end = 0
        central = int(getattr(zf, "start_dir", len(self.archive)))
        for position, info in enumerate(sorted(infos, key=lambda i: i.header_offset)):
            name = info.orig_filename
            if position == 0 and info.header_offset != 0:
                raise _refuse(f"{info.header_offset} bytes precede the first entry", name, Rule.ARCHIVE_LAYOUT)
            if info.header_offset < end:
                raise _refuse("the entry overlaps the previous one", name, Rule.ARCHIVE_LAYOUT)
            header = self.archive[info.header_offset:info.header_offset + _LOCAL_HEADER.size]
            if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
                raise _refuse("no local file header where the central directory points", name, Rule.ARCHIVE_LAYOUT)
            fields = _LOCAL_HEADER.unpack(header)
            end = info.header_offset + _LOCAL_HEADER.size + fields[10] + fields[11] + info.compress_size
            if end > central:
                raise _refuse("the entry's data runs into the central directory", name, Rule.ARCHIVE_LAYOUT)

    def _entries(self, infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
        """Each entry: a clean name, a regular file, stored or deflated, within the caps; no two alike."""
        by_name: dict[str, zipfile.ZipInfo] = {}
        folded: dict[str, str] = {}
        declared_total = 0
        for info in infos:
            name = info.orig_filename
            self._entry(info)
            if name in by_name:
                raise _refuse("the name appears twice in the archive", name, Rule.DUPLICATE_ENTRY)
            key = name.casefold()
            if key in folded:
                raise _refuse(f"the same name as {folded[key]!r} when case-folded", name, Rule.CASE_FOLD_COLLISION)
            by_name[name], folded[key] = info, name
            declared_total += info.file_size
            if declared_total > self.caps.max_total_bytes:
                raise _refuse(f"the entries declare more than {self.caps.max_total_bytes} bytes in all", name,
                              Rule.TOTAL_SIZE)
        for key, name in folded.items():
            parts = key.split("/")
            for depth in range(1, len(parts)):
                if "/".join(parts[:depth]) in folded:
                    raise _refuse(f"it lies under {folded['/'.join(parts[:depth])]!r}, which is a file", name,
                                  Rule.FILE_DIRECTORY_CONFLICT)
        if declared_total >= self.caps.ratio_floor_bytes and declared_total > len(self.archive) * self.caps.max_ratio:
            raise _refuse(f"{declared_total} bytes from a {len(self.archive)}-byte archive, a ratio over "
                          f"{self.caps.max_ratio}", ARCHIVE, Rule.COMPRESSION_RATIO)
        return by_name

    def _entry(self, info: zipfile.ZipInfo) -> None:
        name, caps = info.orig_filename, self.caps
        if name.endswith("/"):
            raise _refuse("a directory entry; a bundle lists files only", name, Rule.DIRECTORY_ENTRY)
        if not name.isascii() and not info.flag_bits & _UTF8_NAME:
            raise _refuse("a non-ASCII name not flagged as UTF-8 (read as CP437)", name, Rule.NAME_ENCODING)
        if name != manifest_mod.MANIFEST_ENTRY:
            found = paths.problem(name, max_depth=caps.max_depth)
            if found is not None:
                raise _refuse(found[1], name, found[0])
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise _refuse("a symbolic link; a bundle holds regular files only", name, Rule.SYMLINK)
        if kind == stat.S_IFDIR or info.external_attr & 0x10:  # 0x10: the MS-DOS directory attribute
            raise _refuse("a directory entry; a bundle lists files only", name, Rule.DIRECTORY_ENTRY)
        if kind not in (0, stat.S_IFREG):
            raise _refuse(f"a special file (mode {mode:o}); a bundle holds regular files only", name,
                          Rule.NOT_REGULAR_FILE)
        if info.flag_bits & _ENCRYPTED:
            raise _refuse("an encrypted entry", name, Rule.ENCRYPTED)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _refuse(f"compression method {info.compress_type}; expected stored (0) or deflate (8)", name,
                          Rule.COMPRESSION_METHOD)
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _refuse("a stored entry whose sizes differ", name, Rule.CORRUPT_ENTRY)
        if info.file_size > caps.max_file_bytes:
            raise _refuse(f"{info.file_size} bytes, more than {caps.max_file_bytes}", name, Rule.FILE_SIZE)
        if info.file_size >= caps.ratio_floor_bytes and info.file_size > max(info.compress_size, 1) * caps.max_ratio:
            raise _refuse(f"{info.file_size} bytes from {info.compress_size} compressed, a ratio over "
                          f"{caps.max_ratio}", name, Rule.COMPRESSION_RATIO)

    def _manifest(self, zf: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]) -> manifest_mod.Manifest:
        """The manifest, signed by a known, unrevoked key of its org."""
        name = manifest_mod.MANIFEST_ENTRY
        info = by_name.get(name)
        if info is None:
            raise _refuse("the archive has no manifest", name, Rule.MANIFEST)
        if info.file_size > manifest_mod.MAX_MANIFEST_BYTES:
            raise _refuse(f"the manifest is over {manifest_mod.MAX_MANIFEST_BYTES} bytes", name, Rule.MANIFEST)
        raw = io.BytesIO()
        self._read(zf, info, name, info.file_size, raw.write)
        manifest = manifest_mod.parse(raw.getvalue())
        if manifest.signature is None:
            raise _refuse("the manifest is unsigned", name, Rule.BAD_SIGNATURE)
        key = self.keys(manifest.org, manifest.key_id)
        if key is None or key.org != manifest.org or key.key_id != manifest.key_id:
            raise _refuse(f"key {manifest.key_id} is not a registered key of org {manifest.org!r}", name,
                          Rule.UNKNOWN_KEY)
        if key.revoked:
            raise _refuse(f"key {manifest.key_id} of org {manifest.org!r} was revoked at {key.revoked_at}", name,
                          Rule.REVOKED_KEY)
        if not signing.verify_manifest(manifest, key.public_key):
            raise _refuse(f"the signature is not key {manifest.key_id}'s signature of this manifest", name,
                          Rule.BAD_SIGNATURE)
        return manifest

    def _match(self, manifest: manifest_mod.Manifest, by_name: dict[str, zipfile.ZipInfo]) -> None:
        """The entries are exactly the manifest's files, of the sizes it says, within the caps."""
        listed = {f.path for f in manifest.files}
        present = set(by_name) - {manifest_mod.MANIFEST_ENTRY}
        extra, missing = sorted(present - listed), sorted(listed - present)
        if extra:
            raise _refuse("the entry is not among the manifest's files", extra[0], Rule.EXTRA_ENTRY)
        if missing:
            raise _refuse("a file of the manifest is not in the archive", missing[0], Rule.MISSING_ENTRY)
        total = 0
        for entry in manifest.files:
            info = by_name[entry.path]
            if info.file_size != entry.size:
                raise _refuse(f"the archive declares {info.file_size} bytes, the manifest {entry.size}", entry.path,
                              Rule.SIZE_MISMATCH)
            if entry.size > self.caps.max_file_bytes:
                raise _refuse(f"{entry.size} bytes, more than {self.caps.max_file_bytes}", entry.path, Rule.FILE_SIZE)
            total += entry.size
            if total > self.caps.max_total_bytes:
                raise _refuse(f"the files hold more than {self.caps.max_total_bytes} bytes in all", entry.path,
                              Rule.TOTAL_SIZE)

    def _stream(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, entry: manifest_mod.FileEntry,
                destination: Path | None) -> None:
        """Decompress ``entry``, counting and hashing; write it under ``destination`` when given."""
        if destination is None:
            digest = self._read(zf, info, entry.path, entry.size, None)
        else:
            target = destination / entry.path
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                digest = self._read(zf, info, entry.path, entry.size, out.write)
        if digest != entry.sha256:
            raise _refuse(f"the content's sha256 is {digest}, the manifest says {entry.sha256}", entry.path,
                          Rule.SHA256_MISMATCH)

    def _read(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, size: int,
              write: Callable[[bytes], object] | None) -> str:
        """The sha256 of the entry's bytes, refused as soon as they pass ``size`` (the manifest's) or a cap."""
        caps = self.caps
        digest = hashlib.sha256()
        count = 0
        try:
            with zf.open(info) as src:
                while chunk := src.read(CHUNK):
                    count += len(chunk)
                    self.total += len(chunk)
                    if count > size:
                        raise _refuse(f"more than the {size} bytes the manifest says", name, Rule.SIZE_MISMATCH)
                    if self.total > caps.max_total_bytes:
                        raise _refuse(f"the files hold more than {caps.max_total_bytes} bytes in all", name,
                                      Rule.TOTAL_SIZE)
                    if count >= caps.ratio_floor_bytes and count > max(info.compress_size, 1) * caps.max_ratio:
                        raise _refuse(f"over {caps.max_ratio} bytes out per compressed byte", name,
                                      Rule.COMPRESSION_RATIO)
                    digest.update(chunk)
                    if write is not None:
                        write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
            raise _refuse(f"the entry cannot be read ({exc})", name, Rule.CORRUPT_ENTRY) from exc
        if count != size:
            raise _refuse(f"{count} bytes, the manifest says {size}", name, Rule.SIZE_MISMATCH)
        return digest.hexdigest()
