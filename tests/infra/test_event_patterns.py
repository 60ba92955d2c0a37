"""The EventBridge patterns against the replication engineer's event fixtures.

A small matcher implements the subset of EventBridge pattern syntax the stacks use: exact values,
``prefix``, ``anything-but`` (values or ``{"prefix": ...}``) and ``exists``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synth, logical_id, render
from tests.replication.events import (
    add_tags_event,
    assumed_role_arn,
    cloudtrail_event,
    delete_parameter_event,
    delete_parameters_event,
    label_event,
    parameter_store_change_event,
    put_parameter_event,
    remove_tags_event,
    unlabel_event,
)

_ABSENT = object()


def _match_value(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        ((op, arg),) = rule.items()
        if op == "exists":
            return (value is not _ABSENT) == arg
        if value is _ABSENT:
            return False
        if op == "prefix":
            return isinstance(value, str) and value.startswith(arg)
        if op == "anything-but":
            if isinstance(arg, dict):
                ((sub, sub_arg),) = arg.items()
                assert sub == "prefix", f"unsupported anything-but operator {sub}"
                return not (isinstance(value, str) and value.startswith(sub_arg))
            values = arg if isinstance(arg, list) else [arg]
            return value not in values
        raise AssertionError(f"unsupported operator {op}")
    return value is not _ABSENT and value == rule


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    for key, rule in pattern.items():
        value = event.get(key, _ABSENT) if isinstance(event, dict) else _ABSENT
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not matches(rule, value):
                if not (value is _ABSENT and _only_absent(rule)):
                    return False
            continue
        assert isinstance(rule, list), f"{key}: a pattern leaf is a list"
        candidates = value if isinstance(value, list) else [value]
        if not any(_match_value(r, c) for r in rule for c in candidates):
            return False
    return True


def _only_absent(rule: dict[str, Any]) -> bool:
    """A nested pattern that an absent object satisfies (every leaf is exists: false)."""
    return all(_only_absent(v) if isinstance(v, dict) else v == [{"exists": False}] for v in rule.values())


def test_matcher_basics() -> None:
    assert matches({"a": ["x"]}, {"a": "x"})
    assert not matches({"a": ["x"]}, {"a": "y"})
    assert matches({"a": [{"prefix": "/app/"}]}, {"a": "/app/db"})
    assert matches({"a": [{"exists": False}]}, {})
    assert not matches({"a": [{"exists": False}]}, {"a": "E"})
    assert not matches({"a": [{"anything-but": {"prefix": "x"}}]}, {})  # anything-but needs the field
    assert matches({"a": ["x"]}, {"a": ["y", "x"]})  # arrays: any element


ROLE_NAME = "ReplicatorRoleGenerated"


@pytest.fixture(scope="module")
def cloudtrail_pattern(example: Synth) -> dict[str, Any]:
    raw = example.raw("ParameterReplication")
    role = logical_id(raw, "AWS::IAM::Role", "ReplicatorRole")
    rule = raw["Resources"][logical_id(raw, "AWS::Events::Rule", "ReplicatorChangeRule")]["Properties"]
    # Ref of the role is its (generated) name: substitute a concrete one.
    return _subst(render(rule["EventPattern"]), f"<{role}>", ROLE_NAME)


def _subst(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _subst(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_subst(v, old, new) for v in value]
    return value


def test_cloudtrail_pattern_shape(cloudtrail_pattern: dict[str, Any]) -> None:
    assert cloudtrail_pattern["detail"]["userIdentity"] == {
        "arn": [{"anything-but": {"prefix": f"arn:aws:sts::123456789012:assumed-role/{ROLE_NAME}/"}}]
    }
    assert cloudtrail_pattern["detail"]["errorCode"] == [{"exists": False}]


OTHER = {"user_arn": "arn:aws:sts::123456789012:assumed-role/DeployRole/alice"}
OWN = {"user_arn": assumed_role_arn(ROLE_NAME, "replicator-session")}
IAM_USER = {"user_arn": "arn:aws:iam::123456789012:user/bob"}


@pytest.mark.parametrize(
    "event",
    [
        put_parameter_event("/app/db/url", **OTHER),
        put_parameter_event("/app/db/password", type_="SecureString", overwrite=True, version=3, **IAM_USER),
        delete_parameter_event("/app/old", **OTHER),
        delete_parameters_event(["/app/a", "/app/b"], **OTHER),
        label_event("/app/db/url", 2, ["prod"], **OTHER),
        unlabel_event("/app/db/url", 2, ["prod"], **OTHER),
        add_tags_event("/app/db/url", {"team": "x"}, **OTHER),
        remove_tags_event("/app/db/url", ["team"], **OTHER),
        # A role whose name merely starts like ours is not ours.
        put_parameter_event("/app/x", user_arn=assumed_role_arn(ROLE_NAME + "Other")),
    ],
    ids=[
        "put",
        "put-secure-iam-user",
        "delete",
        "delete-many",
        "label",
        "unlabel",
        "tag",
        "untag",
        "similar-role",
    ],
)
def test_cloudtrail_pattern_matches_handled_calls(
    cloudtrail_pattern: dict[str, Any], event: dict[str, Any]
) -> None:
    assert matches(cloudtrail_pattern, event)


@pytest.mark.parametrize(
    "event",
    [
        put_parameter_event("/app/db/url", **OWN),  # the replicator's own call
        put_parameter_event("/app/db/url", error_code="AccessDenied", **OTHER),  # failed call
        delete_parameter_event("/app/old", error_code="ParameterNotFound", **OTHER),
        cloudtrail_event("GetParameter", {"name": "/app/db/url"}, **OTHER),  # read
        cloudtrail_event("GetParametersByPath", {"path": "/app"}, **OTHER),
        parameter_store_change_event("/app/db/url", "Update"),  # other detail-type
        {**put_parameter_event("/app/x", **OTHER), "source": "aws.secretsmanager"},
    ],
    ids=["own-role", "failed", "failed-delete", "read", "read-path", "native-event", "other-source"],
)
def test_cloudtrail_pattern_rejects(cloudtrail_pattern: dict[str, Any], event: dict[str, Any]) -> None:
    assert not matches(cloudtrail_pattern, event)


@pytest.fixture(scope="module")
def parameter_store_pattern(minimal: Synth) -> dict[str, Any]:
    raw = minimal.raw("ParameterReplication")
    return raw["Resources"][logical_id(raw, "AWS::Events::Rule", "ReplicatorChangeRule")]["Properties"][
        "EventPattern"
    ]


@pytest.mark.parametrize(
    ("name", "operation", "expected"),
    [
        ("/app/db/url", "Create", True),
        ("/app/db/url", "Update", True),
        ("/shared/x", "Delete", True),
        ("/app/db/url", "LabelParameterVersion", True),
        ("/other/x", "Update", False),  # not under an included path
        ("/application/x", "Update", False),  # '/app/' is a path, not a string prefix of '/app'
    ],
)
def test_parameter_store_pattern(
    parameter_store_pattern: dict[str, Any], name: str, operation: str, expected: bool
) -> None:
    assert matches(parameter_store_pattern, parameter_store_change_event(name, operation)) is expected
    assert not matches(parameter_store_pattern, put_parameter_event(name, **OTHER))


def _rotation_event(event_name: str) -> dict[str, Any]:
    """A Secrets Manager rotation service event (shape from the Secrets Manager user guide)."""
    return {
        "version": "0",
        "id": "2d1e9a2b-0000-0000-0000-000000000000",
        "detail-type": "AWS Service Event via CloudTrail",
        "source": "aws.secretsmanager",
        "account": "123456789012",
        "region": "eu-west-1",
        "detail": {
            "eventVersion": "1.05",
            "userIdentity": {"accountId": "123456789012", "invokedBy": "secretsmanager.amazonaws.com"},
            "eventSource": "secretsmanager.amazonaws.com",
            "eventName": event_name,
            "awsRegion": "eu-west-1",
            "additionalEventData": {
                "SecretId": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf"
            },
            "eventType": "AwsServiceEvent",
        },
    }


@pytest.mark.parametrize(
    ("event_name", "expected"),
    [
        ("RotationFailed", True),
        ("RotationAbandoned", True),
        ("RotationSucceeded", False),
        ("RotationStarted", False),
    ],
)
def test_rotation_failure_rule(example: Synth, event_name: str, expected: bool) -> None:
    raw = example.raw("SecretsRotation")
    pattern = raw["Resources"][logical_id(raw, "AWS::Events::Rule", "AlertsRotationFailedRule")][
        "Properties"
    ]["EventPattern"]
    assert matches(pattern, _rotation_event(event_name)) is expected
