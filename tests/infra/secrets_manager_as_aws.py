"""moto's Secrets Manager staging labels, patched to behave as AWS documents (an autouse fixture)."""

from __future__ import annotations

from typing import Any

import pytest
from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend


@pytest.fixture(autouse=True)
def labels_as_aws_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2.5 differs from AWS in two ways these sequences reach; patched to AWS's documented behaviour.

    * UpdateSecretVersionStage moving AWSCURRENT does not tell moto's PutSecretValue which version is
      current, so a later PutSecretValue leaves two AWSCURRENT versions. AWS: each staging label is on
      one version at a time, and moving AWSCURRENT moves AWSPREVIOUS to the version it left
      (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html,
      https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html).
    * PutSecretValue replaces all labels of the old current version with AWSPREVIOUS; AWS moves only
      AWSCURRENT and AWSPREVIOUS, other labels stay where they are.
    """
    move_stage = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(self: Any, secret_id: str, version_stage: str, **kwargs: Any) -> Any:
        result = move_stage(self, secret_id, version_stage, **kwargs)
        secret = self.secrets[secret_id]
        if version_stage == "AWSCURRENT":
            current = [v for v, ver in secret.versions.items() if "AWSCURRENT" in ver["version_stages"]]
            secret.default_version_id = current[0] if current else None
        return result

    def reset_default_version(self: Any, secret_version: dict[str, Any], version_id: str) -> None:
        for old in self.versions.values():
            old["version_stages"] = [s for s in old["version_stages"] if s != "AWSPREVIOUS"]
        for old in self.versions.values():
            if "AWSCURRENT" in old["version_stages"]:
                old["version_stages"] = [s for s in old["version_stages"] if s != "AWSCURRENT"] + [
                    "AWSPREVIOUS"
                ]
        self.versions[version_id] = secret_version
        self.default_version_id = version_id

    monkeypatch.setattr(SecretsManagerBackend, "update_secret_version_stage", update_secret_version_stage)
    monkeypatch.setattr(FakeSecret, "reset_default_version", reset_default_version)
