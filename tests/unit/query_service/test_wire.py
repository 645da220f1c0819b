"""Request bodies that did not arrive whole are refused naming what arrived, with their own status."""

from __future__ import annotations

import pytest
from trace_core.query.service import errors, statuses, wire


def test_a_body_that_timed_out_is_408_naming_what_arrived() -> None:
    body = wire.IncompleteBody(b'{"sql": "s', announced="100", waited_s=10.0)
    with pytest.raises(errors.BodyTimeoutError) as raised:
        wire.parse_request(body)
    assert str(raised.value) == ("body: only 10 bytes of the 100 bytes announced arrived within 10s; "
                                 "send the whole body with the request")
    assert statuses.classify(raised.value) == statuses.Status(408, "body_timeout", "denied")


def test_a_body_cut_by_a_disconnect_is_400() -> None:
    with pytest.raises(errors.BadQueryRequestError) as raised:
        wire.parse_request(wire.IncompleteBody(b"{", announced=None, waited_s=None))
    assert not isinstance(raised.value, errors.BodyTimeoutError)
    assert "disconnected after sending 1 bytes" in str(raised.value)
    assert statuses.classify(raised.value).http == 400


def test_a_whole_body_still_parses() -> None:
    assert wire.parse_request(b'{"sql": "select 1"}').sql == "select 1"
