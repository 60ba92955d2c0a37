"""Retained resources are retained except when the deploy that created them fails.

CloudFormation's ``DeletionPolicy: RetainExceptOnCreate`` "behaves like Retain for stack operations,
except for the stack operation that initially created the resource. If the stack operation that created
the resource is rolled back, CloudFormation deletes the resource"
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
With plain ``Retain`` a failed first deploy leaves the fixed-name secrets (and the key aliases) behind,
and every retry fails with "already exists". ``UpdateReplacePolicy`` has no such value; it stays
``Retain`` (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-updatereplacepolicy.html).
"""

from __future__ import annotations

import pytest

from tests.infra.conftest import Synth, resources


@pytest.mark.parametrize("fixture", ["example", "variant"])
def test_nothing_is_kept_when_its_first_deploy_fails(fixture: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(fixture)
    for stack, raw in synth.templates.items():
        for lid, res in raw["Resources"].items():
            assert res.get("DeletionPolicy") != "Retain", (stack, lid, res["Type"])


def test_created_secrets_and_keys_outlive_the_stack(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    kept = {**resources(raw, "AWS::SecretsManager::Secret"), **resources(raw, "AWS::KMS::Key")}
    assert len(kept) >= 6
    for lid, res in kept.items():
        assert res["DeletionPolicy"] == "RetainExceptOnCreate", lid
        assert res["UpdateReplacePolicy"] == "Retain", lid
