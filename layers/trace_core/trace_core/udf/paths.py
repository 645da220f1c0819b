"""The rules a file path inside a bundle must satisfy: clean, relative, NFC, portable.

One function, used on the manifest's ``files`` and on every zip entry name, so both
sides refuse the same names for the same reason.
"""

from __future__ import annotations

import re
import unicodedata

from trace_core.udf import errors

MAX_PATH_BYTES = 1024
MAX_COMPONENT_BYTES = 255  # the usual NAME_MAX
DEFAULT_MAX_DEPTH = 16

_DRIVE = re.compile(r"^[A-Za-z]:")
# Cc: C0/C1 controls and DEL; Cf: format characters (bidi overrides, zero-width); Cs: lone surrogates
# (from surrogateescape); Zl/Zp: line and paragraph separators. None belongs in a file name.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def problem(path: str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> tuple[errors.Rule, str] | None:
    """The first rule ``path`` breaks and why, or None for a clean relative NFC path of a file."""
    Rule = errors.Rule
    if path == "":
        return Rule.EMPTY_PATH, "the path is empty"
    for char in path:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            return Rule.CONTROL_CHARACTER, f"the path holds the control or format character U+{ord(char):04X}"
    if "\\" in path:
        return Rule.BACKSLASH, "the path holds a backslash (a separator on Windows)"
    if path.startswith("/"):
        return Rule.ABSOLUTE_PATH, "the path is absolute"
    if _DRIVE.match(path):
        return Rule.DRIVE_LETTER, "the path starts with a drive letter"
    if unicodedata.normalize("NFC", path) != path:
        return Rule.NOT_NFC, "the path is not in Unicode normalisation form NFC"
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        return Rule.PATH_TOO_LONG, f"the path is longer than {MAX_PATH_BYTES} bytes"
    parts = path.split("/")
    for part in parts:
        if part == "..":
            return Rule.PATH_TRAVERSAL, "a component is '..'"
        if part == ".":
            return Rule.DOT_COMPONENT, "a component is '.'"
        if part == "":
            return Rule.EMPTY_COMPONENT, "a component is empty ('//' or a trailing '/')"
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            return Rule.PATH_TOO_LONG, f"a component is longer than {MAX_COMPONENT_BYTES} bytes"
    if len(parts) > max_depth:
        return Rule.PATH_DEPTH, f"the path is {len(parts)} components deep, more than {max_depth}"
    if path.casefold() == errors.MANIFEST_ENTRY:
        return Rule.RESERVED_NAME, f"{errors.MANIFEST_ENTRY} is the manifest, not a file of the bundle"
    return None
