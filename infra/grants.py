"""IAM grants on secrets' KMS keys, bound to the secrets' ARNs and to Secrets Manager."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct


class SecretKeyGrants:
    """One statement per (key, action set) on ``role``, listing the secrets whose key use it allows.

    Each statement requires ``kms:EncryptionContext:SecretARN`` to be one of those secrets and
    ``kms:ViaService`` to be Secrets Manager in the stack's region.
    """

    def __init__(self, scope: Construct, role: iam.IRole) -> None:
        self._stack = Stack.of(scope)
        self._role = role
        self._statements: dict[tuple[str, tuple[str, ...]], tuple[iam.PolicyStatement, list[str]]] = {}

    def grant(self, key: object, secret_arn: str, actions: tuple[str, ...]) -> None:
        key_arn: str = key.key_arn  # type: ignore[attr-defined]
        entry = self._statements.get((key_arn, actions))
        if entry is None:
            statement = iam.PolicyStatement(actions=list(actions), resources=[key_arn])
            self._role.add_to_principal_policy(statement)
            entry = (statement, [])
            self._statements[(key_arn, actions)] = entry
        statement, arns = entry
        if secret_arn not in arns:
            arns.append(secret_arn)
        statement.add_condition(
            "StringEquals",
            {
                "kms:EncryptionContext:SecretARN": list(arns),
                "kms:ViaService": f"secretsmanager.{self._stack.region}.amazonaws.com",
            },
        )
