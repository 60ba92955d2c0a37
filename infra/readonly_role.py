"""The read-only role ``secretsctl status --accounts/--organization --role NAME`` assumes in each account.

It can list secrets and read their metadata (ListSecrets, DescribeSecret, ListSecretVersionIds) and
nothing else: no GetSecretValue, no kms:Decrypt, no write. Only principals of the operator account
(``trusted_account``) that their own IAM policies allow to call sts:AssumeRole on it may assume it.
ListSecrets cannot be limited to resources, so it is granted on ``*``
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html);
DescribeSecret and ListSecretVersionIds are limited to this account's and region's secrets.
"""

from __future__ import annotations

from aws_cdk import Duration, Environment, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nag import acknowledge, nag_resource

DEFAULT_ROLE_NAME = "secretsctl-readonly"


class SecretsctlReadOnlyRole(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, trusted_account: str, role_name: str = DEFAULT_ROLE_NAME
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.AccountPrincipal(trusted_account),
            max_session_duration=Duration.hours(1),
            description="secretsctl status across accounts: secret metadata only, never a value",
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["secretsmanager:ListSecrets"], resources=["*"]))
        secrets = f"arn:{stack.partition}:secretsmanager:*:{stack.account}:secret:*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"],
                resources=[secrets],
            )
        )
        acknowledge(
            self.role,
            [
                (
                    "AwsSolutions-IAM5[Resource::*]",
                    "ListSecrets supports no resource-level permission; it returns metadata, never a value",
                ),
                (
                    f"AwsSolutions-IAM5[Resource::{nag_resource(stack, secrets)}]",
                    "status reads the metadata of every secret of the account (every region); "
                    "DescribeSecret and ListSecretVersionIds return no value",
                ),
            ],
        )


def stack(
    app: Construct, stage: str, account: str, region: str, trusted_account: str, role_name: str
) -> Stack:
    """A stack holding only the role (IAM is global: deploy it in one region per account)."""
    holder = Stack(
        app,
        f"SecretsctlReadOnly-{stage}",
        env=Environment(account=account, region=region),
        description=f"secretsctl cross-account read-only role ({stage})",
    )
    SecretsctlReadOnlyRole(holder, "Secretsctl", trusted_account=trusted_account, role_name=role_name)
    return holder
