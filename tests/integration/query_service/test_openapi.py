"""The committed OpenAPI document is the one the app serves (regenerate: see the assertion message)."""

from __future__ import annotations

import json
from pathlib import Path

from trace_core.query.service import app

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "openapi" / "query.json"


def test_committed_openapi_document_is_current():
    served = app.create_app(lambda: None).openapi()  # type: ignore[arg-type, return-value]
    committed = json.loads(DOCUMENT.read_text())
    assert served == committed, (
        "docs/openapi/query.json is stale: run "
        "`.venv/bin/python -m trace_core.query.service --openapi > docs/openapi/query.json`"
    )


def test_document_declares_both_endpoints_the_bearer_scheme_and_every_error_status():
    document = app.create_app(lambda: None).openapi()  # type: ignore[arg-type, return-value]
    for path in ("/v1/query", "/v1/task-query"):
        operation = document["paths"][path]["post"]
        assert {"200", "400", "401", "403", "408", "413"} <= set(operation["responses"])
        assert operation["security"] == [{"HTTPBearer": []}]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/QueryRequest")
    assert document["components"]["schemas"]["QueryRequest"]["required"] == ["sql"]
