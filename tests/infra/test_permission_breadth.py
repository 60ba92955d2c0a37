"""Grants that AWS cannot scope by resource are scoped by condition; names are scoped to the stage.

AWS behaviour:
- ``tag:GetResources`` and ``ssm:DescribeParameters`` have no resource types (Service Authorization
  Reference: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonresourcegrouptaggingapi.html,
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html), but
  every request carries ``aws:RequestedRegion``
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-requestedregion).
- Parameter names are unique per account and region: two stages of one account replicating from the
  same region would share (and overwrite) one reconcile state parameter.
- EventBridge publishes to SNS with ``aws:SourceArn`` = the rule's ARN
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions).
"""

from __future__ import annotations

import json
from pathlib import Path

from infra.config import parse_config
from tests.infra.conftest import EXAMPLE, Synth, logical_id, render, resources, statements, synth

REGIONS = ["eu-central-1", "eu-west-1", "us-east-1"]  # the source and both targets


def test_region_wide_reads_only_in_the_stacks_regions(example: Synth) -> None:
    raw = example.raw("ParameterReplication")
    for sid, action in (
        ("ReadTagsInBulk", "tag:GetResources"),
        ("DescribeParameters", "ssm:DescribeParameters"),
    ):
        (st,) = [s for s in statements(raw, "ReplicatorPolicy") if s.get("Sid") == sid]
        assert st["Action"] == action and st["Resource"] == "*"
        assert sorted(st["Condition"]["StringEquals"]["aws:RequestedRegion"]) == REGIONS, st


def _state_parameter(out: Synth) -> tuple[set[str], list[str]]:
    raw = out.raw("ParameterReplication")
    env = {
        f["Properties"]["Environment"]["Variables"]["RECONCILE_STATE_PARAMETER"]
        for f in resources(raw, "AWS::Lambda::Function").values()
    }
    (st,) = [s for s in statements(raw, "ReplicatorPolicy") if s.get("Sid") == "ReconcileState"]
    return env, [st["Resource"]]


def test_reconcile_state_parameter_is_per_stage(example: Synth, tmp_path: Path) -> None:
    env, arns = _state_parameter(example)
    assert env == {"/parameter-replicator/example/reconcile-state"}
    assert arns == [
        "arn:aws:ssm:eu-west-1:123456789012:parameter/parameter-replicator/example/reconcile-state"
    ]
    raw = json.loads(EXAMPLE.read_text())
    raw["stage"] = "staging"
    del raw["rotation"]
    other = synth(parse_config(raw, source="staging", base_dir=EXAMPLE.parent), tmp_path)
    assert _state_parameter(other)[0] == {"/parameter-replicator/staging/reconcile-state"}


def test_eventbridge_publishes_only_for_the_stacks_rule(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    (policy,) = resources(raw, "AWS::SNS::TopicPolicy").values()
    (st,) = [
        s
        for s in render(policy["Properties"]["PolicyDocument"]["Statement"])
        if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    rule = logical_id(raw, "AWS::Events::Rule", "AlertsRotationFailedRule")
    assert st["Condition"] == {
        "ArnEquals": {"aws:SourceArn": [f"<{rule}.Arn>"]},
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    }
