"""Grants: relation naming, pinning versions, and task grant requests naming the bad field."""

from __future__ import annotations

import pytest
from trace_core.auth import errors, grants

from tests.unit.auth.conftest import version_row


def test_one_namespace_names_relations_after_the_dataset():
    assert grants.relation_names(["monad_local/blocks", "monad_local/logs"]) == {
        "monad_local/blocks": "blocks", "monad_local/logs": "logs"}


def test_several_namespaces_are_qualified():
    assert grants.relation_names(["monad-test/blocks", "monad_local/blocks"]) == {
        "monad-test/blocks": "monad_test_blocks", "monad_local/blocks": "monad_local_blocks"}


def test_colliding_relation_names_are_refused():
    with pytest.raises(errors.GrantError, match="both would be relation 'a_b_c'"):
        grants.relation_names(["a_b/c", "a/b_c"])


def test_build_makes_one_grant_per_dataset_with_versions_in_range_order():
    rows = [version_row("monad_local/blocks", 100, 200), version_row("monad_local/logs", 0, 100),
            version_row("monad_local/blocks", 0, 100)]
    built = {g.relation: g for g in grants.build(rows)}
    assert set(built) == {"blocks", "logs"}
    assert [(v.range_start, v.range_end) for v in built["blocks"].versions] == [(0, 100), (100, 200)]
    assert built["blocks"].versions[0].storage_ref == rows[2]["storage_prefix"]


def test_build_filters_by_key_or_dataset_name():
    rows = [version_row("monad_local/blocks", 0, 100), version_row("monad_local/logs", 0, 100)]
    assert [g.relation for g in grants.build(rows, datasets=["logs"])] == ["logs"]
    assert [g.relation for g in grants.build(rows, datasets=["monad_local/blocks"])] == ["blocks"]


def test_overlapping_versions_cannot_be_granted():
    rows = [version_row("monad_local/blocks", 0, 100), version_row("monad_local/blocks", 50, 150)]
    with pytest.raises(errors.GrantError, match="overlap"):
        grants.build(rows)


def test_task_requests_select_versions_in_their_block_window():
    rows = [version_row("monad_local/blocks", s, s + 100) for s in (0, 100, 200)]
    requests = grants.parse_requests({"grants": [{"dataset": "monad_local/blocks", "from_block": 100,
                                                  "to_block": 200, "relation": "b"}]})
    [grant] = grants.for_requests(rows, requests)
    assert grant.relation == "b" and [v.range_start for v in grant.versions] == [100]


@pytest.mark.parametrize(("payload", "field"), [
    ({"grants": {"dataset": "x/y"}}, "payload.grants"),
    ({"grants": [{"dataset": "no-slash"}]}, "payload.grants[0].dataset"),
    ({"grants": [{"dataset": "a/b", "from_block": -1}]}, "payload.grants[0].from_block"),
    ({"grants": [{"dataset": "a/b", "colour": "red"}]}, "payload.grants[0].colour"),
])
def test_malformed_task_requests_name_the_field(payload, field):
    with pytest.raises(errors.GrantError) as caught:
        grants.parse_requests(payload)
    assert caught.value.details["field"] == field


def test_payload_without_grants_asks_for_none():
    assert grants.parse_requests({"other": 1}) == []
