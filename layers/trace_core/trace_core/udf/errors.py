"""Errors of user-function bundles. Every refusal of a bundle names the entry and the rule it broke."""

from __future__ import annotations

import enum
from typing import Any

from trace_core import errors


class Rule(enum.StrEnum):
    """The rules a bundle is checked against (docs/specs/udf.md, "The loader's rules")."""

    # the archive as a whole
    ARCHIVE_SIZE = "archive-size"  # over the cap, or not the registered size
    ARCHIVE_SHA256 = "archive-sha256"  # not the registered digest
    NOT_A_ZIP = "not-a-zip"
    ARCHIVE_LAYOUT = "archive-layout"  # data before the first entry, overlapping or out-of-bounds entries
    CORRUPT_ENTRY = "corrupt-entry"  # zipfile refuses it (bad CRC, header mismatch, truncated)
    # the manifest and its signature
    MANIFEST = "manifest"  # missing, unreadable or invalid bundle_manifest.json
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_KEY = "unknown-key"
    REVOKED_KEY = "revoked-key"
    ORG_MISMATCH = "org-mismatch"  # signed for another org, or not the bundle being loaded
    IDENTITY_MISMATCH = "identity-mismatch"  # at load: not the registered name, version or manifest
    VERSION_NOT_NEWER = "version-not-newer"  # replay (same version) or rollback (older version)
    # names of entries
    EMPTY_PATH = "empty-path"
    CONTROL_CHARACTER = "control-character"
    BACKSLASH = "backslash"
    ABSOLUTE_PATH = "absolute-path"
    DRIVE_LETTER = "drive-letter"
    PATH_TRAVERSAL = "path-traversal"  # a `..` component
    DOT_COMPONENT = "dot-component"  # a `.` component
    EMPTY_COMPONENT = "empty-component"  # `a//b`
    NOT_NFC = "not-nfc"
    NAME_ENCODING = "name-encoding"  # a non-ASCII name not flagged as UTF-8
    PATH_TOO_LONG = "path-too-long"
    PATH_DEPTH = "path-depth"
    RESERVED_NAME = "reserved-name"  # a file named like the manifest
    # kinds of entries
    SYMLINK = "symlink"
    DIRECTORY_ENTRY = "directory-entry"
    NOT_REGULAR_FILE = "not-regular-file"  # device, fifo, socket
    ENCRYPTED = "encrypted"
    COMPRESSION_METHOD = "compression-method"
    # the set of entries against the manifest
    DUPLICATE_ENTRY = "duplicate-entry"
    CASE_FOLD_COLLISION = "case-fold-collision"
    FILE_DIRECTORY_CONFLICT = "file-directory-conflict"  # `a` and `a/b`
    EXTRA_ENTRY = "extra-entry"
    MISSING_ENTRY = "missing-entry"
    SIZE_MISMATCH = "size-mismatch"
    SHA256_MISMATCH = "sha256-mismatch"
    # caps (zip bombs)
    ENTRY_COUNT = "entry-count"
    FILE_SIZE = "file-size"
    TOTAL_SIZE = "total-size"
    COMPRESSION_RATIO = "compression-ratio"


class UdfError(errors.TraceError):
    """Root of the user-function errors."""


class BundleRejectedError(UdfError):
    """A bundle broke a rule. ``entry`` is the zip entry (or ``<archive>``), ``rule`` a :class:`Rule`.

    Raised before anything is stored or left extracted.
    """

    def __init__(self, message: str, *, entry: str, rule: Rule, **details: Any) -> None:
        super().__init__(f"bundle refused: {entry!r} breaks {rule.value}: {message}",
                         entry=entry, rule=rule.value, **details)
        self.entry = entry
        self.rule = rule


class InvalidManifestError(BundleRejectedError):
    """``bundle_manifest.json`` is not a valid manifest. ``field`` names the field, ``expected`` what fits."""

    def __init__(self, message: str, *, field: str, expected: str, rule: Rule = Rule.MANIFEST,
                 **details: Any) -> None:
        super().__init__(f"field {field}: {message} (expected {expected})", entry=MANIFEST_ENTRY, rule=rule,
                         field=field, expected=expected, **details)
        self.field = field
        self.expected = expected


class ExtractionError(UdfError):
    """The directory to extract into (``path``) cannot be used: it exists already, or its parent does not."""


class RegistryError(UdfError):
    """Postgres refused or failed a registry operation (``operation``); nothing was changed."""


class UnknownOrgError(RegistryError):
    """No org has this slug."""


class KeyNotFoundError(RegistryError):
    """The org has no signing key with this id."""


class KeyConflictError(RegistryError):
    """This public key is registered already, to another org."""


# The name of the manifest inside every bundle (here so that errors can name it without a cycle).
MANIFEST_ENTRY = "bundle_manifest.json"


class BundleNotFoundError(UdfError):
    """No registered version answers ``org``/``name`` (at ``version``, or at all)."""


def version_not_newer(name: str, version: int, latest: int | None) -> BundleRejectedError:
    """The refusal of ``version`` of bundle ``name`` when ``latest`` is registered: a replay or a rollback."""
    what = "a replay of" if version == latest else "a rollback below"
    return BundleRejectedError(
        f"version {version} of {name!r} is {what} the latest registered version {latest}; "
        f"expected a version above {latest}", entry=MANIFEST_ENTRY, rule=Rule.VERSION_NOT_NEWER,
        version=version, latest_version=latest)
