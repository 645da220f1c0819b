"""Which bodies travel together in one SQS message (sqs.pack): pure."""

from __future__ import annotations

import pytest
from trace_core.queue import sqs


@pytest.mark.parametrize("n", [0, 1, 7, 10])
def test_up_to_one_batch_each_body_is_a_message_of_its_own(n):
    assert sqs.pack(["{}"] * n) == [[i] for i in range(n)]


@pytest.mark.parametrize(("n", "messages"), [(11, 6), (25, 9), (100, 10), (101, 11), (1000, 100), (1001, 101)])
def test_beyond_one_batch_as_few_messages_as_max_pack_allows(n, messages):
    groups = sqs.pack(['{"task_id":"x"}'] * n)
    assert len(groups) == messages
    assert max(len(g) for g in groups) <= sqs.MAX_PACK
    assert [i for g in groups for i in g] == list(range(n))  # every body once, in order


def test_a_large_body_travels_alone_and_a_packed_message_stays_under_the_byte_cap():
    texts = ["x" * 100] * 40
    texts[5] = "y" * sqs.MAX_PACK_BYTES
    groups = sqs.pack(texts)
    assert [5] in groups
    assert all(sum(len(texts[i]) + 1 for i in g) <= sqs.MAX_PACK_BYTES for g in groups if len(g) > 1)
    assert [i for g in groups for i in g] == list(range(40))
