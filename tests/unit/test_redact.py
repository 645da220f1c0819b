"""Secrets in URLs are masked before they are shown or logged (fixture corpus tests/fixtures/redact.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from trace_core import redact

CORPUS = yaml.safe_load((Path(__file__).parents[1] / "fixtures" / "redact.yaml").read_text())


@pytest.mark.parametrize("case", CORPUS["url"], ids=lambda c: c["in"][:60])
def test_url(case: dict[str, str]) -> None:
    # GIVEN a URL as a user wrote it WHEN it is redacted THEN only the credentials are masked
    assert redact.url(case["in"]) == case["out"]


@pytest.mark.parametrize("case", CORPUS["text"], ids=lambda c: c["in"][:60])
def test_text(case: dict[str, str]) -> None:
    # GIVEN a message quoting URLs WHEN it is redacted THEN each URL is masked and the words kept
    assert redact.text(case["in"]) == case["out"]


@pytest.mark.parametrize("case", CORPUS["url"], ids=lambda c: c["in"][:60])
def test_redacting_twice_changes_nothing(case: dict[str, str]) -> None:
    # GIVEN an already redacted URL WHEN it is redacted again THEN it stays the same (safe to apply at every layer)
    assert redact.url(case["out"]) == case["out"]
    assert redact.text(case["out"]) == case["out"]
