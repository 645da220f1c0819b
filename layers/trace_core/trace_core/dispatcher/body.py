"""The Dispatcher API's request bodies, read strictly before any model sees them.

A body is exactly one JSON object in UTF-8: no NaN or Infinity, no duplicate
keys, nested at most :data:`MAX_DEPTH` levels (checked before parsing, so a
deeply nested body never reaches the recursive parser) and with every string
storable by Postgres. Anything else is refused with an error naming the field.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
from typing import Any

from trace_core.dispatcher import errors, models

JSON_CONTENT_TYPES = ("application/json",)
MAX_BODY_BYTES = 1024 * 1024
# A completion's outputs sit two levels down (body -> result -> outputs) and may nest MAX_JSON_DEPTH levels.
MAX_DEPTH = models.MAX_JSON_DEPTH + 2

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Valid UTF-8 text holds neither, and the parser refuses raw control characters: in a body, a NUL or a
# surrogate can only come from a \u escape, so only a body with such an escape needs its strings walked.
_NUL_OR_SURROGATE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class _Refused(ValueError):
    """A JSON value the body may not hold (raised from the parser's hooks)."""


def check_content_type(content_type: str | None) -> None:
    """Refuse a body declared as anything but JSON (no content type at all is read as JSON)."""
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_CONTENT_TYPES:
        raise errors.UnsupportedMediaTypeError(
            f"content-type {content_type[:100]!r} is not accepted; send application/json")


def parse(raw: str | None, *, base64_encoded: bool = False) -> dict[str, Any]:
    """The JSON object in an API Gateway event's ``body`` (base64 when ``base64_encoded``)."""
    data = _bytes(raw, base64_encoded)
    if not data:
        raise errors.MalformedBodyError("the request body is empty; a JSON object is expected")
    if len(data) > MAX_BODY_BYTES:
        raise errors.BodyTooLargeError(f"the request body is {len(data)} bytes; at most {MAX_BODY_BYTES} are accepted")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.MalformedBodyError(f"the request body is not valid UTF-8 (byte {exc.start})") from exc
    if _depth(text) > MAX_DEPTH:
        raise errors.MalformedBodyError(f"the request body is nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int,
                           object_pairs_hook=_object)
    except _Refused as exc:
        raise errors.MalformedBodyError(f"the request body is not accepted JSON: {exc}") from exc
    except ValueError as exc:  # json.JSONDecodeError
        raise errors.MalformedBodyError(f"the request body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise errors.InvalidTaskError(f"body must be a JSON object, not {_kind(value)}",
                                      field="body", expected="a JSON object")
    if _NUL_OR_SURROGATE_ESCAPE.search(text):
        _check_strings(value)
    return value


def _bytes(raw: str | None, base64_encoded: bool) -> bytes:
    if not raw:
        return b""
    if base64_encoded:
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise errors.MalformedBodyError("the request body is not valid base64") from exc
    try:
        return raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise errors.MalformedBodyError(f"the request body is not valid UTF-8 (character {exc.start})") from exc


def _depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number (only finite numbers are accepted)")


def _float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise _Refused(f"{literal[:40]} is out of range for a number")
    return number


def _int(literal: str) -> int:
    try:
        return int(literal)
    except ValueError:  # longer than Python converts (sys.get_int_max_str_digits)
        raise _Refused(f"an integer of {len(literal)} digits is too long") from None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"key {key[:40]!r} appears more than once in an object")
            seen.add(key)
    return obj


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _check_strings(body: dict[str, Any]) -> None:
    """Refuse a NUL character or a lone surrogate in any key or string, naming the field it is in."""
    stack: list[tuple[Any, str]] = [(body, "")]
    while stack:
        item, field = stack.pop()
        if isinstance(item, str):
            _storable(item, field)
        elif isinstance(item, dict):
            for key, child in item.items():
                _storable(key, field or "body", what=f"key {key[:40]!r}")
                stack.append((child, f"{field}.{key}" if field else key))
        elif isinstance(item, list):
            stack.extend((child, f"{field}.{i}") for i, child in enumerate(item))


def _storable(text: str, field: str, *, what: str = "value") -> None:
    try:
        models.storable_text(text, where=f"{field}: {what}")
    except ValueError as exc:
        raise errors.InvalidTaskError(str(exc), field=field, expected="text without NUL characters or lone surrogates"
                                      ) from None
