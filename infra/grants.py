"""IAM grants on secrets' KMS keys, bound to the secrets' ARNs and to Secrets Manager."""

from __future__ import annotations

from typing import Any

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


def grant_replica_key(
    scope: Construct,
    role: iam.IRole,
    *,
    key_arn: str,
    replica_region: str,
    secret_name: str,
    alias: str | None = None,
) -> iam.PolicyStatement:
    """``kms:GenerateDataKey``/``kms:Encrypt`` on a replica Region's customer-managed key, for a role that
    changes the value of the replicated secret ``secret_name`` (created by this stack, or an existing one
    whose replica keys the configuration names).

    Secrets Manager acts "on behalf of the user who is creating or changing the secret value"
    (https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html#security-encryption-authz)
    and replicates each new value by re-encrypting it with the replica's key under the caller's identity
    (https://docs.aws.amazon.com/secretsmanager/latest/userguide/cross-account-replicate-permissions.html);
    a replica key other than aws/secretsmanager needs kms:GenerateDataKey and kms:Encrypt
    (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ReplicateSecretToRegions.html).
    Limited to requests through Secrets Manager (either Region's endpoint) for this secret's primary or
    replica ARN. ``alias``: the key is named by an alias (``key_arn`` is then ``key/*`` of the Region and
    ``kms:ResourceAliases`` picks the key: KMS authorizes on the key, not the alias).
    """
    stack = Stack.of(scope)
    conditions: dict[str, Any] = {
        "StringEquals": {
            "kms:ViaService": [
                f"secretsmanager.{stack.region}.amazonaws.com",
                f"secretsmanager.{replica_region}.amazonaws.com",
            ]
        },
        "StringLike": {
            "kms:EncryptionContext:SecretARN": [
                f"arn:{stack.partition}:secretsmanager:{region}:{stack.account}:secret:{secret_name}-??????"
                for region in (stack.region, replica_region)
            ]
        },
    }
    if alias is not None:
        conditions["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": [alias]}
    statement = iam.PolicyStatement(
        actions=["kms:GenerateDataKey", "kms:Encrypt"], resources=[key_arn], conditions=conditions
    )
    role.add_to_principal_policy(statement)
    return statement
