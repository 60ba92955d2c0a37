"""The EventBridge patterns against the replication engineer's event fixtures.

A small matcher implements the subset of EventBridge pattern syntax the stacks use: exact values,
``prefix``, ``wildcard`` (``*`` only), ``anything-but`` (values or ``{"prefix": ...}``), ``exists`` and
``$or``.
"""

from __future__ import annotations

import fnmatch
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
        if op == "wildcard":
            assert not set(arg) & set("?[]"), "EventBridge wildcards have only *"
            return isinstance(value, str) and fnmatch.fnmatchcase(value, arg)
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
        if key == "$or":
            if not any(matches(alternative, event) for alternative in rule):
                return False
            continue
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
    assert matches({"a": [{"wildcard": "arn:*:p/app/*"}]}, {"a": "arn:aws:p/app/x"})
    assert not matches({"a": [{"wildcard": "arn:*:p/app/*"}]}, {"a": "arn:aws:p/apple"})
    assert matches({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"b": "y"})
    assert not matches({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"c": "y"})


@pytest.fixture(scope="module")
def cloudtrail_pattern(example: Synth) -> dict[str, Any]:
    raw = example.raw("ParameterReplication")
    rule = raw["Resources"][logical_id(raw, "AWS::Events::Rule", "ReplicatorChangeRule")]["Properties"]
    return render(rule["EventPattern"])


def test_cloudtrail_pattern_shape(cloudtrail_pattern: dict[str, Any]) -> None:
    # No filter on the caller: anything-but would drop every event without userIdentity.arn.
    assert "userIdentity" not in cloudtrail_pattern["detail"]
    assert cloudtrail_pattern["detail"]["errorCode"] == [{"exists": False}]
    names = [
        {"prefix": "/app/"},
        {"prefix": "app/"},
        {"wildcard": "arn:*:ssm:*:*:parameter/app/*"},
        {"prefix": "/shared/"},
        {"prefix": "shared/"},
        {"wildcard": "arn:*:ssm:*:*:parameter/shared/*"},
    ]
    assert cloudtrail_pattern["detail"]["$or"] == [
        {"requestParameters": {"name": names}},
        {"requestParameters": {"names": names}},
        {"requestParameters": {"resourceId": names}},
    ]


OTHER = {"user_arn": "arn:aws:sts::123456789012:assumed-role/DeployRole/alice"}
OWN = {"user_arn": assumed_role_arn("ReplicatorRoleGenerated", "replicator-session")}
IAM_USER = {"user_arn": "arn:aws:iam::123456789012:user/bob"}


def _without_caller_arn(event: dict[str, Any]) -> dict[str, Any]:
    """A call by a principal whose CloudTrail userIdentity has no ``arn`` (e.g. an AWS service)."""
    event["detail"]["userIdentity"] = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    return event


@pytest.mark.parametrize(
    "event",
    [
        put_parameter_event("/app/db/url", **OTHER),
        put_parameter_event("/app/db/password", type_="SecureString", overwrite=True, version=3, **IAM_USER),
        delete_parameter_event("/app/old", **OTHER),
        delete_parameters_event(["/other/a", "/app/b"], **OTHER),
        label_event("/app/db/url", 2, ["prod"], **OTHER),
        unlabel_event("/app/db/url", 2, ["prod"], **OTHER),
        add_tags_event("/app/db/url", {"team": "x"}, **OTHER),
        remove_tags_event("/shared/db/url", ["team"], **OTHER),
        put_parameter_event("app/no-leading-slash", **OTHER),
        put_parameter_event("arn:aws:ssm:us-east-1:123456789012:parameter/app/by-arn", **OTHER),
        _without_caller_arn(put_parameter_event("/app/x")),
        # The replicator's own calls reach the handler, which ignores them (see its tests).
        put_parameter_event("/app/db/url", **OWN),
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
        "name-without-slash",
        "name-as-arn",
        "no-caller-arn",
        "own-role",
    ],
)
def test_cloudtrail_pattern_matches_handled_calls(
    cloudtrail_pattern: dict[str, Any], event: dict[str, Any]
) -> None:
    assert matches(cloudtrail_pattern, event)


@pytest.mark.parametrize(
    "event",
    [
        put_parameter_event("/app/db/url", error_code="AccessDenied", **OTHER),  # failed call
        delete_parameter_event("/app/old", error_code="ParameterNotFound", **OTHER),
        cloudtrail_event("GetParameter", {"name": "/app/db/url"}, **OTHER),  # read
        cloudtrail_event("GetParametersByPath", {"path": "/app"}, **OTHER),
        parameter_store_change_event("/app/db/url", "Update"),  # other detail-type
        {**put_parameter_event("/app/x", **OTHER), "source": "aws.secretsmanager"},
        # Not under an included path: no invocation at all during a bulk import elsewhere.
        put_parameter_event("/other/x", **OTHER),
        put_parameter_event("/application/x", **OTHER),
        delete_parameters_event(["/other/a", "/other/b"], **OTHER),
        add_tags_event("/other/x", {"team": "x"}, **OTHER),
        put_parameter_event("arn:aws:ssm:us-east-1:123456789012:parameter/other/app/x", **OTHER),
    ],
    ids=[
        "failed",
        "failed-delete",
        "read",
        "read-path",
        "native-event",
        "other-source",
        "other-path",
        "path-string-prefix",
        "delete-many-elsewhere",
        "tag-elsewhere",
        "arn-elsewhere",
    ],
)
def test_cloudtrail_pattern_rejects(cloudtrail_pattern: dict[str, Any], event: dict[str, Any]) -> None:
    assert not matches(cloudtrail_pattern, event)


def test_root_path_has_no_name_filter() -> None:
    import aws_cdk as cdk

    from infra.replication import cloudtrail_event_pattern

    stack = cdk.Stack(cdk.App())
    pattern = stack.resolve(cloudtrail_event_pattern(["/"]).detail)
    assert "$or" not in pattern
    assert matches({"detail": pattern}, put_parameter_event("/anything/x", **OTHER))


STATE = "/parameter-replicator/reconcile-state"


@pytest.mark.parametrize("source", ["cloudtrail", "parameter-store"])
def test_root_path_leaves_out_the_reconcile_state(source: str) -> None:
    """With every path replicated, reconcile's own state writes invoke nothing; all else still does."""
    import aws_cdk as cdk

    from infra.replication import cloudtrail_event_pattern, parameter_store_event_pattern

    stack = cdk.Stack(cdk.App())
    if source == "cloudtrail":
        pattern = stack.resolve(cloudtrail_event_pattern(["/"], [STATE]).detail)
        state_events = [put_parameter_event(STATE, **OWN), put_parameter_event(STATE[1:], **OWN)]
        other_events = [
            put_parameter_event("/anything/x", **OTHER),
            put_parameter_event("/parameter-replicator/other", **OTHER),
            delete_parameters_event(["/a", STATE], **OTHER),  # names, no name: still delivered
            add_tags_event("/anything/x", {"team": "x"}, **OTHER),
            remove_tags_event("/anything/x", ["team"], **OTHER),
            label_event("/anything/x", 2, ["prod"], **OTHER),
        ]
    else:
        pattern = stack.resolve(parameter_store_event_pattern(["/"], [STATE]).detail)
        state_events = [parameter_store_change_event(STATE, "Update")]
        other_events = [parameter_store_change_event("/anything/x", op) for op in ("Create", "Delete")]
    for event in state_events:
        assert not matches({"detail": pattern}, event), event["detail"]
    for event in other_events:
        assert matches({"detail": pattern}, event), event["detail"]


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
