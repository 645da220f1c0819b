"""Build the Lambda layer without Docker: ``build/layer/python/`` = trace_core + its Lambda dependencies.

Run it through ``scripts/build_lambda_assets.sh`` (or ``python -m trace_cdk.assets``
with ``cdk/`` on the path). Dependencies come from
``layers/trace_core/requirements-lambda.txt`` (exported from uv.lock by `make lock`: exact pins with
hashes, the whole closure of the ``lambda`` dependency group) as manylinux wheels for CPython 3.12
on x86_64 (``pip install --platform ... --only-binary=:all:``), whatever the
build machine is. The function folders need no build: their code is the asset.

``--no-deps`` copies only the trace_core package (no network): enough for
``cdk synth`` and the tests, not for a deployment.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from trace_cdk import config, errors

REQUIREMENTS = config.REPO_ROOT / "layers" / "trace_core" / "requirements-lambda.txt"
PACKAGE = config.REPO_ROOT / "layers" / "trace_core" / "trace_core"
PYTHON_VERSION = "3.12"
# Lambda's python3.12 runtime is Amazon Linux 2023 (glibc 2.34): these wheels all run there.
PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64")
# In the Lambda runtime already (a second copy would shadow it), or Fargate-only and too big for a layer.
FORBIDDEN = ("boto3", "botocore", "s3transfer", "duckdb", "pyarrow", "cryo")
LAYER_LIMIT_BYTES = 250 * 1024 * 1024  # Lambda's limit for a function and its layers, unzipped




def requirements(path: Path = REQUIREMENTS) -> list[str]:
    """The layer's pins (``name==version``) in ``path``, which `make lock` exports from uv.lock with hashes."""
    pins: list[str] = []
    for raw in path.read_text().splitlines():
        if raw and not raw[0].isspace() and not raw.startswith("#"):
            pins.append(raw.split(";")[0].rstrip(" \\"))
    return pins


def pip_command(target: Path, *, requirements_file: Path = REQUIREMENTS, python: str = sys.executable) -> list[str]:
    """The pip invocation that installs the layer's locked, hashed pins as Lambda (CPython 3.12, x86_64) wheels.

    ``--no-deps``: the file is the whole closure already (boto3 and botocore left out on purpose), and
    ``--require-hashes`` makes pip take exactly the locked files.
    """
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(target), "--upgrade",
               "--implementation", "cp", "--python-version", PYTHON_VERSION, "--only-binary=:all:"]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    return [*command, "--no-deps", "--require-hashes", "-r", str(requirements_file)]


def copy_package(source: Path, site: Path) -> Path:
    """Copy the trace_core package into ``site`` without caches; returns the copy."""
    destination = site / source.name
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return destination


def check(site: Path) -> int:
    """Refuse a layer that holds a forbidden package or exceeds Lambda's size; returns its size in bytes."""
    for name in FORBIDDEN:
        if (site / name).exists():
            raise errors.AssetBuildError(
                f"the layer contains {name}: it must not (in the Lambda runtime, or Fargate-only)",
                package=name,
                fix=f"keep {name} out of the lambda group in pyproject.toml (or add it to --no-emit-package in "
                f"scripts/lock.sh), then `make lock`; it lands in {REQUIREMENTS.name}",
            )
    size = sum(path.stat().st_size for path in site.rglob("*") if path.is_file())
    if size > LAYER_LIMIT_BYTES:
        raise errors.AssetBuildError(
            f"the layer is {size // 2**20} MiB unzipped; Lambda allows {LAYER_LIMIT_BYTES // 2**20} MiB",
            package="*",
        )
    return size


def build(out: Path, *, deps: bool = True, python: str = sys.executable) -> Path:
    """Build ``out/layer`` from scratch; returns the layer folder (the ``trace:layerDir`` to synthesize with)."""
    layer = out / "layer"
    site = layer / "python"
    shutil.rmtree(layer, ignore_errors=True)
    site.mkdir(parents=True)
    if deps:
        result = subprocess.run(pip_command(site, python=python), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise errors.AssetBuildError(
                f"pip could not install {REQUIREMENTS.name} for Lambda:\n{result.stderr.strip()[-2000:]}",
                package="*",
                fix="check the network, and that each pin has a manylinux wheel for CPython 3.12 (`make lock`)",
            )
    copy_package(PACKAGE, site)
    check(site)
    return layer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_lambda_assets", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=config.REPO_ROOT / "build", help="output folder (default: build/)")
    parser.add_argument("--no-deps", action="store_true", help="copy trace_core only (offline; not deployable)")
    args = parser.parse_args(argv)
    try:
        layer = build(args.out, deps=not args.no_deps)
    except errors.AssetBuildError as exc:
        print(f"error: {exc.message}" + (f"\n  fix: {exc.details['fix']}" if "fix" in exc.details else ""),
              file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file())
    print(f"layer: {layer} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
