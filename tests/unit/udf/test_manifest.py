"""The manifest model: each bad field is refused with an error naming it and what would fit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from trace_core.udf import errors, manifest

from tests.unit.udf import bundles
from tests.unit.udf.bundles import FILES

SIGNER = bundles.new_signer()
SHA = "0" * 64


def _doc(**overrides: Any) -> dict[str, Any]:
    return bundles.document(FILES, SIGNER, **overrides)


def _refused(document: Any) -> errors.InvalidManifestError:
    with pytest.raises(errors.InvalidManifestError) as info:
        manifest.validate(document)
    err = info.value
    assert err.entry == manifest.MANIFEST_ENTRY
    assert err.field in str(err) and err.expected in str(err)
    return err


def test_a_valid_manifest_keeps_files_sorted_and_round_trips() -> None:
    doc = _doc(files=list(reversed(_doc()["files"])))
    parsed = manifest.validate(doc)
    assert [f.path for f in parsed.files] == sorted(FILES)
    assert manifest.parse(parsed.to_json()) == parsed


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("manifest_version", 2, "1"),
    ("org", "Acme", "org slug"),
    ("org", "-acme", "org slug"),
    ("name", "", "bundle name"),
    ("name", "a" * 41, "bundle name"),
    ("name", "has space", "bundle name"),
    ("version", 0, "from 1"),
    ("version", -3, "from 1"),
    ("version", 2**31, "from 1"),
    ("version", "3", "from 1"),
    ("version", 3.0, "from 1"),
    ("version", True, "from 1"),
    ("runtime", "python3.11", "python3.12, nodejs22, rust"),
    ("runtime", "nodejs22.x", "python3.12, nodejs22, rust"),
    ("key_id", "ABC", "32 lowercase hex"),
    ("signature", "zz", "128 lowercase hex"),
])
def test_a_bad_top_level_field_is_named(field: str, value: Any, expected: str) -> None:
    err = _refused(_doc(**{field: value}))
    assert err.field == field
    assert expected in err.expected


@pytest.mark.parametrize(("limits", "field"), [
    ({"timeout_seconds": 0, "memory_mb": 128}, "limits.timeout_seconds"),
    ({"timeout_seconds": 901, "memory_mb": 128}, "limits.timeout_seconds"),
    ({"timeout_seconds": 3, "memory_mb": 64}, "limits.memory_mb"),
    ({"timeout_seconds": 3, "memory_mb": 10241}, "limits.memory_mb"),
    ({"timeout_seconds": 3}, "limits.memory_mb"),
    ({"timeout_seconds": 3, "memory_mb": 128, "cpu": 2}, "limits.cpu"),
])
def test_bad_limits_are_named(limits: dict[str, Any], field: str) -> None:
    assert _refused(_doc(limits=limits)).field == field


@pytest.mark.parametrize(("entry", "field", "rule"), [
    ({"path": "../x.py", "sha256": SHA, "size": 1}, "files[0].path", errors.Rule.PATH_TRAVERSAL),
    ({"path": "/x.py", "sha256": SHA, "size": 1}, "files[0].path", errors.Rule.ABSOLUTE_PATH),
    ({"path": "a\\x.py", "sha256": SHA, "size": 1}, "files[0].path", errors.Rule.BACKSLASH),
    ({"path": "x\n.py", "sha256": SHA, "size": 1}, "files[0].path", errors.Rule.CONTROL_CHARACTER),
    ({"path": "cafe\u0301.py", "sha256": SHA, "size": 1}, "files[0].path", errors.Rule.NOT_NFC),
    ({"path": "bundle_manifest.json", "sha256": SHA, "size": 1}, "files[0].path", errors.Rule.RESERVED_NAME),
    ({"path": "x.py", "sha256": "A" * 64, "size": 1}, "files[0].sha256", errors.Rule.MANIFEST),
    ({"path": "x.py", "sha256": SHA, "size": -1}, "files[0].size", errors.Rule.MANIFEST),
    ({"path": "x.py", "sha256": SHA}, "files[0].size", errors.Rule.MANIFEST),
])
def test_a_bad_file_entry_is_named_with_its_rule(entry: dict[str, Any], field: str, rule: errors.Rule) -> None:
    # GIVEN the bad entry first, so that it is files[0]
    err = _refused(_doc(files=[entry, *_doc()["files"]]))
    assert (err.field, err.rule) == (field, rule)


@pytest.mark.parametrize(("extra", "rule"), [
    ("main.py", errors.Rule.DUPLICATE_ENTRY),
    ("MAIN.py", errors.Rule.CASE_FOLD_COLLISION),
    ("main.py/inner.py", errors.Rule.FILE_DIRECTORY_CONFLICT),
])
def test_files_that_would_collide_on_disk_are_refused(extra: str, rule: errors.Rule) -> None:
    err = _refused(_doc(files=[*_doc()["files"], {"path": extra, "sha256": SHA, "size": 0}]))
    assert err.field.startswith("files") and err.rule == rule
    assert extra in str(err)


@pytest.mark.parametrize(("runtime", "entrypoint", "message"), [
    ("python3.12", "main", "module.function"),
    ("python3.12", "main.handler()", "module.function"),
    ("python3.12", "missing.handler", "missing.py"),
    ("nodejs22", "index.handler", "index.js"),
    ("nodejs22", "../main.handler", "file.export"),
    ("rust", "main.handler", "'bootstrap'"),
    ("rust", "bootstrap", "a file named 'bootstrap'"),
])
def test_an_entrypoint_must_fit_the_runtime_and_name_a_file(runtime: str, entrypoint: str, message: str) -> None:
    err = _refused(_doc(runtime=runtime, entrypoint=entrypoint))
    assert err.field == "entrypoint"
    assert message in str(err)


def test_valid_entrypoints_of_each_runtime() -> None:
    assert manifest.validate(_doc(runtime="nodejs22", entrypoint="main.handler")).runtime == "nodejs22"
    assert manifest.validate(_doc(entrypoint="lib.util.handler")).entrypoint == "lib.util.handler"
    rust = bundles.document({"bootstrap": b"\x7fELF"}, SIGNER, runtime="rust", entrypoint="bootstrap")
    assert manifest.validate(rust).runtime == "rust"


def test_an_unknown_field_is_refused() -> None:
    err = _refused(_doc(permissions=["network"]))
    assert err.field == "permissions" and "only the fields" in err.expected


def test_empty_files_and_non_objects_are_refused() -> None:
    assert _refused(_doc(files=[])).field == "files"
    assert _refused([1, 2]).field == "<document>"


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"org": "a", "org": "b"}', "appears twice"),
    (b'{"version": NaN}', "NaN is not JSON"),
    (b"\xff\xfe", "not UTF-8 JSON"),
    (b"{", "not UTF-8 JSON"),
    (b" " * (manifest.MAX_MANIFEST_BYTES + 1), "bytes"),
])
def test_parse_refuses_ambiguous_or_oversized_json(raw: bytes, message: str) -> None:
    with pytest.raises(errors.InvalidManifestError) as info:
        manifest.parse(raw)
    assert message in str(info.value)


def test_canonical_bytes_are_compact_sorted_ascii_and_exclude_the_signature() -> None:
    signed = bundles.signed(FILES | {"café.py": b""}, SIGNER)
    canonical = signed.canonical_bytes()
    assert canonical == json.dumps(json.loads(canonical), sort_keys=True, separators=(",", ":")).encode()
    assert canonical.isascii() and b"caf\\u00e9.py" in canonical
    assert b"signature" not in canonical
    for field in ("org", "name", "version", "runtime", "entrypoint", "limits", "files", "key_id"):
        assert f'"{field}":'.encode() in canonical
