"""Lambda assets built on the local machine: no Docker.

The rotation asset is the ``rotation_handlers`` package plus Linux wheels for the Lambda architecture
(pymysql, psycopg2-binary) that pip fetches with its platform options, plus an optional CA bundle. The
replication asset is the package alone (boto3 ships with the Lambda runtime).

CDK calls ``LocalPythonBundler.try_bundle`` and, because it returns True, never starts Docker. The asset
hash is computed from the inputs (sources, requirements, CA bundle, target platform), so an unchanged
asset is not rebuilt and the template changes only when the code does.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLER_PACKAGE = REPO_ROOT / "rotation_handlers"
PACKAGE_NAME = "rotation_handlers"
CA_BUNDLE_DIR = "certs"
CA_BUNDLE_NAME = "db-ca-bundle.pem"
LAMBDA_TASK_ROOT = "/var/task"
_IGNORED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "tests", "test_*.py", ".pytest_cache", "requirements.txt"
)

# Lambda architecture -> pip platform tags (both: manylinux_2_28 gets the newest psycopg2 wheels).
PIP_PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}


def ca_bundle_path_in_function() -> str:
    """Where the CA bundle lands inside the function (``DB_CA_BUNDLE``)."""
    return f"{LAMBDA_TASK_ROOT}/{CA_BUNDLE_DIR}/{CA_BUNDLE_NAME}"


def _python_version(runtime: lambda_.Runtime) -> str:
    name = runtime.name  # "python3.14"
    if not name.startswith("python"):
        raise ValueError(f"not a Python runtime: {name}")
    return name.removeprefix("python")


@dataclass(frozen=True)
class BundleSpec:
    package_dir: Path = HANDLER_PACKAGE
    requirements: Path | None = None  # None: no third-party wheels
    ca_bundle: Path | None = None
    python_version: str = "3.14"
    architecture: str = "arm64"

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(f"v1|{self.python_version}|{self.architecture}".encode())
        for f in sorted(self.package_dir.rglob("*")):
            rel = f.relative_to(self.package_dir)
            if f.is_file() and not any(p in ("__pycache__", "tests", ".pytest_cache") for p in rel.parts):
                if f.suffix == ".pyc" or (f.name.startswith("test_") and f.suffix == ".py"):
                    continue
                if f.name == "requirements.txt" and self.requirements is None:
                    continue
                h.update(str(rel).encode() + b"\0" + f.read_bytes() + b"\0")
        if self.requirements is not None:
            h.update(b"requirements\0" + self.requirements.read_bytes())
        if self.ca_bundle is not None:
            h.update(b"ca\0" + self.ca_bundle.read_bytes())
        return h.hexdigest()


def build_bundle(spec: BundleSpec, output_dir: Path) -> None:
    """Write the asset's files to ``output_dir`` (used by the bundler and callable directly)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(spec.package_dir, output_dir / PACKAGE_NAME, ignore=_IGNORED, dirs_exist_ok=True)
    if spec.requirements is not None:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            spec.python_version,
            "--target",
            str(output_dir),
            "-r",
            str(spec.requirements),
        ]
        for platform in PIP_PLATFORMS[spec.architecture]:
            cmd += ["--platform", platform]
        subprocess.run(cmd, check=True)  # noqa: S603 - fixed argv, no shell
        for cache in output_dir.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
    if spec.ca_bundle is not None:
        (output_dir / CA_BUNDLE_DIR).mkdir(exist_ok=True)
        shutil.copyfile(spec.ca_bundle, output_dir / CA_BUNDLE_DIR / CA_BUNDLE_NAME)


@jsii.implements(ILocalBundling)
class LocalPythonBundler:
    """``ILocalBundling`` that builds the asset with the local Python: CDK then never calls Docker."""

    def __init__(self, spec: BundleSpec) -> None:
        self.spec = spec

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        build_bundle(self.spec, Path(output_dir))
        return True


def python_code(spec: BundleSpec) -> lambda_.Code:
    """A Lambda ``Code`` asset bundled locally from ``spec``."""
    return lambda_.Code.from_asset(
        str(spec.package_dir),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=spec.fingerprint(),
        bundling=BundlingOptions(
            # Never pulled: the local bundler always succeeds, so CDK does not fall back to Docker.
            image=DockerImage.from_registry("local-bundling-only"),
            local=LocalPythonBundler(spec),
        ),
    )


def rotation_code(
    runtime: lambda_.Runtime, architecture: lambda_.Architecture, ca_bundle: Path | None = None
) -> lambda_.Code:
    """The rotation asset: handler package + database driver wheels (+ CA bundle)."""
    return python_code(
        BundleSpec(
            requirements=HANDLER_PACKAGE / "requirements.txt",
            ca_bundle=ca_bundle,
            python_version=_python_version(runtime),
            architecture=architecture.name,
        )
    )


def replication_code(runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> lambda_.Code:
    """The replication asset: the handler package only (boto3 is in the Lambda runtime)."""
    return python_code(BundleSpec(python_version=_python_version(runtime), architecture=architecture.name))
