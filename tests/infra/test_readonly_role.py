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
