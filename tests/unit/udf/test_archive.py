"""The fail-closed loader against each archive attack (docs/specs/udf.md, "Archive attacks").

Every refusal must name the entry and the rule, at upload and at load, and leave nothing extracted.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import pytest
from trace_core.udf import archive, errors, manifest, signing

from tests.unit.udf import bundles
from tests.unit.udf.bundles import FILES, ORG, Entry

Rule = errors.Rule
DEFAULT_CAPS = archive.Caps()


@pytest.fixture
def signer() -> bundles.Signer:
    return bundles.new_signer()


@pytest.fixture
def keys(signer: bundles.Signer) -> archive.KeyLookup:
    return bundles.lookup(signer.record())


@pytest.fixture
def refused(tmp_path: Path, keys: archive.KeyLookup):
    """Assert ``data`` is refused for ``entry`` and ``rule`` at upload, and at load with nothing left on disk."""

    def check(data: bytes, entry: str, rule: errors.Rule, *, signed: manifest.Manifest | None = None,
              keys: archive.KeyLookup = keys, latest: int | None = None, caps: archive.Caps = DEFAULT_CAPS,
              org: str = ORG) -> errors.BundleRejectedError:
        with pytest.raises(errors.BundleRejectedError) as upload:
            archive.check_upload(data, org=org, keys=keys, latest_version=latest, caps=caps)
        _names(upload.value, entry, rule)
        if signed is not None:
            land = tmp_path / "land"
            land.mkdir(exist_ok=True)
            with pytest.raises(errors.BundleRejectedError) as load:
                archive.load(data, land / "bundle", expected=bundles.registered(data, signed), keys=keys, caps=caps)
            _names(load.value, entry, rule)
            assert list(land.iterdir()) == []  # nothing extracted, not even the staging directory
        return upload.value

    return check


def _names(err: errors.BundleRejectedError, entry: str, rule: errors.Rule) -> None:
    assert (err.entry, err.rule) == (entry, rule), str(err)
    assert repr(entry) in str(err) and rule.value in str(err)
    assert err.details["entry"] == entry and err.details["rule"] == rule.value


def _honest(signer: bundles.Signer, files: dict[str, bytes] = FILES,
            **overrides: Any) -> tuple[bytes, manifest.Manifest]:
    signed = bundles.signed(files, signer, **overrides)
    return bundles.forge(signed, bundles.entries(files)), signed


# ---------------------------------------------------------------- the honest path


def test_an_honest_bundle_passes_and_extracts_with_our_modes(tmp_path: Path, signer, keys) -> None:
    # GIVEN a bundle built from files, with a rust-style bootstrap among them
    files = FILES | {"bootstrap": b"\x7fELF..."}
    data = archive.build(files, org=ORG, name="demo", version=1, runtime="python3.12", entrypoint="main.handler",
                         limits=manifest.Limits(timeout_seconds=3, memory_mb=128), private_key=signer.private_key)
    # WHEN it is uploaded, then loaded
    bundle = archive.check_upload(data, org=ORG, keys=keys, latest_version=None)
    loaded = archive.load(data, tmp_path / "b", expected=bundles.registered(data, bundle.manifest), keys=keys)
    # THEN it is content-addressed, and each file is extracted with the mode we set
    assert bundle.storage_key == f"bundles/{ORG}/{hashlib.sha256(data).hexdigest()}.zip"
    assert bundle.size == len(data)
    for path, content in files.items():
        assert (loaded.root / path).read_bytes() == content
    modes = {p.relative_to(loaded.root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in loaded.root.rglob("*")}
    assert modes == {"main.py": 0o444, "main.js": 0o444, "lib": 0o555, "lib/util.py": 0o444, "bootstrap": 0o555}
    assert stat.S_IMODE(loaded.root.stat().st_mode) == 0o555
    archive.remove(loaded.root)
    assert list(tmp_path.iterdir()) == []


def test_build_is_deterministic(signer) -> None:
    args: dict[str, Any] = {"org": ORG, "name": "demo", "version": 1, "runtime": "python3.12",
                            "entrypoint": "main.handler", "limits": manifest.Limits(timeout_seconds=3, memory_mb=128),
                            "private_key": signer.private_key}
    assert archive.build(FILES, **args) == archive.build(dict(reversed(FILES.items())), **args)


def test_read_directory_skips_caches_and_the_old_manifest_and_refuses_links(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "main.py").write_bytes(b"x")
    (tmp_path / "lib" / "util.py").write_bytes(b"y")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "main.pyc").write_bytes(b"z")
    (tmp_path / manifest.MANIFEST_ENTRY).write_bytes(b"{}")
    assert archive.read_directory(tmp_path) == {"main.py": b"x", "lib/util.py": b"y"}
    (tmp_path / "lib" / "link").symlink_to("/etc/passwd")
    with pytest.raises(errors.BundleRejectedError) as info:
        archive.read_directory(tmp_path)
    _names(info.value, "lib/link", Rule.SYMLINK)


def test_load_refuses_an_existing_destination(tmp_path: Path, signer, keys) -> None:
    data, signed = _honest(signer)
    (tmp_path / "b").mkdir()
    with pytest.raises(errors.ExtractionError):
        archive.load(data, tmp_path / "b", expected=bundles.registered(data, signed), keys=keys)
    assert list((tmp_path / "b").iterdir()) == []


# ---------------------------------------------------------------- zip-slip and bad names


@pytest.mark.parametrize(("name", "rule"), [
    ("../evil.py", Rule.PATH_TRAVERSAL),
    ("lib/../../evil.py", Rule.PATH_TRAVERSAL),
    ("/etc/cron.d/evil", Rule.ABSOLUTE_PATH),
    ("..\\evil.py", Rule.BACKSLASH),
    ("lib\\evil.py", Rule.BACKSLASH),
    ("C:/evil.py", Rule.DRIVE_LETTER),
    ("c:evil.py", Rule.DRIVE_LETTER),
    ("./main.py", Rule.DOT_COMPONENT),
    ("lib//evil.py", Rule.EMPTY_COMPONENT),
])
def test_zip_slip_names_are_refused(refused, signer, name: str, rule: errors.Rule) -> None:
    signed = bundles.signed(FILES, signer)
    refused(bundles.forge(signed, [*bundles.entries(FILES), Entry(name, b"pwned")]), name, rule, signed=signed)


@pytest.mark.parametrize("name", ["evil\n.py", "evil\r.py", "evil\x1b[2J.py", "evil\x7f.py", "evil\u202egnp.py",
                                  "evil\u200b.py", "evil\x85.py"])
def test_control_characters_in_names_are_refused(refused, signer, name: str) -> None:
    signed = bundles.signed(FILES, signer)
    refused(bundles.forge(signed, [*bundles.entries(FILES), Entry(name, b"x")]), name, Rule.CONTROL_CHARACTER,
            signed=signed)


def test_a_nul_byte_in_a_name_is_refused_not_truncated(refused, signer) -> None:
    # GIVEN an entry whose raw name is "main.py\0.sh" (zipfile would read it as "main.py")
    signed = bundles.signed(FILES, signer)
    data = bundles.forge(signed, [*bundles.entries(FILES), Entry("main.pyX.sh", b"x")])
    data = data.replace(b"main.pyX.sh", b"main.py\x00.sh")
    refused(data, "main.py\x00.sh", Rule.CONTROL_CHARACTER, signed=signed)


def test_an_nfd_name_is_refused_even_when_the_manifest_lists_its_nfc_form(refused, signer) -> None:
    nfc = unicodedata.normalize("NFC", "café.py")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    files = FILES | {nfc: b"x = 1\n"}
    signed = bundles.signed(files, signer)
    data = bundles.forge(signed, [*bundles.entries(FILES), Entry(nfd, b"x = 1\n")])
    refused(data, nfd, Rule.NOT_NFC, signed=signed)


def test_too_deep_a_path_is_refused(refused, signer) -> None:
    deep = "/".join(["d"] * 17) + ".py"
    signed = bundles.signed(FILES, signer)
    refused(bundles.forge(signed, [*bundles.entries(FILES), Entry(deep, b"x")]), deep, Rule.PATH_DEPTH, signed=signed)


# ---------------------------------------------------------------- links, devices, directories


@pytest.mark.parametrize(("mode", "rule"), [
    (stat.S_IFLNK | 0o777, Rule.SYMLINK),
    (stat.S_IFCHR | 0o666, Rule.NOT_REGULAR_FILE),
    (stat.S_IFBLK | 0o660, Rule.NOT_REGULAR_FILE),
    (stat.S_IFIFO | 0o644, Rule.NOT_REGULAR_FILE),
    (stat.S_IFSOCK | 0o644, Rule.NOT_REGULAR_FILE),
    (stat.S_IFDIR | 0o755, Rule.DIRECTORY_ENTRY),
])
def test_links_devices_and_directories_are_refused_even_when_listed(refused, signer, mode: int,
                                                                      rule: errors.Rule) -> None:
    # GIVEN the manifest honestly lists the entry's bytes (a link's target is its content)
    files = FILES | {"special": b"/etc/shadow"}
    signed = bundles.signed(files, signer)
    data = bundles.forge(signed, [*bundles.entries(FILES), Entry("special", b"/etc/shadow", mode=mode)])
    refused(data, "special", rule, signed=signed)


def test_a_directory_entry_is_refused(refused, signer) -> None:
    signed = bundles.signed(FILES, signer)
    refused(bundles.forge(signed, [Entry("lib/", b""), *bundles.entries(FILES)]), "lib/", Rule.DIRECTORY_ENTRY,
            signed=signed)


def test_an_msdos_directory_attribute_is_refused(refused, signer) -> None:
    files = FILES | {"dir": b""}
    signed = bundles.signed(files, signer)
    data = bundles.forge(signed, [*bundles.entries(FILES), Entry("dir", b"", mode=0, create_system=0, msdos_attr=0x10)])
    refused(data, "dir", Rule.DIRECTORY_ENTRY, signed=signed)


# ---------------------------------------------------------------- duplicates and collisions


def test_a_duplicate_entry_is_refused(refused, signer) -> None:
    # GIVEN main.py twice: the manifest's bytes first, other bytes second (which one would a reader pick?)
    signed = bundles.signed(FILES, signer)
    data = bundles.forge(signed, [*bundles.entries(FILES), Entry("main.py", b"import os; os.system('id')\n")])
    refused(data, "main.py", Rule.DUPLICATE_ENTRY, signed=signed)


def test_a_duplicate_manifest_is_refused(refused, signer) -> None:
    signed = bundles.signed(FILES, signer)
    data = bundles.forge(signed, [*bundles.entries(FILES), Entry(manifest.MANIFEST_ENTRY, b"{}")])
    refused(data, manifest.MANIFEST_ENTRY, Rule.DUPLICATE_ENTRY, signed=signed)


def test_a_case_fold_collision_is_refused(refused, signer) -> None:
    signed = bundles.signed(FILES, signer)
    data = bundles.forge(signed, [*bundles.entries(FILES), Entry("MAIN.py", b"x")])
    refused(data, "MAIN.py", Rule.CASE_FOLD_COLLISION, signed=signed)


def test_a_manifest_named_file_in_another_case_is_refused(refused, signer) -> None:
    signed = bundles.signed(FILES, signer)
    data = bundles.forge(signed, [*bundles.entries(FILES), Entry("Bundle_Manifest.json", b"{}")])
    refused(data, "Bundle_Manifest.json", Rule.RESERVED_NAME, signed=signed)


def test_a_file_under_a_file_is_refused(refused, signer) -> None:
    signed = bundles.signed(FILES, signer)
    data = bundles.forge(signed, [*bundles.entries(FILES), Entry("main.py/x", b"x")])
    refused(data, "main.py/x", Rule.FILE_DIRECTORY_CONFLICT, signed=signed)


# ---------------------------------------------------------------- the entries against the manifest


def test_an_extra_file_not_in_the_manifest_is_refused(refused, signer) -> None:
    signed = bundles.signed(FILES, signer)
    data = bundles.forge(signed, [*bundles.entries(FILES), Entry("sitecustomize.py", b"import evil\n")])
    refused(data, "sitecustomize.py", Rule.EXTRA_ENTRY, signed=signed)


def test_a_missing_file_is_refused(refused, signer) -> None:
    signed = bundles.signed(FILES, signer)
    data = bundles.forge(signed, [e for e in bundles.entries(FILES) if e.name != "lib/util.py"])
    refused(data, "lib/util.py", Rule.MISSING_ENTRY, signed=signed)


def test_a_missing_manifest_is_refused(refused) -> None:
    refused(bundles.write_zip(bundles.entries(FILES)), manifest.MANIFEST_ENTRY, Rule.MANIFEST)


def test_a_size_mismatch_is_refused(refused, signer) -> None:
    signed = bundles.signed(FILES, signer)
    # GIVEN main.py one byte longer than the manifest says
    items = [Entry(e.name, FILES["main.py"] + b"#" if e.name == "main.py" else e.data) for e in bundles.entries(FILES)]
    data = bundles.forge(signed, items)
    refused(data, "main.py", Rule.SIZE_MISMATCH, signed=signed)


def test_a_sha256_mismatch_is_refused(refused, signer) -> None:
    # GIVEN main.py replaced by other bytes of the same size
    evil = b"import os; os.system('id') #"[: len(FILES["main.py"])].ljust(len(FILES["main.py"]), b"#")
    signed = bundles.signed(FILES, signer)
    items = [Entry(e.name, evil if e.name == "main.py" else e.data) for e in bundles.entries(FILES)]
    refused(bundles.forge(signed, items), "main.py", Rule.SHA256_MISMATCH, signed=signed)


def test_a_lying_declared_size_is_caught_while_streaming(refused, signer) -> None:
    # GIVEN util.py's declared sizes patched down to the manifest's, over bytes that are longer
    # (zipfile then reads only the declared bytes, whose CRC-32 is not the recorded one)
    files = FILES | {"lib/util.py": b"VALUE = 2\n"}
    signed = bundles.signed(files, signer)
    items = [Entry(e.name, b"VALUE = 2\n# and more bytes\n" if e.name == "lib/util.py" else e.data,
                   method=zipfile.ZIP_STORED) for e in bundles.entries(FILES)]
    data = bundles.forge(signed, items)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("lib/util.py")
    old = info.file_size.to_bytes(4, "little") * 2  # compressed and uncompressed sizes, side by side
    data = data.replace(old, (10).to_bytes(4, "little") * 2)
    err = refused(data, "lib/util.py", Rule.CORRUPT_ENTRY, signed=signed)
    assert "CRC" in str(err)


# ---------------------------------------------------------------- zip bombs and caps


def test_a_zip_bomb_by_ratio_is_refused(refused, signer) -> None:
    files = FILES | {"bomb.bin": bytes(4 * archive.MIB)}
    signed = bundles.signed(files, signer)
    refused(bundles.forge(signed, bundles.entries(files)), "bomb.bin", Rule.COMPRESSION_RATIO, signed=signed)


def test_a_zip_bomb_by_total_size_is_refused(refused, signer) -> None:
    files = FILES | {f"part{i}.bin": bytes(range(256)) * 40 for i in range(5)}
    caps = archive.Caps(max_total_bytes=40_000)
    signed = bundles.signed(files, signer)
    err = refused(bundles.forge(signed, bundles.entries(files)), "part3.bin", Rule.TOTAL_SIZE, signed=signed,
                  caps=caps)
    assert "40000" in str(err)


def test_a_file_over_the_per_file_cap_is_refused(refused, signer) -> None:
    files = FILES | {"big.bin": bytes(range(256)) * 8}
    signed = bundles.signed(files, signer)
    refused(bundles.forge(signed, bundles.entries(files)), "big.bin", Rule.FILE_SIZE, signed=signed,
            caps=archive.Caps(max_file_bytes=1024))


def test_an_archive_over_the_size_cap_is_refused(refused, signer) -> None:
    data, signed = _honest(signer)
    refused(data, archive.ARCHIVE, Rule.ARCHIVE_SIZE, signed=signed, caps=archive.Caps(max_archive_bytes=100))


def test_too_many_entries_are_refused(refused, signer) -> None:
    files = FILES | {f"f{i}.py": b"" for i in range(5)}
    signed = bundles.signed(files, signer)
    data = bundles.forge(signed, bundles.entries(files))
    names = [manifest.MANIFEST_ENTRY, *sorted(files)]
    refused(data, names[5], Rule.ENTRY_COUNT, signed=signed, caps=archive.Caps(max_entries=4))


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_an_unsupported_compression_method_is_refused(refused, signer, method: int) -> None:
    signed = bundles.signed(FILES, signer)
    items = [Entry(e.name, e.data, method=method if e.name == "main.py" else e.method) for e in bundles.entries(FILES)]
    refused(bundles.forge(signed, items), "main.py", Rule.COMPRESSION_METHOD, signed=signed)


def test_an_encrypted_entry_is_refused(refused, signer) -> None:
    signed = bundles.signed(FILES, signer)
    data = bytearray(bundles.forge(signed, bundles.entries(FILES)))
    # set the encryption flag of main.py in its central directory record (flag bits at +8)
    at = data.rfind(b"PK\x01\x02", 0, data.rfind(b"main.py"))
    data[at + 8] |= 0x01
    refused(bytes(data), "main.py", Rule.ENCRYPTED, signed=signed)


def test_data_before_the_first_entry_is_refused(refused, signer) -> None:
    data, _ = _honest(signer)
    refused(b"#!/bin/sh\nrm -rf /\n" + data, manifest.MANIFEST_ENTRY, Rule.ARCHIVE_LAYOUT)


def test_not_a_zip_is_refused(refused) -> None:
    refused(b"PK\x03\x04 not really", archive.ARCHIVE, Rule.NOT_A_ZIP)


# ---------------------------------------------------------------- manifest tampering and signatures


def _tampered(signer: bundles.Signer, contents: dict[str, bytes], **changes: Any) -> bytes:
    """The manifest signed for ``contents``, then edited (``changes``) without signing again."""
    signed = bundles.signed(contents, signer)
    doc = json.loads(signed.to_json()) | changes
    return json.dumps(doc).encode()


@pytest.mark.parametrize("change", [
    {"name": "other"},
    {"version": 2},
    {"runtime": "nodejs22"},  # main.js is in the bundle, so the tampered manifest is otherwise valid
    {"entrypoint": "main.other"},
    {"limits": {"timeout_seconds": 900, "memory_mb": 10240}},
    {"manifest_version": 1, "entrypoint": "lib.util.handler"},
])
def test_tampering_with_a_bound_field_after_signing_is_refused(refused, signer, change: dict[str, Any]) -> None:
    raw = _tampered(signer, FILES, **change)
    refused(bundles.forge(raw, bundles.entries(FILES)), manifest.MANIFEST_ENTRY, Rule.BAD_SIGNATURE,
            signed=manifest.parse(raw))


def test_tampering_with_the_org_after_signing_is_refused(refused, signer) -> None:
    # GIVEN the same key registered for both orgs, so only the signature can tell
    raw = _tampered(signer, FILES, org="other")
    keys = bundles.lookup(signer.record(), signer.record("other"))
    refused(bundles.forge(raw, bundles.entries(FILES)), manifest.MANIFEST_ENTRY, Rule.BAD_SIGNATURE,
            signed=manifest.parse(raw), keys=keys, org="other")


def test_tampering_with_a_file_and_its_digest_after_signing_is_refused(refused, signer) -> None:
    evil = FILES | {"main.py": b"import os\nos.system('id')\n"}
    entries = [f.model_dump() for f in archive.file_entries(evil)]
    raw = _tampered(signer, FILES, files=entries)
    refused(bundles.forge(raw, bundles.entries(evil)), manifest.MANIFEST_ENTRY, Rule.BAD_SIGNATURE,
            signed=manifest.parse(raw))


def test_presenting_a_signature_under_another_registered_key_id_is_refused(refused, signer) -> None:
    other = bundles.new_signer()
    raw = _tampered(signer, FILES, key_id=other.key_id)
    refused(bundles.forge(raw, bundles.entries(FILES)), manifest.MANIFEST_ENTRY, Rule.BAD_SIGNATURE,
            signed=manifest.parse(raw), keys=bundles.lookup(signer.record(), other.record()))


def test_a_flipped_signature_bit_and_an_unsigned_manifest_are_refused(refused, signer) -> None:
    signed = bundles.signed(FILES, signer)
    assert signed.signature is not None
    flipped = signed.model_copy(update={"signature": format(int(signed.signature, 16) ^ 1, "0128x")})
    refused(bundles.forge(flipped, bundles.entries(FILES)), manifest.MANIFEST_ENTRY, Rule.BAD_SIGNATURE,
            signed=flipped)
    unsigned = signed.model_copy(update={"signature": None})
    refused(bundles.forge(unsigned, bundles.entries(FILES)), manifest.MANIFEST_ENTRY, Rule.BAD_SIGNATURE,
            signed=unsigned)


def test_a_signature_by_an_unknown_key_is_refused(refused) -> None:
    stranger = bundles.new_signer()
    data, signed = _honest(stranger)
    refused(data, manifest.MANIFEST_ENTRY, Rule.UNKNOWN_KEY, signed=signed)


def test_a_key_of_another_org_is_unknown_here(refused, signer) -> None:
    data, signed = _honest(signer)
    refused(data, manifest.MANIFEST_ENTRY, Rule.UNKNOWN_KEY, signed=signed,
            keys=bundles.lookup(signer.record("other")))


def test_a_signature_by_a_revoked_key_is_refused(refused, signer) -> None:
    data, signed = _honest(signer)
    refused(data, manifest.MANIFEST_ENTRY, Rule.REVOKED_KEY, signed=signed,
            keys=bundles.lookup(signer.record(revoked=True)))


def test_a_bundle_signed_for_another_org_is_refused_at_upload(refused, signer) -> None:
    data, _ = _honest(signer)
    refused(data, manifest.MANIFEST_ENTRY, Rule.ORG_MISMATCH, org="other")


def test_a_manifest_with_invalid_fields_is_refused_naming_the_field(refused, signer) -> None:
    raw = _tampered(signer, FILES, runtime="python2.7")
    err = refused(bundles.forge(raw, bundles.entries(FILES)), manifest.MANIFEST_ENTRY, Rule.MANIFEST)
    assert isinstance(err, errors.InvalidManifestError) and err.field == "runtime"


# ---------------------------------------------------------------- replay and downgrade


def test_replaying_an_older_version_is_refused(refused, signer) -> None:
    data, _ = _honest(signer, version=2)
    err = refused(data, manifest.MANIFEST_ENTRY, Rule.VERSION_NOT_NEWER, latest=3)
    assert "rollback" in str(err) and err.details["latest_version"] == 3


def test_replaying_the_same_version_is_refused(refused, signer) -> None:
    data, _ = _honest(signer, version=3)
    err = refused(data, manifest.MANIFEST_ENTRY, Rule.VERSION_NOT_NEWER, latest=3)
    assert "replay" in str(err)


def test_a_newer_version_is_accepted(signer, keys) -> None:
    data, _ = _honest(signer, version=4)
    assert archive.check_upload(data, org=ORG, keys=keys, latest_version=3).manifest.version == 4


# ---------------------------------------------------------------- at load: the registry's facts


def test_a_load_refuses_an_archive_that_is_not_the_registered_one(tmp_path: Path, signer, keys) -> None:
    # GIVEN versions 1 and 2 of the same bundle, both validly signed
    one, one_manifest = _honest(signer, version=1)
    two, _ = _honest(signer, version=2)
    expected = bundles.registered(one, one_manifest)
    # WHEN the store hands back version 2's archive for version 1 (a swapped or replayed object)
    with pytest.raises(errors.BundleRejectedError) as info:
        archive.load(two, tmp_path / "b", expected=expected, keys=keys)
    # THEN its digest (or size) differs from the registered one
    assert info.value.entry == archive.ARCHIVE
    assert info.value.rule in (Rule.ARCHIVE_SHA256, Rule.ARCHIVE_SIZE)
    # AND even with a registry row forged to its digest, the manifest is not the registered one
    forged = expected.model_copy(update={"sha256": hashlib.sha256(two).hexdigest(), "size": len(two)})
    with pytest.raises(errors.BundleRejectedError) as info:
        archive.check_load(two, expected=forged, keys=keys)
    _names(info.value, manifest.MANIFEST_ENTRY, Rule.IDENTITY_MISMATCH)
    assert list(tmp_path.iterdir()) == []


def test_a_key_revoked_after_upload_stops_loads(signer) -> None:
    data, signed = _honest(signer)
    with pytest.raises(errors.BundleRejectedError) as info:
        archive.check_load(data, expected=bundles.registered(data, signed),
                           keys=bundles.lookup(signer.record(revoked=True)))
    _names(info.value, manifest.MANIFEST_ENTRY, Rule.REVOKED_KEY)


def test_signing_is_checked_over_canonical_bytes_not_the_file_layout(signer, keys) -> None:
    # GIVEN the signed manifest re-serialised with other whitespace and key order
    signed = bundles.signed(FILES, signer)
    raw = json.dumps(json.loads(signed.to_json()), indent=None, sort_keys=False).encode()
    data = bundles.forge(raw, bundles.entries(FILES))
    # THEN it still verifies: the signature binds the values, not their layout
    assert signing.verify_manifest(manifest.parse(raw), signer.public_key)
    assert archive.check_upload(data, org=ORG, keys=keys, latest_version=None).manifest == signed
