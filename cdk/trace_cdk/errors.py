"""Errors of the CDK app, rooted at TraceError like the rest of Trace."""

from __future__ import annotations

from trace_core import errors


class InfraConfigError(errors.TraceError):
    """The stage configuration (cdk.json context) is invalid.

    ``field`` names the setting, ``expected`` says what fits.
    """


class AssetMissingError(errors.TraceError):
    """A Lambda asset folder does not exist. ``path`` names it, ``fix`` says how to build it."""


class AssetBuildError(errors.TraceError):
    """Building the Lambda layer failed or produced something a layer must not hold. ``package`` names it."""
