"""The bundle registry against the real Postgres: keys, revocation, monotonic versions, listing."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from trace_core.db import pool as pool_mod
from trace_core.udf import archive, errors, manifest, models, registry, signing

from tests.unit.udf import bundles
from tests.unit.udf.bundles import FILES, ORG

Rule = errors.Rule


@pytest.fixture
def clean(database_url: str) -> str:
    """The module's database with no key, bundle or version left from another test, and two orgs."""
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE state.udf_bundle_versions, state.udf_bundles, state.udf_signing_keys")
        for slug in (ORG, "other"):
            conn.execute("INSERT INTO state.orgs (slug, name) VALUES (%s, %s) ON CONFLICT (slug) DO NOTHING",
                         (slug, slug))
    return database_url


@pytest.fixture
def pool(clean: str) -> ConnectionPool:
    return pool_mod.get(clean, max_size=8)


@pytest.fixture
def reg(pool: ConnectionPool) -> registry.PostgresBundleRegistry:
    return registry.PostgresBundleRegistry(pool)


@pytest.fixture
def signer(reg: registry.PostgresBundleRegistry) -> bundles.Signer:
    found = bundles.new_signer()
    reg.add_key(ORG, found.public_key)
    return found


def _build(signer: bundles.Signer, version: int, files: dict[str, bytes] = FILES, name: str = "demo") -> bytes:
    return archive.build(files, org=ORG, name=name, version=version, runtime="python3.12",
                         entrypoint="main.handler", limits=manifest.Limits(timeout_seconds=3, memory_mb=128),
                         private_key=signer.private_key)


def _upload(reg: registry.PostgresBundleRegistry, data: bytes, name: str = "demo") -> models.BundleVersion:
    """The upload use case, minus the object store: check against the registry, then register."""
    bundle = archive.check_upload(data, org=ORG, keys=reg.get_key, latest_version=reg.latest_version(ORG, name))
    return reg.register(bundle)


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM state.{table}").fetchone()
    assert row is not None
    return int(row[0])


# ---------------------------------------------------------------- keys


def test_keys_are_registered_per_org_idempotently(reg: registry.PostgresBundleRegistry) -> None:
    # GIVEN a public key registered twice for one org
    key = bundles.new_signer()
    first = reg.add_key(ORG, key.public_key)
    again = reg.add_key(ORG, key.public_key)
    # THEN it is one key, found by (org, key id), listed, and unknown to the other org
    assert first == again and first.key_id == signing.key_id(key.public_key) and not first.revoked
    assert reg.get_key(ORG, first.key_id) == first
    assert reg.list_keys(ORG) == [first]
    assert reg.get_key("other", first.key_id) is None
    # AND it cannot be registered to another org, nor to an org that does not exist
    with pytest.raises(errors.KeyConflictError):
        reg.add_key("other", key.public_key)
    with pytest.raises(errors.UnknownOrgError):
        reg.add_key("nobody", bundles.new_signer().public_key)


def test_revocation_stops_uploads_loads_and_registration(reg: registry.PostgresBundleRegistry,
                                                         signer: bundles.Signer) -> None:
    # GIVEN version 1 registered, and version 2 checked before the key is revoked
    one = _upload(reg, _build(signer, 1))
    two_data = _build(signer, 2)
    two = archive.check_upload(two_data, org=ORG, keys=reg.get_key, latest_version=1)
    # WHEN the key is revoked (twice: the first time stays)
    revoked = reg.revoke_key(ORG, signer.key_id)
    assert revoked.revoked and reg.revoke_key(ORG, signer.key_id).revoked_at == revoked.revoked_at
    # THEN registering the checked version 2 is refused, under the key's lock
    with pytest.raises(errors.BundleRejectedError) as info:
        reg.register(two)
    assert info.value.rule == Rule.REVOKED_KEY
    # AND a new upload, and a load of version 1, are refused too
    with pytest.raises(errors.BundleRejectedError) as info:
        archive.check_upload(two_data, org=ORG, keys=reg.get_key, latest_version=1)
    assert info.value.rule == Rule.REVOKED_KEY
    with pytest.raises(errors.BundleRejectedError) as info:
        archive.check_load(_build(signer, 1), expected=one, keys=reg.get_key)
    assert info.value.rule == Rule.REVOKED_KEY
    assert reg.latest_version(ORG, "demo") == 1
    with pytest.raises(errors.KeyNotFoundError):
        reg.revoke_key("other", signer.key_id)


# ---------------------------------------------------------------- versions


def test_an_upload_is_registered_under_its_content_address_and_loads_back(
        reg: registry.PostgresBundleRegistry, signer: bundles.Signer, tmp_path) -> None:
    # GIVEN a bundle uploaded
    data = _build(signer, 1)
    version = _upload(reg, data)
    # THEN the registry points at its content address, and its manifest comes back from jsonb intact
    assert version.storage_key == archive.content_address(ORG, version.sha256)
    stored = reg.get_version(ORG, "demo", 1)
    assert stored == version and reg.get_version(ORG, "demo") == version
    assert reg.get_version(ORG, "demo", 2) is None and reg.get_version("other", "demo") is None
    # AND the registry's record is what a load checks the archive against
    loaded = archive.load(data, tmp_path / "b", expected=stored, keys=reg.get_key)
    assert (loaded.root / "main.py").read_bytes() == FILES["main.py"]
    archive.remove(loaded.root)


def test_versions_only_go_up(reg: registry.PostgresBundleRegistry, signer: bundles.Signer, clean: str) -> None:
    # GIVEN versions 1 and 3 registered
    _upload(reg, _build(signer, 1))
    three = _upload(reg, _build(signer, 3))
    # WHEN version 2 (a rollback) or another version 3 (a replay) is registered, even past the loader
    for version, word in ((2, "rollback"), (3, "replay")):
        data = _build(signer, version, FILES | {"extra.py": b"# other bytes\n"})
        bundle = archive.check_upload(data, org=ORG, keys=reg.get_key, latest_version=None)
        with pytest.raises(errors.BundleRejectedError) as info:
            reg.register(bundle)
        # THEN each is refused naming the rule, and nothing changed
        assert info.value.rule == Rule.VERSION_NOT_NEWER and word in str(info.value)
        assert info.value.details["latest_version"] == 3
    assert reg.get_version(ORG, "demo") == three
    assert [v.version for v in reg.list_versions(ORG, "demo")] == [1, 3]
    assert _count(clean, "udf_bundle_versions") == 2


def test_concurrent_registrations_of_one_version_have_exactly_one_winner(
        reg: registry.PostgresBundleRegistry, signer: bundles.Signer, clean: str) -> None:
    # GIVEN six different archives that all claim version 1 of "demo", each checked against an empty registry
    checked = [archive.check_upload(_build(signer, 1, FILES | {"n.py": f"N = {i}\n".encode()}), org=ORG,
                                    keys=reg.get_key, latest_version=None) for i in range(6)]
    barrier = threading.Barrier(len(checked))
    won: list[archive.VerifiedBundle] = []
    lost: list[errors.BundleRejectedError] = []
    other: list[BaseException] = []

    def register(bundle: archive.VerifiedBundle) -> None:
        barrier.wait()
        try:
            reg.register(bundle)
            won.append(bundle)
        except errors.BundleRejectedError as exc:
            lost.append(exc)
        except BaseException as exc:  # noqa: BLE001
            other.append(exc)

    # WHEN they register at once
    threads = [threading.Thread(target=register, args=(b,)) for b in checked]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN exactly one wins and the others are refused as replays
    assert other == []
    assert len(won) == 1 and len(lost) == len(checked) - 1
    assert {e.rule for e in lost} == {Rule.VERSION_NOT_NEWER}
    assert reg.get_version(ORG, "demo", 1).sha256 == won[0].sha256  # type: ignore[union-attr]
    assert _count(clean, "udf_bundle_versions") == 1


def test_bundles_are_listed_per_org(reg: registry.PostgresBundleRegistry, signer: bundles.Signer) -> None:
    _upload(reg, _build(signer, 1, name="beta"), "beta")
    _upload(reg, _build(signer, 1, name="alpha"), "alpha")
    _upload(reg, _build(signer, 2, name="alpha"), "alpha")
    listed = reg.list_bundles(ORG)
    assert [(b.name, b.latest_version) for b in listed] == [("alpha", 2), ("beta", 1)]
    assert reg.list_bundles("other") == []
    assert reg.latest_version(ORG, "gamma") is None


def test_the_database_refuses_a_duplicate_version_or_a_row_that_contradicts_its_manifest(
        reg: registry.PostgresBundleRegistry, signer: bundles.Signer, clean: str) -> None:
    # GIVEN version 1 registered
    version = _upload(reg, _build(signer, 1))
    row = {
        "name": "demo", "version": 1, "runtime": "python3.12", "entrypoint": "main.handler",
        "manifest": Jsonb(version.manifest.model_dump(mode="json")), "key_id": signer.key_id,
        "storage_key": version.storage_key, "sha256": version.sha256, "size": version.size, "org": ORG,
    }
    sql = ("INSERT INTO state.udf_bundle_versions (org_id, name, version, runtime, entrypoint, manifest, key_id, "
           "storage_key, sha256, size) SELECT org_id, %(name)s, %(version)s, %(runtime)s, %(entrypoint)s, "
           "%(manifest)s, %(key_id)s, %(storage_key)s, %(sha256)s, %(size)s FROM state.orgs WHERE slug = %(org)s")
    # WHEN the same version is inserted behind the registry's back THEN the primary key refuses it
    with psycopg.connect(clean) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(sql, row)
    # AND a row whose columns say another version or runtime than its signed manifest is refused
    for change in ({"version": 2}, {"runtime": "rust"}):
        with psycopg.connect(clean) as conn, pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(sql, row | change)
