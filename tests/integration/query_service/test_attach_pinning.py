"""A warm grant never skips the registry check: the storage_ref a token pins is part of what is cached."""

from __future__ import annotations

import pytest
from trace_core.db import pool as db_pool
from trace_core.query.service import cache, errors, grants

from tests.integration.query_service.test_attach import _grant


@pytest.fixture
def make_resolver(database_url, s3, buckets):
    def make(root):
        return grants.Resolver(grants.PostgresVersions(db_pool.get(database_url)),
                               cache.VerifiedCache(root, cache.S3Blobs(s3, buckets["datasets"])))

    return make


def test_a_storage_ref_that_disagrees_is_refused_even_when_the_grant_is_warm(publish, make_resolver, tmp_path):
    # GIVEN a version resolved once through an honest grant, so its relation is warm
    version, other = publish("blocks", 600, 650), publish("logs", 600, 650)
    resolver = make_resolver(tmp_path / "c6")
    resolver.resolve([_grant([version])])
    # WHEN a token pins the same version to another dataset's prefix
    moved = version.model_copy(update={"storage_prefix": other.storage_prefix})
    # THEN it is refused as a registry mismatch, not answered from the warm entry
    with pytest.raises(errors.DatasetIntegrityError) as caught:
        resolver.resolve([_grant([moved])])
    assert caught.value.details["reason"] == "registry_mismatch"
    # AND the honest grant stays warm and correct
    assert resolver.resolve([_grant([version])])["blocks"].versions == (version.dataset_version,)
