"""The ``bundle_manifest.json`` model, its parser and its canonical signing bytes (pure).

A manifest says what a bundle is (org, name, version), how it runs (runtime, entrypoint, limits)
and exactly which files it holds (path, sha256, size). The Ed25519 signature covers
:meth:`Manifest.canonical_bytes`: every field but ``signature``, so changing any bound field,
any file's digest or size, or the key id invalidates it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from trace_core.udf import errors, paths

MANIFEST_ENTRY = errors.MANIFEST_ENTRY
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_VERSION = 2**31 - 1  # a Postgres integer
# Lambda's own bounds (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), so a
# bundle accepted here is accepted by CreateFunction too.
MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS = 1, 900
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10240

Runtime = Literal["python3.12", "nodejs22", "rust"]
RUNTIMES: tuple[Runtime, ...] = ("python3.12", "nodejs22", "rust")
RUST_BOOTSTRAP = "bootstrap"
NODE_EXTENSIONS = (".js", ".mjs", ".cjs")

_PYTHON_ENTRYPOINT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\.[A-Za-z_][A-Za-z0-9_]*$")
_NODE_ENTRYPOINT = re.compile(r"^([A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\.[A-Za-z_$][A-Za-z0-9_$]*$")

# What each field accepts, as errors state it.
EXPECTED: dict[str, str] = {
    "manifest_version": f"the integer {MANIFEST_VERSION}",
    "org": "an org slug: 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit",
    "name": "a bundle name: 1 to 40 of a-z, 0-9, '_' and '-', starting with a letter or digit",
    "version": f"an integer from 1 to {MAX_VERSION}",
    "runtime": "one of " + ", ".join(RUNTIMES),
    "entrypoint": ("python3.12: 'module.function' (main.handler); nodejs22: 'file.export' (index.handler); "
                   "rust: 'bootstrap'; naming a file of the bundle"),
    "limits": "an object with timeout_seconds and memory_mb",
    "limits.timeout_seconds": f"an integer from {MIN_TIMEOUT_SECONDS} to {MAX_TIMEOUT_SECONDS}",
    "limits.memory_mb": f"an integer from {MIN_MEMORY_MB} to {MAX_MEMORY_MB}",
    "files": "a non-empty list of {path, sha256, size}, one per file, no two paths equal when case-folded",
    "files[].path": "a clean relative NFC path (no '..', '.', empty component, leading '/', '\\', drive letter "
                    "or control character)",
    "files[].sha256": "64 lowercase hex digits",
    "files[].size": "an integer >= 0",
    "key_id": "32 lowercase hex digits (see trace_core.udf.signing.key_id)",
    "signature": "128 lowercase hex digits (an Ed25519 signature), or null before signing",
}


def _clean_path(path: str) -> str:
    found = paths.problem(path)
    if found is not None:
        rule, reason = found
        raise PydanticCustomError("bundle_path", "{reason}", {"rule": rule.value, "reason": reason})
    return path


Slug = Annotated[str, Field(strict=True, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
BundleName = Annotated[str, Field(strict=True, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Version = Annotated[int, Field(strict=True, ge=1, le=MAX_VERSION)]
Sha256 = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{64}$")]
KeyId = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{32}$")]
Signature = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{128}$")]
BundlePath = Annotated[str, Field(strict=True), AfterValidator(_clean_path)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limits(_Frozen):
    """What one invocation may use. The same numbers become the Lambda's Timeout and MemorySize."""

    timeout_seconds: Annotated[int, Field(strict=True, ge=MIN_TIMEOUT_SECONDS, le=MAX_TIMEOUT_SECONDS)]
    memory_mb: Annotated[int, Field(strict=True, ge=MIN_MEMORY_MB, le=MAX_MEMORY_MB)]


class FileEntry(_Frozen):
    """One file of the bundle: its path inside the bundle, and the digest and size of its bytes."""

    path: BundlePath
    sha256: Sha256
    size: Annotated[int, Field(strict=True, ge=0)]


class Manifest(_Frozen):
    """``bundle_manifest.json``. ``files`` is kept sorted by path; ``signature`` is None until signed."""

    manifest_version: Literal[1]
    org: Slug
    name: BundleName
    version: Version
    runtime: Runtime
    entrypoint: Annotated[str, Field(strict=True, min_length=1, max_length=256)]
    limits: Limits
    files: Annotated[tuple[FileEntry, ...], Field(min_length=1)]
    key_id: KeyId
    signature: Signature | None = None

    @field_validator("files")
    @classmethod
    def _sorted_and_distinct(cls, files: tuple[FileEntry, ...]) -> tuple[FileEntry, ...]:
        ordered = tuple(sorted(files, key=lambda f: f.path))
        seen: dict[str, str] = {}
        for entry in ordered:
            folded = entry.path.casefold()
            if folded in seen:
                rule = errors.Rule.DUPLICATE_ENTRY if seen[folded] == entry.path else errors.Rule.CASE_FOLD_COLLISION
                raise PydanticCustomError("bundle_path", "{reason}", {
                    "rule": rule.value, "path": entry.path,
                    "reason": f"{entry.path!r} is listed twice" if rule == errors.Rule.DUPLICATE_ENTRY
                    else f"{entry.path!r} and {seen[folded]!r} are the same name when case-folded"})
            seen[folded] = entry.path
        folded_files = set(seen)
        for entry in ordered:
            parts = entry.path.casefold().split("/")
            for depth in range(1, len(parts)):
                if "/".join(parts[:depth]) in folded_files:
                    raise PydanticCustomError("bundle_path", "{reason}", {
                        "rule": errors.Rule.FILE_DIRECTORY_CONFLICT.value, "path": entry.path,
                        "reason": f"{entry.path!r} is under {'/'.join(parts[:depth])!r}, which is a file"})
        return ordered

    @model_validator(mode="after")
    def _entrypoint_names_a_file(self) -> Manifest:
        problem = entrypoint_problem(self.runtime, self.entrypoint, {f.path for f in self.files})
        if problem is not None:
            raise PydanticCustomError("entrypoint", "{reason}", {"field": "entrypoint", "reason": problem})
        return self

    def canonical_bytes(self) -> bytes:
        """The signed bytes: compact JSON, sorted keys, ASCII only, of every field but ``signature``."""
        return canonical_bytes(self.model_dump(mode="json", exclude={"signature"}))

    def to_json(self) -> bytes:
        """The manifest as written into a bundle (deterministic: sorted keys, two-space indent)."""
        return (json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()

    def file(self, path: str) -> FileEntry | None:
        """The entry of ``path``, if the manifest lists it."""
        return next((f for f in self.files if f.path == path), None)


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """Compact JSON with sorted keys and ASCII escapes: one byte string per document."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def entrypoint_problem(runtime: str, entrypoint: str, files: set[str]) -> str | None:
    """Why ``entrypoint`` does not fit ``runtime`` or names no file of the bundle, or None."""
    if runtime == "rust":
        if entrypoint != RUST_BOOTSTRAP:
            return f"a rust bundle's entrypoint is {RUST_BOOTSTRAP!r} (its executable), not {entrypoint!r}"
        return None if RUST_BOOTSTRAP in files else f"a rust bundle ships a file named {RUST_BOOTSTRAP!r}"
    if runtime == "python3.12":
        if not _PYTHON_ENTRYPOINT.match(entrypoint):
            return f"{entrypoint!r} is not 'module.function' (for example main.handler)"
        module = entrypoint.rpartition(".")[0].replace(".", "/")
        candidates: tuple[str, ...] = (f"{module}.py", f"{module}/__init__.py")
    elif runtime == "nodejs22":
        if not _NODE_ENTRYPOINT.match(entrypoint):
            return f"{entrypoint!r} is not 'file.export' (for example index.handler)"
        module = entrypoint.rpartition(".")[0]
        candidates = tuple(module + ext for ext in NODE_EXTENSIONS)
    else:
        return None  # the runtime field reports its own error
    if not files & set(candidates):
        return f"{entrypoint!r} needs one of {', '.join(candidates)} in files"
    return None


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<document>"


def _expected(field: str) -> str:
    generic = re.sub(r"\[\d+\]", "[]", field)
    return EXPECTED.get(generic, EXPECTED.get(generic.split(".")[0], "a field of the manifest"))


def from_error(exc: ValidationError) -> errors.InvalidManifestError:
    """The first problem of ``exc`` as an :class:`InvalidManifestError` naming its field (all in ``problems``)."""
    problems = []
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        field = ctx.get("field") or _field(tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            expected = "only the fields " + ", ".join(sorted(Manifest.model_fields)) + " (and those of limits, files)"
        else:
            expected = _expected(field)
        problems.append({"field": field, "expected": expected, "message": str(err["msg"]),
                         "rule": ctx.get("rule", errors.Rule.MANIFEST.value), "path": ctx.get("path")})
    first = problems[0]
    field = first["field"] if first["path"] is None else f"{first['field']} ({first['path']})"
    return errors.InvalidManifestError(str(first["message"]), field=str(field), expected=str(first["expected"]),
                                       rule=errors.Rule(first["rule"]), problems=problems)


def validate(document: Any) -> Manifest:
    """A :class:`Manifest` from parsed JSON; an :class:`InvalidManifestError` names the first bad field."""
    if not isinstance(document, dict):
        raise errors.InvalidManifestError(f"the manifest is a JSON {type(document).__name__}",
                                          field="<document>", expected="a JSON object")
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        raise from_error(exc) from exc


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            # Two parsers could each read a different value: refuse rather than pick one.
            raise errors.InvalidManifestError(f"the key {key!r} appears twice in one object",
                                              field=key, expected="each key once")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise errors.InvalidManifestError(f"{name} is not JSON", field="<document>", expected="plain JSON numbers")


def parse(raw: bytes) -> Manifest:
    """The manifest in ``raw`` (the bytes of ``bundle_manifest.json``): strict UTF-8 JSON, each key once."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise errors.InvalidManifestError(f"the manifest is {len(raw)} bytes", field="<document>",
                                          expected=f"at most {MAX_MANIFEST_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise errors.InvalidManifestError(f"not UTF-8 JSON: {exc}", field="<document>",
                                          expected="a UTF-8 JSON object") from exc
    return validate(document)
