"""Fixtures for the CDK tests: each stack configuration is synthesized once per session.

Bundling is skipped (``aws:cdk:bundling-stacks: []``) except in the asset test. cdk-nag's
AwsSolutions checks run in every synthesis: an unacknowledged finding makes ``app.synth()`` raise.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.config import ConfigError, DeploymentConfig, load_config, parse_config
from infra.stacks import add_stacks
from tests.infra.cfn_harness import cfn_client, clock, other, sm  # noqa: F401 - fixtures of the custom resource tests

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example.json"
NO_BUNDLING = {"aws:cdk:bundling-stacks": []}

TEST_CA_PEM = """-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGUtZm9yLXRlc3RzMAoGCCqGSM49BAMC
-----END CERTIFICATE-----
"""


@dataclass
class Synth:
    config: DeploymentConfig
    templates: dict[str, dict[str, Any]]  # stack name -> template JSON
    outdir: Path

    def template(self, prefix: str) -> Template:
        return Template.from_json(self.raw(prefix))

    def raw(self, prefix: str) -> dict[str, Any]:
        (name,) = [n for n in self.templates if n.startswith(prefix)]
        return self.templates[name]


def example_raw() -> dict[str, Any]:
    """The example configuration as a fresh JSON object (each test may change its copy)."""
    return json.loads(EXAMPLE.read_text())


def config_errors(raw: dict[str, Any]) -> list[str]:
    """The problems ``parse_config`` reports for ``raw`` (it must refuse it)."""
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="test", base_dir=EXAMPLE.parent)
    return info.value.errors


def synth(config: DeploymentConfig, outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    app = cdk.App(context=NO_BUNDLING if context is None else context, outdir=str(outdir))
    stacks = add_stacks(app, config)
    assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
    templates = {s.stack_name: assembly.get_stack_by_name(s.stack_name).template for s in stacks}
    return Synth(config=config, templates=templates, outdir=outdir)


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(load_config(EXAMPLE), tmp_path_factory.mktemp("cdk-example"))


def minimal_raw(ca_bundle: str) -> dict[str, Any]:
    """No VPC, an existing secret under the AWS managed key, native Parameter Store events."""
    return {
        "stage": "minimal",
        "account": "111122223333",
        "region": "us-east-2",
        "rotation": {
            "network": {"vpc": False},
            "function": {"caBundle": ca_bundle, "timeoutSeconds": 120, "logRetentionDays": 30},
            "secrets": [
                {
                    "name": "legacy",
                    "arn": "arn:aws:secretsmanager:us-east-2:111122223333:secret:legacy/app-Ab12Cd",
                    "schedule": {"rateDays": 7},
                    "rotateImmediatelyOnUpdate": True,
                }
            ],
        },
        "replication": {
            "targetRegions": ["us-west-2"],
            "includePaths": ["/app/", "/shared"],
            "eventSource": "parameter-store",
            "reconcileSchedule": "rate(1 day)",
            "deleteUnmanagedReplicas": True,
            "copyEc2ImageParameters": True,
            "sourceKmsKeys": ["arn:aws:kms:us-east-2:111122223333:key/11111111-2222-3333-4444-555555555555"],
        },
    }


def variant_raw() -> dict[str, Any]:
    """The example with the other choices: an existing alert topic, the AWS Config rotation check, an
    existing Secrets Manager endpoint, an RDS endpoint, lock and statement timeouts, and a trail the app
    creates."""
    raw = json.loads(EXAMPLE.read_text())
    raw["alerts"] = {"topicArn": "arn:aws:sns:eu-west-1:123456789012:platform-pager"}
    raw["rotation"]["scheduledRotationCheck"] = True
    network = raw["rotation"]["network"]
    del network["createSecretsManagerEndpoint"]
    network["existingSecretsManagerEndpoint"] = {
        "dnsName": "vpce-0123456789abcdef0-abcdefgh.secretsmanager.eu-west-1.vpce.amazonaws.com",
        "securityGroupId": "sg-0a1b2c3d4e5f60e01",
    }
    network["createRdsEndpoint"] = True
    raw["rotation"]["function"]["dbLockTimeoutSeconds"] = 10
    raw["rotation"]["function"]["dbStatementTimeoutSeconds"] = 30
    raw["replication"]["createTrail"] = True
    raw["replication"]["adoptUnmanagedTargets"] = True
    return raw


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    config = parse_config(variant_raw(), source="variant", base_dir=EXAMPLE.parent)
    return synth(config, tmp_path_factory.mktemp("cdk-variant"))


@pytest.fixture(scope="session")
def ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "rds-ca.pem"
    path.write_text(TEST_CA_PEM)
    return path


@pytest.fixture(scope="session")
def minimal(tmp_path_factory: pytest.TempPathFactory, ca_bundle: Path) -> Synth:
    config = parse_config(minimal_raw(ca_bundle.name), source="minimal", base_dir=ca_bundle.parent)
    return synth(config, tmp_path_factory.mktemp("cdk-minimal"))


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def render(value: Any) -> Any:
    """Intrinsics as readable strings: Fn::Join joined, Ref AWS::Partition -> aws, Ref X -> <X>."""
    if isinstance(value, dict) and len(value) == 1:
        ((k, v),) = value.items()
        if k == "Fn::Join":
            return v[0].join(str(render(p)) for p in v[1])
        if k == "Ref":
            return {"AWS::Partition": "aws"}.get(v, f"<{v}>")
        if k == "Fn::GetAtt":
            return f"<{v[0]}.{v[1]}>"
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v) for v in value]
    return value


def statements(template: dict[str, Any], policy_prefix: str) -> list[dict[str, Any]]:
    """Rendered statements of the IAM policies whose logical id starts with ``policy_prefix``."""
    out: list[dict[str, Any]] = []
    for logical_id, res in resources(template, "AWS::IAM::Policy").items():
        if logical_id.startswith(policy_prefix):
            out.extend(render(res["Properties"]["PolicyDocument"]["Statement"]))
    return out


def logical_id(template: dict[str, Any], type_: str, prefix: str) -> str:
    (lid,) = [k for k in resources(template, type_) if k.startswith(prefix)]
    return lid


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
