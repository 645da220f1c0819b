"""docs/openapi/dispatcher.json is the document the API generates (regenerate it when routes change)."""

from __future__ import annotations

import json
from pathlib import Path

from trace_core.dispatcher import api

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi" / "dispatcher.json"


def test_committed_openapi_document_is_current():
    expected = json.loads(api.openapi_json())
    assert json.loads(DOC.read_text()) == expected, (
        "docs/openapi/dispatcher.json is stale: run "
        "`.venv/bin/python -m trace_core.dispatcher.api > docs/openapi/dispatcher.json`"
    )


def test_the_document_covers_every_route_and_error_shape():
    doc = json.loads(DOC.read_text())
    routes = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert routes == {
        ("POST", "/v1/tasks"), ("GET", "/v1/tasks"), ("GET", "/v1/tasks/{task_id}"),
        ("POST", "/v1/tasks/{task_id}/claim"), ("POST", "/v1/tasks/{task_id}/heartbeat"),
        ("POST", "/v1/tasks/{task_id}/complete"), ("POST", "/v1/tasks/{task_id}/abandon"), ("POST", "/v1/claims"),
    }
    complete = doc["paths"]["/v1/tasks/{task_id}/complete"]["post"]["responses"]
    assert {"200", "404", "409", "422"} <= set(complete)
    assert "current_attempt" in doc["components"]["schemas"]["ErrorBody"]["properties"]
