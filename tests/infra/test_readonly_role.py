"""The read-only role for secretsctl's cross-account status: metadata actions only, trusted account only."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template

from infra.readonly_role import SecretsctlReadOnlyRole


def test_role_reads_metadata_only_and_trusts_the_operator_account() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "ReadOnly", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    SecretsctlReadOnlyRole(stack, "Secretsctl", trusted_account="222222222222")
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "RoleName": "secretsctl-readonly",
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Action": "sts:AssumeRole"})]}
            ),
        },
    )
    trust = str(template.find_resources("AWS::IAM::Role"))
    assert "222222222222" in trust
    actions: set[str] = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            found = statement["Action"]
            actions |= {found} if isinstance(found, str) else set(found)
    assert actions == {
        "secretsmanager:ListSecrets",
        "secretsmanager:DescribeSecret",
        "secretsmanager:ListSecretVersionIds",
    }


def test_config_flag_adds_the_role_stack(tmp_path) -> None:
    """`secretsctlReadOnlyRole` in a deployment file adds a stack with the role; cdk-nag runs on it."""
    import json

    from infra.config import parse_config
    from infra.stacks import add_stacks
    from tests.infra.conftest import EXAMPLE

    raw = json.loads(EXAMPLE.read_text())
    raw["secretsctlReadOnlyRole"] = {"trustedAccount": "222222222222"}
    config = parse_config(raw, EXAMPLE)
    role = config.secretsctl_read_only_role
    assert role is not None and (role.trusted_account, role.role_name) == (
        "222222222222",
        "secretsctl-readonly",
    )
    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path))
    stacks = add_stacks(app, config)
    (holder,) = [s for s in stacks if s.stack_name.startswith("SecretsctlReadOnly-")]
    Template.from_stack(holder).resource_count_is("AWS::IAM::Role", 1)
    app.synth()  # an unacknowledged cdk-nag finding raises here
