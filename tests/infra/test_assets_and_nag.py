"""The locally bundled Lambda assets, cdk-nag, and app.py's configuration handling."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns

from infra.config import load_config
from infra.replication import ParameterReplicator
from infra.rotation import RotationFunction
from infra.stacks import add_stacks
from tests.infra.conftest import EXAMPLE, NO_BUNDLING, ROOT, Synth

MAX_ZIPPED = 10 * 1024 * 1024  # well under Lambda's 50 MB zipped limit


def _zip_size(directory: Path) -> int:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(directory.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(directory))
    return buf.tell()


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory, ca_bundle: Path) -> dict[str, Path]:
    """Really bundle both assets (pip with platform options; no Docker)."""
    out = tmp_path_factory.mktemp("cdk-bundled")
    app = cdk.App(outdir=str(out))
    stack = cdk.Stack(app, "Assets", env=cdk.Environment(account="111122223333", region="eu-west-1"))
    rotation = RotationFunction(stack, "Rotation", ca_bundle=ca_bundle)
    replicator = ParameterReplicator(stack, "Replicator", target_regions=["eu-central-1"], create_trail=False)
    assembly = app.synth()
    template = assembly.get_stack_by_name("Assets").template
    dirs = {}
    for name, fn in (("rotation", rotation.function), ("replication", replicator.function)):
        lid = stack.get_logical_id(fn.node.default_child)  # type: ignore[arg-type]
        key = template["Resources"][lid]["Properties"]["Code"]["S3Key"]
        dirs[name] = out / f"asset.{key.removesuffix('.zip')}"
    return dirs


def test_rotation_asset_contents_and_size(bundled: dict[str, Path]) -> None:
    asset = bundled["rotation"]
    top = sorted(p.name for p in asset.iterdir())
    assert "rotation_handlers" in top and "pymysql" in top and "psycopg2" in top and "certs" in top
    assert (asset / "rotation_handlers" / "__init__.py").is_file()
    assert (asset / "certs" / "db-ca-bundle.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    # Linux aarch64 wheels for the Lambda runtime's Python, not this machine's.
    (ext,) = [p.name for p in (asset / "psycopg2").glob("_psycopg*.so")]
    assert "aarch64" in ext and "cpython-314" in ext, ext
    assert not list(asset.rglob("__pycache__")) and not list(asset.rglob("*.pyc"))
    assert not (asset / "rotation_handlers" / "requirements.txt").exists()
    assert not (asset / "pydantic").exists() and not (asset / "infra").exists()  # synth-time only
    zipped = _zip_size(asset)
    print(
        f"\nrotation asset: {sum(f.stat().st_size for f in asset.rglob('*') if f.is_file())} bytes, "
        f"zipped {zipped}"
    )
    assert zipped < MAX_ZIPPED


def test_replication_asset_is_light(bundled: dict[str, Path]) -> None:
    asset = bundled["replication"]
    assert sorted(p.name for p in asset.iterdir()) == ["rotation_handlers"]
    assert _zip_size(asset) < 1024 * 1024


def test_nag_findings_fail_synthesis(tmp_path: Path) -> None:
    """The checks are live: an unencrypted, SSL-optional topic is reported and stops synthesis."""
    app = cdk.App(context=NO_BUNDLING, outdir=str(tmp_path))
    stacks = add_stacks(app, load_config(EXAMPLE))
    sns.Topic(stacks[0], "Unencrypted")
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for r in report["pluginReports"] for v in r["violations"]}
    assert "AwsSolutions-SNS3" in rules
    assert all(
        "Unencrypted" in c["constructPath"]
        for r in report["pluginReports"]
        for v in r["violations"]
        for c in v["violatingConstructs"]
    )


def test_acknowledgments_are_exactly_these_each_with_a_reason() -> None:
    app = cdk.App(context=NO_BUNDLING)
    add_stacks(app, load_config(EXAMPLE), nag=False)
    acks: dict[str, str] = {}
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    acks[f"{construct.node.path}|{rule.split('::', 1)[1]}"] = reason
    for reason in acks.values():
        assert len(reason) > 40
    p = "arn:<AWS::Partition>"
    params = [
        f"ParameterReplication-example-eu-west-1/Replicator/Policy|AwsSolutions-IAM5[Resource::{p}:ssm:{r}:"
        f"123456789012:parameter{path}*]"
        for r in ("eu-west-1", "eu-central-1", "us-east-1")
        for path in ("/app/", "/shared/")
    ]
    assert sorted(acks) == sorted(
        [
            "SecretsRotation-example/Rotation/BasePolicy|AwsSolutions-IAM5[Resource::*]",
            *(
                f"SecretsRotation-example/Rotation/DescribeDatabasesPolicy|AwsSolutions-IAM5[Resource::{p}:rds:"
                f"eu-west-1:123456789012:{kind}:*]"
                for kind in ("cluster", "db", "cluster-endpoint")
            ),
            f"SecretsRotation-example/Rotation/BasePolicy|AwsSolutions-IAM5[Resource::{p}:ec2:eu-west-1:"
            "123456789012:network-interface/*]",
            "ParameterReplication-example-eu-west-1/Replicator/Policy|AwsSolutions-IAM5[Resource::*]",
            f"ParameterReplication-example-eu-west-1/Replicator/Policy|AwsSolutions-IAM5[Resource::{p}:kms:"
            "eu-west-1:123456789012:key/*]",
            f"ParameterReplication-example-eu-west-1/Replicator/Policy|AwsSolutions-IAM5[Resource::{p}:kms:"
            "eu-central-1:123456789012:key/*]",
            *params,
            "ParameterReplication-example-eu-west-1/Replicator/DeadLetterQueue|AwsSolutions-SQS3",
        ]
    )


def test_app_reports_an_invalid_configuration(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stage": "x", "account": "1", "region": "mars-1"}))
    env = dict(
        os.environ, CDK_CONTEXT_JSON=json.dumps({"config": str(bad)}), CDK_OUTDIR=str(tmp_path / "out")
    )
    proc = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "account: '1' is not a 12-digit account id" in proc.stderr
    assert "region: 'mars-1' is not an AWS region" in proc.stderr


def test_checkov_skips_each_have_a_reason(example: Synth, variant: Synth, minimal: Synth) -> None:
    """scripts/checkov.sh fails on any finding not acknowledged in the template with its reason."""
    skipped: set[str] = set()
    for synth_ in (example, variant, minimal):
        for template in synth_.templates.values():
            for resource in template["Resources"].values():
                for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                    assert skip["id"].startswith("CKV_AWS_") and len(skip["comment"]) > 40, skip
                    skipped.add(skip["id"])
    # Log/env encryption, DLQs of synchronously invoked functions, functions outside a VPC, the
    # SQS-managed encryption checkov does not see, the optional trail's bucket logs and region scope.
    expected = {"CKV_AWS_158", "CKV_AWS_173", "CKV_AWS_116", "CKV_AWS_115", "CKV_AWS_117", "CKV_AWS_27"}
    assert skipped == expected | {"CKV_AWS_18", "CKV_AWS_67"}
