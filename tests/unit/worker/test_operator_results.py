"""What an operator's run becomes: a Success, or a Failure whose text Postgres can store (never an exception)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from trace_core.dispatcher import models
from trace_core.worker import errors, operators


def run(fn: Callable[[operators.OperatorContext], Any]) -> models.Success | models.Failure:
    ctx = operators.OperatorContext(operator="unit", task_id=uuid.uuid4(), payload={}, attempt=1)
    return operators.run(fn, ctx)


def returning(value: Any) -> Callable[[operators.OperatorContext], Any]:
    return lambda ctx: value


def raising(exc: BaseException) -> Callable[[operators.OperatorContext], Any]:
    def fn(ctx: operators.OperatorContext) -> Any:
        raise exc
    return fn


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


@pytest.mark.parametrize(("outputs", "cause"), [
    ({"x": float("nan")}, "$.x: nan is not a JSON number (only finite numbers are stored)"),
    ({"x": {"y": float("-inf")}}, "$.x.y: -inf is not a JSON number (only finite numbers are stored)"),
    ({"s": "a\x00"}, "$.s contains a NUL character (\\u0000), which Postgres cannot store"),
    ({"k\x00": 1}, "$ key 'k\\x00' contains a NUL character (\\u0000), which Postgres cannot store"),
    ({"s": "\udc00"}, "$.s is not valid Unicode (lone surrogate at index 0)"),
])
def test_outputs_postgres_cannot_store_fail_the_attempt_for_good_naming_the_path(outputs, cause):
    assert run(returning(outputs)) == models.Failure(error=f"output not storable: {cause}", retryable=False)


def test_storable_outputs_succeed_unchanged():
    outputs = {"n": 10**400, "f": 1.5, "s": "é\U0001f600", "l": [None, True, {"": []}]}
    assert run(returning(outputs)) == models.Success(outputs=outputs)


@pytest.mark.parametrize(("exc", "error", "retryable"), [
    (errors.OperatorError("bad \x00 input \ud800", retryable=False), "bad \\u0000 input \\ud800", False),
    (errors.OperatorError(""), "OperatorError", True),
    (errors.OperatorError("x" * 20_000), "x" * 10_000, True),
])
def test_an_operator_error_text_is_made_storable(exc, error, retryable):
    assert run(raising(exc)) == models.Failure(error=error, retryable=retryable)


@pytest.mark.parametrize("exc", [ValueError("nul \x00 here"), ValueError("\udfff"), Unprintable()])
def test_any_other_exception_is_a_retryable_failure_with_storable_text(exc):
    result = run(raising(exc))
    assert isinstance(result, models.Failure) and result.retryable
    assert result.error.startswith(type(exc).__name__)
    assert "\x00" not in result.error
    result.error.encode("utf-8")  # no lone surrogate left


def test_a_value_that_is_not_an_object_fails_for_good():
    result = run(returning([1, 2]))
    assert isinstance(result, models.Failure) and not result.retryable
    assert result.error.endswith("returned list, expected a dict")
