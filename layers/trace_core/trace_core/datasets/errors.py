"""Errors of the dataset registry, the object store and the commit protocol."""

from __future__ import annotations

from trace_core import errors


class DatasetError(errors.TraceError):
    """Root of dataset errors."""


class InvalidDatasetInputError(DatasetError):
    """Bad input to the registry or the naming functions. ``field`` names it, ``expected`` says what fits."""


class DatasetConflictError(DatasetError):
    """A re-registration disagrees with what is stored. ``field``, ``existing`` and ``given`` say how."""


class VersionConflictError(DatasetError):
    """A committed version already exists with a different manifest; the first one is kept.

    ``dataset_version``, ``existing_sha256`` and ``given_sha256`` identify the two manifests. Not
    retryable: the same inputs produced different bytes (a reorg inside a range that was
    treated as final, a changed extractor, or tampering) and someone has to look.
    """

    retryable = False


class VersionNotFoundError(DatasetError):
    """No committed version with that id (``dataset_version``)."""


class ObjectStoreError(DatasetError):
    """The object store failed. ``key`` names the object, ``operation`` what was attempted."""


class ObjectNotFoundError(ObjectStoreError):
    """No object at ``key``."""


class ManifestMismatchError(DatasetError):
    """An object or manifest does not match what the registry or manifest recorded (``key``, ``reason``)."""
