"""Type drift between a source and its replica, repaired the way Parameter Store allows.

AWS refuses a PutParameter with ``Overwrite`` that changes an existing parameter's type
(``HierarchyTypeMismatchException``: "You must create a new, unique parameter";
https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
moto allows it, so every target here refuses it the way AWS does (a botocore
``before-call.ssm.PutParameter`` hook that reads moto's own state, so no call is added).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ssm.models import ssm_backends

from rotation_handlers import replicate
from rotation_handlers.replication import MARKER_TAG_KEY, ReplicationError, clients
from tests.replication import events as ev
from tests.replication.conftest import EU, SOURCE, TARGETS, US, Aws, secret
from tests.replication.test_races import assert_targets_match_source, once


def refuse_type_change(aws: Aws, region: str) -> list[str]:
    """Make ``region`` refuse a type-changing PutParameter as AWS does; returns the refused names."""
    refused: list[str] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        existing = ssm_backends[DEFAULT_ACCOUNT_ID][region].get_parameter(body["Name"])
        if body.get("Overwrite") and existing is not None and existing.parameter_type != body.get("Type"):
            refused.append(body["Name"])
            raise ClientError(
                {
                    "Error": {
                        "Code": "HierarchyTypeMismatchException",
                        "Message": "Parameter Store does not support changing a parameter type",
                    }
                },
                "PutParameter",
            )

    aws.on(aws.ssm(region), "before-call.ssm.PutParameter", hook)
    return refused


@pytest.fixture
def strict(aws: Aws) -> Iterator[dict[str, list[str]]]:
    yield {region: refuse_type_change(aws, region) for region in TARGETS}


def recreate_source(aws: Aws, name: str, value: str, **kwargs: Any) -> None:
    """What a user must do on AWS to change a type: delete, then create anew."""
    aws.ssm(SOURCE).delete_parameter(Name=name)
    aws.put(name, value, **kwargs)


def test_source_recreated_with_another_type_recreates_each_replica(
    aws: Aws, env: pytest.MonkeyPatch, strict: dict[str, list[str]]
) -> None:
    kms = clients.client("kms", EU)
    kms.create_alias(AliasName="alias/eu", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    env.setenv("REPLICA_KMS_KEYS", json.dumps({EU: "alias/eu"}))
    name = "/app/retyped"
    aws.put(name, secret("old"), Description="plain", Tags=[{"Key": "team", "Value": "a"}])
    replicate.handler(ev.put_parameter_event(name), None)
    older, current = secret("older"), secret("current")
    recreate_source(
        aws, name, older, Type="SecureString", Tier="Advanced", Tags=[{"Key": "team", "Value": "b"}]
    )
    aws.put(name, current, Type="SecureString", Description="now secret", Overwrite=True)
    aws.ssm(SOURCE).label_parameter_version(Name=name, ParameterVersion=1, Labels=["previous"])

    summary = replicate.handler(ev.put_parameter_event(name, "SecureString", overwrite=True), None)

    assert summary["regions"] == {EU: {"updated": 1}, US: {"updated": 1}}
    assert strict == {EU: [], US: []}  # no type-changing overwrite was sent
    assert_targets_match_source(aws, name)
    for region in TARGETS:
        meta = aws.describe(name, region)
        assert (meta["Type"], meta["Tier"], meta["Description"]) == ("SecureString", "Advanced", "now secret")
        assert aws.tags(name, region) == {"team": "b", MARKER_TAG_KEY: SOURCE}
    assert aws.describe(name, EU)["KeyId"].endswith("alias/eu")
    aws.reset_counts()
    again = replicate.handler(ev.put_parameter_event(name, "SecureString", overwrite=True), None)
    assert again["regions"] == {EU: {"unchanged": 1}, US: {"unchanged": 1}}
    assert aws.writes() == 0


def test_reconcile_recreates_a_replica_of_another_type(aws: Aws, strict: dict[str, list[str]]) -> None:
    name = "/app/reconciled"
    aws.put(name, secret(), Type="SecureString")
    replicate.reconcile_handler({}, None)
    # someone re-created the replica in eu-west-1 as a String (keeping the marker)
    eu = aws.ssm(EU)
    eu.delete_parameter(Name=name)
    aws.put(name, secret("plain"), region=EU, Tags=[{"Key": MARKER_TAG_KEY, "Value": SOURCE}])
    aws.reset_counts()
    replicate.reconcile_handler({}, None)
    assert strict == {EU: [], US: []}
    assert_targets_match_source(aws, name)
    assert aws.count(EU, "DeleteParameter") == 1 and aws.count(US, "DeleteParameter") == 0


@pytest.mark.parametrize("adopt", [False, True])
def test_unmanaged_target_of_another_type(
    aws: Aws, env: pytest.MonkeyPatch, strict: dict[str, list[str]], adopt: bool
) -> None:
    env.setenv("REPLICA_REGIONS", EU)
    env.setenv("ADOPT_UNMANAGED_TARGETS", str(adopt).lower())
    name = "/app/theirs"
    theirs = secret("theirs")
    aws.put(name, theirs, region=EU)  # not created by the replicator: no marker tag
    aws.put(name, secret(), Type="SecureString")
    aws.reset_counts()
    summary = replicate.handler(ev.put_parameter_event(name, "SecureString"), None)
    if adopt:
        assert summary["regions"] == {EU: {"updated": 1}}
        assert aws.get(name, EU)["Value"] == aws.get(name, SOURCE)["Value"]
        assert aws.tags(name, EU) == {MARKER_TAG_KEY: SOURCE}
    else:
        assert summary["regions"] == {EU: {"skipped": 1, "unmanaged-target-refused": 1}}
        assert aws.get(name, EU)["Value"] == theirs
        assert aws.writes() == 0
    assert strict == {EU: [], US: []}


def test_replica_already_recreated_by_another_invocation_is_not_deleted_again(
    aws: Aws, strict: dict[str, list[str]]
) -> None:
    name = "/app/twice"
    aws.put(name, secret())
    replicate.handler(ev.put_parameter_event(name), None)
    recreate_source(aws, name, secret("new"), Type="SecureString")

    def other_invocation() -> None:
        replicate.handler(ev.put_parameter_event(name, "SecureString"), None)

    # invocation A has read the target (a String); B repairs it; then A would delete B's replica
    fired = once(aws, EU, "ListTagsForResource", other_invocation)  # tags: the last read
    replicate.handler(ev.put_parameter_event(name, "SecureString"), None)
    assert fired
    assert_targets_match_source(aws, name)
    assert aws.count(EU, "DeleteParameter") == 1  # B's only


def test_create_race_after_the_delete_converges(aws: Aws, strict: dict[str, list[str]]) -> None:
    name = "/app/racing"
    aws.put(name, secret())
    replicate.handler(ev.put_parameter_event(name), None)
    recreate_source(aws, name, secret("new"), Type="StringList")

    def other_invocation() -> None:
        replicate.handler(ev.put_parameter_event(name, "StringList"), None)

    # invocation A deleted the replica; B creates it before A's create lands (ParameterAlreadyExists)
    fired = once(aws, EU, "PutParameter", other_invocation, name=name)
    summary = replicate.handler(ev.put_parameter_event(name, "StringList"), None)
    assert fired
    assert summary["regions"][EU] in ({"updated": 1}, {"unchanged": 1})
    assert_targets_match_source(aws, name)


def test_type_refused_in_a_race_is_replanned(aws: Aws) -> None:
    """The target changes type between our read and our overwrite: the refusal is re-planned."""
    name = "/app/retype-race"
    aws.put(name, secret())
    replicate.handler(ev.put_parameter_event(name), None)
    aws.put(name, secret("v2"), Overwrite=True)

    def replica_retyped() -> None:
        aws.ssm(EU).delete_parameter(Name=name)
        aws.put(
            name,
            secret("odd"),
            region=EU,
            Type="SecureString",
            Tags=[{"Key": MARKER_TAG_KEY, "Value": SOURCE}],
        )

    fired = once(aws, EU, "PutParameter", replica_retyped, name=name)
    refused = refuse_type_change(aws, EU)  # after the race hook: it sees the re-typed replica
    replicate.handler(ev.put_parameter_event(name, overwrite=True), None)
    assert fired and refused == [name]
    assert_targets_match_source(aws, name)


def test_without_the_repair_aws_refuses(aws: Aws, strict: dict[str, list[str]]) -> None:
    """The emulation itself: a type-changing overwrite fails as on AWS, a same-type one passes."""
    aws.put("/app/emul", secret(), region=EU)
    with pytest.raises(ClientError, match="HierarchyTypeMismatchException"):
        aws.put("/app/emul", secret(), region=EU, Type="SecureString", Overwrite=True)
    aws.put("/app/emul", secret(), region=EU, Overwrite=True)
    assert strict[EU] == ["/app/emul"]


def test_failed_create_after_type_change_restores_the_previous_replica(
    aws: Aws, strict: dict[str, list[str]]
) -> None:
    """If the re-create fails (here the target's KMS key is unusable: PutParameter raises
    InvalidKeyId, https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html),
    the replica deleted for the type change is put back: a type change never leaves no replica."""
    name = "/app/keep"
    old = secret("old")
    aws.put(name, old, Description="plain", Tags=[{"Key": "team", "Value": "a"}])
    replicate.handler(ev.put_parameter_event(name), None)

    def no_key(params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        if body.get("Type") == "SecureString":
            raise ClientError({"Error": {"Code": "InvalidKeyId", "Message": "key disabled"}}, "PutParameter")

    aws.on(aws.ssm(EU), "before-call.ssm.PutParameter", no_key)
    recreate_source(aws, name, secret("new"), Type="SecureString", Tags=[{"Key": "team", "Value": "a"}])

    with pytest.raises(ReplicationError) as raised:
        replicate.handler(ev.put_parameter_event(name, "SecureString"), None)
    assert "InvalidKeyId" in str(raised.value) and EU in str(raised.value)
    kept = aws.get(name, EU)
    assert kept is not None and (kept["Value"], kept["Type"]) == (old, "String")
    assert aws.describe(name, EU)["Description"] == "plain"
    assert aws.tags(name, EU) == {"team": "a", MARKER_TAG_KEY: SOURCE}
    assert aws.get(name, US)["Type"] == "SecureString"


@pytest.mark.parametrize("key_state", ["missing", "disabled"])
def test_type_change_checks_the_target_key_before_deleting(
    aws: Aws, env: pytest.MonkeyPatch, strict: dict[str, list[str]], key_state: str
) -> None:
    """The replica is not deleted for a SecureString re-create the target's key cannot encrypt.

    Parameter Store encrypts with the KMS key given as KeyId in that region; a key that does not
    exist or is not Enabled makes PutParameter fail (InvalidKeyId / KMS errors; PutParameter,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html,
    and KMS "Key states of AWS KMS keys", https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html).
    """
    kms = clients.client("kms", EU)
    if key_state == "disabled":
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/eu-replicas", TargetKeyId=key_id)
        kms.disable_key(KeyId=key_id)
    env.setenv("REPLICA_KMS_KEYS", json.dumps({EU: "alias/eu-replicas"}))
    name = "/app/checked"
    old = secret("old")
    aws.put(name, old)
    replicate.handler(ev.put_parameter_event(name), None)
    recreate_source(aws, name, secret("new"), Type="SecureString")
    aws.reset_counts()

    with pytest.raises(ReplicationError) as raised:
        replicate.handler(ev.put_parameter_event(name, "SecureString"), None)
    assert "ReplicaKeyUnusable" in str(raised.value)
    assert aws.count(EU, "DeleteParameter") == 0
    assert aws.get(name, EU)["Value"] == old
    assert aws.get(name, US)["Type"] == "SecureString"
