"""`trace-lite bundle init | build | upload | list | invoke`: user functions as signed bundles (docs/specs/udf.md).

A bundle directory holds the function's files and `bundle.json` (name, runtime, entrypoint, limits), which
`init` writes and `build` reads. `build` signs with the Lite org's key (made on first use under
`TRACE_HOME`, registered with the registry) and numbers the version one above the newest registered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from trace_core import errors
from trace_core.cli import context

if TYPE_CHECKING:
    from trace_core.datasets import objectstore
    from trace_core.udf import registry as registry_mod

# boto3 (the bundles bucket), psycopg_pool and the bundle checks are imported by the commands that use them:
# registering them (and `trace-lite --help`) must not pay for it (tests/unit/test_cli_startup.py).

console = Console()
bundle_app = typer.Typer(no_args_is_help=True, help="User functions: signed bundles on the Lambda model.")

CONFIG = "bundle.json"
# What `--runtime` accepts, and the manifest runtime and entrypoint each starts with.
RUNTIMES = {"python": ("python3.12", "main.handler"), "node": ("nodejs22", "index.handler"),
            "rust": ("rust", "bootstrap")}
DEFAULT_LIMITS = {"timeout_seconds": 30, "memory_mb": 256}
RUST_TEMPLATE = Path(__file__).resolve().parents[4] / "runtimes" / "rust-bootstrap"

PYTHON_HANDLER = '''"""A Trace user function: called exactly as AWS Lambda calls it."""


def handler(event, context):
    rows = event.get("rows", [])
    return {"rows": len(rows), "request_id": context.aws_request_id}
'''
NODE_HANDLER = '''// A Trace user function: called exactly as AWS Lambda calls it.
exports.handler = async (event, context) => {
  const rows = event.rows || [];
  return { rows: rows.length, request_id: context.awsRequestId };
};
'''


def register(app: typer.Typer) -> None:
    bundle_app.command("init")(init)
    bundle_app.command("build")(build)
    bundle_app.command("upload")(upload)
    bundle_app.command("list")(list_bundles)
    bundle_app.command("invoke")(invoke)
    app.add_typer(bundle_app, name="bundle")


def _usage(message: str, field: str, expected: str) -> errors.TraceError:
    return errors.TraceError(message, field=field, expected=expected)


def init(
    directory: Annotated[Path, typer.Argument(help="The bundle directory to create (must not exist or be empty).")],
    runtime: str = typer.Option(..., "--runtime", help="python, node or rust."),
    name: str | None = typer.Option(None, "--name", help="The bundle's name (default: the directory's name)."),
) -> None:
    """Start a bundle: a handler for the runtime and bundle.json."""
    from trace_core.udf import manifest as manifest_mod

    if runtime not in RUNTIMES:
        raise _usage(f"--runtime {runtime!r}: expected python, node or rust", "runtime", "python, node or rust")
    if directory.exists() and any(directory.iterdir()):
        raise _usage(f"{directory} exists and is not empty", "directory", "a new or empty directory")
    bundle_name = name or directory.resolve().name
    manifest_runtime, entrypoint = RUNTIMES[runtime]
    problem = _name_problem(bundle_name)
    if problem:
        raise _usage(f"bundle name {bundle_name!r}: {problem}", "name", manifest_mod.EXPECTED["name"])
    if runtime == "rust":
        if not RUST_TEMPLATE.is_dir():
            raise errors.TraceError(f"the Rust template is not at {RUST_TEMPLATE}: run from a Trace checkout",
                                    fix="clone the repository and run `make install`")
        shutil.copytree(RUST_TEMPLATE, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("target"))
    else:
        directory.mkdir(parents=True, exist_ok=True)
        handler = ("main.py", PYTHON_HANDLER) if runtime == "python" else ("index.js", NODE_HANDLER)
        (directory / handler[0]).write_text(handler[1])
    config = {"name": bundle_name, "runtime": manifest_runtime, "entrypoint": entrypoint, "limits": DEFAULT_LIMITS}
    (directory / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    console.print(f"bundle {bundle_name} ({manifest_runtime}) in {directory}: edit it, then "
                  f"`trace-lite bundle build {directory}`")


def build(
    directory: Annotated[Path, typer.Argument(help="A bundle directory (with bundle.json).")],
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the archive (default: DIR.zip).")] = None,
    version: int | None = typer.Option(None, "--version", min=1, help="Default: one above the newest registered."),
) -> None:
    """Sign and pack a bundle directory into an archive ready to upload."""
    from trace_core.auth import issuing
    from trace_core.lite import bundle_keys
    from trace_core.udf import archive
    from trace_core.udf import manifest as manifest_mod

    config = _config(directory)
    registry = _registry()
    key = bundle_keys.private_key(context.settings().home)
    bundle_keys.registered(registry, issuing.LITE_ORG_SLUG, key)
    if version is None:
        latest = registry.latest_version(issuing.LITE_ORG_SLUG, config["name"])
        version = (latest or 0) + 1
    files = _rust_files(directory) if config["runtime"] == "rust" else {
        path: data for path, data in archive.read_directory(directory).items() if path != CONFIG}
    limits = manifest_mod.Limits.model_validate(config.get("limits", DEFAULT_LIMITS))
    data = archive.build(files, org=issuing.LITE_ORG_SLUG, name=config["name"], version=version,
                         runtime=config["runtime"], entrypoint=config["entrypoint"], limits=limits, private_key=key)
    target = out or directory.resolve().with_suffix(".zip")
    target.write_bytes(data)
    console.print(f"built {config['name']} version {version} ({len(files)} files, {len(data)} bytes): {target}")


def upload(archive_file: Annotated[Path, typer.Argument(help="A bundle archive made by `bundle build`.")]) -> None:
    """Check every rule of a bundle, store it and register it; prints its name and version."""
    from trace_core.auth import issuing
    from trace_core.udf import service

    if not archive_file.is_file():
        raise _usage(f"{archive_file}: no such file", "archive", "a bundle archive made by `bundle build`")
    version = service.upload(archive_file.read_bytes(), org=issuing.LITE_ORG_SLUG, registry=_registry(),
                             store=_store())
    print(f"{version.name} {version.version}")


def list_bundles() -> None:
    """The Lite org's bundles: name, newest version and its runtime."""
    from rich.table import Table

    from trace_core.auth import issuing

    registry = _registry()
    table = Table("bundle", "version", "runtime", "entrypoint", "key", "registered")
    for bundle in registry.list_bundles(issuing.LITE_ORG_SLUG):
        latest = registry.get_version(issuing.LITE_ORG_SLUG, bundle.name, bundle.latest_version)
        if latest is not None:
            table.add_row(bundle.name, str(latest.version), latest.runtime, latest.entrypoint, latest.key_id[:12],
                          latest.created_at.isoformat(timespec="seconds"))
    console.print(table)


def invoke(
    target: Annotated[str, typer.Argument(metavar="NAME[@VERSION]", help="A bundle, at its latest version or "
                                          "at VERSION.")],
    input_file: Annotated[str, typer.Option("--input", help="The event as JSON: a file, or - for stdin.")],
) -> None:
    """Run a bundle's handler once in the Lite sandbox: the result JSON on stdout; a failed invocation exits 1
    with its error type and message on stderr."""
    import sys
    import tempfile

    from trace_core.auth import issuing
    from trace_core.udf import invoker as invoker_mod
    from trace_core.udf import sandbox, service

    name, _, wanted = target.partition("@")
    if wanted and not wanted.isdigit():
        raise _usage(f"{target!r}: the version after @ must be a number", "NAME[@VERSION]", "e.g. greeter@3")
    text = sys.stdin.read() if input_file == "-" else _read_input(Path(input_file))
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _usage(f"--input is not JSON: {exc}", "input", "a JSON document") from exc
    registry = _registry()
    version = service.resolve(registry, issuing.LITE_ORG_SLUG, name, int(wanted) if wanted else None)
    limits = version.manifest.limits
    spec = sandbox.FunctionSpec(runtime=version.runtime, entrypoint=version.entrypoint, name=version.name,
                                version=version.version, memory_mb=limits.memory_mb)
    with tempfile.TemporaryDirectory(prefix="trace-bundle-") as scratch:
        loaded = service.fetch(version, Path(scratch) / "bundle", registry=registry, store=_store())
        runner = invoker_mod.LiteInvoker(idle_seconds=0.0)
        try:
            outcome = runner.invoke(f"{version.name}@{version.version}", loaded.root, spec, event,
                                    float(limits.timeout_seconds))
        finally:
            runner.close()
            from trace_core.udf import archive

            archive.remove(loaded.root)
    if not outcome.ok:
        print(f"error: {outcome.error_type}: {outcome.error_message}", file=sys.stderr)
        raise typer.Exit(1)
    print(json.dumps(outcome.result))


def _read_input(path: Path) -> str:
    if not path.is_file():
        raise _usage(f"--input {path}: no such file", "input", "a JSON file, or - for stdin")
    return path.read_text()


def _name_problem(name: str) -> str | None:
    import pydantic

    from trace_core.udf import manifest as manifest_mod

    try:
        pydantic.TypeAdapter(manifest_mod.BundleName).validate_python(name)
    except pydantic.ValidationError:
        return "not a valid bundle name"
    return None


def _config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG
    if not path.is_file():
        raise _usage(f"{path}: no such file", "directory", "a bundle directory made by `trace-lite bundle init`")
    try:
        config: Any = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise _usage(f"{path}: not JSON ({exc})", CONFIG, "a JSON object") from exc
    for field in ("name", "runtime", "entrypoint"):
        if not isinstance(config, dict) or not isinstance(config.get(field), str):
            raise _usage(f"{path}: field {field} is missing or not a string", f"{CONFIG}.{field}", "a string")
    return dict(config)


def _rust_files(directory: Path) -> dict[str, bytes]:
    """The crate built offline in release mode: the bundle is its `bootstrap` binary alone."""
    if shutil.which("cargo") is None:
        raise errors.TraceError("cargo is not installed: a Rust bundle is built from its crate",
                                fix="install Rust (cargo), or build `bootstrap` yourself and pack it")
    done = subprocess.run(["cargo", "build", "--release", "--offline"], cwd=directory, capture_output=True,
                          text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise errors.TraceError(f"cargo build failed in {directory}:\n{done.stderr[-2000:]}",
                                fix="fix the crate so `cargo build --release --offline` succeeds")
    target = Path(os.environ.get("CARGO_TARGET_DIR") or directory / "target")
    binary = target / "release" / "bootstrap"
    if not binary.is_file():
        raise errors.TraceError(f"cargo built no {binary}", fix="name the crate's binary `bootstrap` in Cargo.toml")
    return {"bootstrap": binary.read_bytes()}


def _registry() -> registry_mod.PostgresBundleRegistry:
    import psycopg

    from trace_core.auth import issuing
    from trace_core.db import pool
    from trace_core.udf import registry as registry_mod

    url = context.database_url()
    with psycopg.connect(url) as conn:
        issuing.lite_principal(conn)  # the Lite org, made on first use
    return registry_mod.PostgresBundleRegistry(pool.get(url, max_size=2))


def _store() -> objectstore.S3ObjectStore:
    from trace_core import aws
    from trace_core.datasets import objectstore

    settings = context.settings()
    return objectstore.S3ObjectStore(aws.s3_client(settings), settings.bundles_bucket)
