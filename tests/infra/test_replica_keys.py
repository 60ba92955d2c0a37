"""Rotating a created secret that is replicated under a customer-managed key in another Region.

AWS behaviour (Secrets Manager User Guide):
- "When Secrets Manager uses a KMS key in cryptographic operations, it acts on behalf of the user who
  is creating or changing the secret value in the secret"
  (https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html#security-encryption-authz).
- Each change of the primary's value (``PutSecretValue``: rotation's createSecret, the connection-fields
  resource) is replicated: "Secrets Manager decrypts the value with the primary secret's KMS key and
  re-encrypts it with the replica secret's KMS key", with the caller's own identity (forward access
  session) (https://docs.aws.amazon.com/secretsmanager/latest/userguide/cross-account-replicate-permissions.html).
- Encrypting a replica with a key other than ``aws/secretsmanager`` needs ``kms:GenerateDataKey`` and
  ``kms:Encrypt`` on that key
  (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ReplicateSecretToRegions.html).
So the rotation role (and the connection-fields role) need those two on the replica Region's key; the
AWS managed key needs no grant (its key policy allows the account's principals through Secrets Manager).
Without it the primary rotates and the replica silently keeps the old password ("Failed" replication).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.config import parse_config
from tests.infra.conftest import EXAMPLE, config_errors, statements, synth

ACCOUNT = "123456789012"
REPLICA_KEY = "arn:aws:kms:eu-central-1:123456789012:key/22222222-3333-4444-5555-666666666666"


def _grants(raw: dict[str, Any], policy_prefix: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements(raw, policy_prefix)
        if "kms:Encrypt" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]


def test_rotation_and_fields_roles_may_encrypt_with_the_replica_key(tmp_path: Path) -> None:
    raw = json.loads(EXAMPLE.read_text())
    app = raw["rotation"]["secrets"][2]  # payments-app, prod/payments/app
    app["create"]["replicaRegions"] = [{"region": "eu-central-1", "kmsKey": REPLICA_KEY}, "us-west-2"]
    del raw["replication"]
    out = synth(parse_config(raw, source="test", base_dir=EXAMPLE.parent), tmp_path)
    template = out.raw("SecretsRotation")
    for prefix in ("RotationRole", "ConnectionFieldsRole"):
        (grant,) = _grants(template, prefix)
        assert sorted(grant["Action"]) == ["kms:Encrypt", "kms:GenerateDataKey"]
        assert grant["Resource"] == REPLICA_KEY
        assert grant["Condition"]["StringEquals"]["kms:ViaService"] == [
            "secretsmanager.eu-west-1.amazonaws.com",
            "secretsmanager.eu-central-1.amazonaws.com",
        ]
        assert grant["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"] == [
            f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:prod/payments/app-??????",
            f"arn:aws:secretsmanager:eu-central-1:{ACCOUNT}:secret:prod/payments/app-??????",
        ]


def test_no_grant_for_replicas_under_the_aws_managed_key(example: Any) -> None:
    template = example.raw("SecretsRotation")  # payments-app replicates to eu-central-1, no kmsKey
    assert _grants(template, "RotationRole") == []


def test_a_replica_key_named_by_its_alias(tmp_path: Path) -> None:
    raw = json.loads(EXAMPLE.read_text())
    raw["rotation"]["secrets"][2]["create"]["replicaRegions"] = [
        {"region": "eu-central-1", "kmsKey": "alias/secrets-replica"}
    ]
    del raw["replication"]
    out = synth(parse_config(raw, source="test", base_dir=EXAMPLE.parent), tmp_path)  # cdk-nag passes
    (grant,) = _grants(out.raw("SecretsRotation"), "RotationRole")
    assert grant["Resource"] == f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/*"
    assert grant["Condition"]["ForAnyValue:StringEquals"] == {
        "kms:ResourceAliases": ["alias/secrets-replica"]
    }


EXISTING = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/orders/app-AbCdEf"


def test_an_existing_secrets_replica_key_is_granted_to_the_rotation_role(tmp_path: Path) -> None:
    """An existing secret (``arn``) rotated by this stack: its replica keys are named in the configuration."""
    raw = json.loads(EXAMPLE.read_text())
    orders = raw["rotation"]["secrets"][0]
    assert orders["arn"] == EXISTING
    orders["replicaKmsKeys"] = {"eu-central-1": REPLICA_KEY}
    del raw["replication"]
    out = synth(parse_config(raw, source="test", base_dir=EXAMPLE.parent), tmp_path)
    template = out.raw("SecretsRotation")
    (grant,) = _grants(template, "RotationRole")
    assert grant["Resource"] == REPLICA_KEY
    assert grant["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"] == [
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:prod/orders/app-??????",
        f"arn:aws:secretsmanager:eu-central-1:{ACCOUNT}:secret:prod/orders/app-??????",
    ]
    assert _grants(template, "ConnectionFieldsRole") == []  # it never writes an existing secret


def test_replica_keys_of_an_existing_secret_are_checked() -> None:
    raw = json.loads(EXAMPLE.read_text())
    raw["rotation"]["secrets"][0]["replicaKmsKeys"] = {
        "eu-west-1": REPLICA_KEY,
        "us-east-1": REPLICA_KEY,
        "nowhere": "alias/x",
    }
    raw["rotation"]["secrets"][2]["replicaKmsKeys"] = {"eu-central-1": REPLICA_KEY}
    errors = config_errors(raw)
    assert "rotation.secrets[0].replicaKmsKeys.eu-west-1: eu-west-1 is the secret's own region" in errors
    assert (
        f"rotation.secrets[0].replicaKmsKeys.us-east-1: {REPLICA_KEY!r} is not a key in us-east-1" in errors
    )
    assert (
        "rotation.secrets[0].replicaKmsKeys.nowhere: 'nowhere' is not an AWS region (like eu-west-1)"
        in errors
    )
    assert (
        "rotation.secrets[2].replicaKmsKeys: only for an existing secret ('arn'): a created one's are in "
        "create.replicaRegions"
    ) in errors
