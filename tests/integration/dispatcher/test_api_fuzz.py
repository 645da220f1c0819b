"""Fuzz the Dispatcher API from its own OpenAPI document (schemathesis): no 5xx, and answers as documented.

Valid and invalid requests for every operation go the way the Lite host sends
them (HTTP bytes -> HTTP API event -> ``api.resolve``) against real Postgres.
Bounded (``max_examples`` per operation) and deterministic (derandomized, no
example database), so a failure reproduces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks
from trace_core.dispatcher import api

from tests.integration.dispatcher import http_api

SCHEMA = schemathesis.openapi.from_dict(json.loads(api.openapi_json()))
CHECKS = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,  # invalid input is refused with a 4xx
]


@pytest.fixture
def served(conn, database_url: str) -> Iterator[None]:
    with http_api.serving(database_url):
        yield


@SCHEMA.parametrize()
@settings(max_examples=100, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_no_request_gets_a_server_error_or_an_undocumented_answer(case, served):
    response = case.call(app=http_api.wsgi_app)
    case.validate_response(response, checks=CHECKS)
