"""The alert topics' access policies: every alarm and rule of the stack may publish, nothing else.

AWS behaviour these tests rely on:
- A topic policy replaces SNS's default policy (which allowed the owning account): once CDK writes an
  ``AWS::SNS::TopicPolicy`` (``enforce_ssl``), only what it allows can publish
  (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html).
- CloudWatch publishes an alarm's notification as the service principal ``cloudwatch.amazonaws.com``
  and sends ``aws:SourceArn`` (the alarm's ARN) and ``aws:SourceAccount`` with it
  (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html#source-account-versus-source-owner,
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html).
- An EventBridge rule publishes as ``events.amazonaws.com`` through the topic's resource policy, with
  ``aws:SourceArn`` = the rule's ARN
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions).
- IAM: an explicit Deny wins; without an Allow the request is denied
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import parse_config
from tests.infra.conftest import EXAMPLE, Synth, render, resources, synth

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "999988887777"


def _values(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _condition_holds(op: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    if key not in context:
        return False  # a condition on an absent key never matches (no ...IfExists here)
    actual = context[key]
    wanted = [str(render(x)) for x in _values(expected)]
    if op in ("StringEquals", "ArnEquals"):
        return actual in wanted
    if op in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(actual, w) for w in wanted)
    if op == "Bool":
        return actual.lower() in (w.lower() for w in wanted)
    raise AssertionError(f"condition operator {op} not modelled by this test")


def _statement_applies(st: dict[str, Any], principal: str, action: str, context: dict[str, str]) -> bool:
    p = st.get("Principal")
    if p != "*" and principal not in _values((p or {}).get("Service", [])):
        return False
    if action not in (a.lower() for a in _values(st["Action"])):
        return False
    return all(
        _condition_holds(op, key, expected, context)
        for op, block in st.get("Condition", {}).items()
        for key, expected in block.items()
    )


def publish_allowed(policy: dict[str, Any], principal: str, context: dict[str, str]) -> bool:
    statements = policy["Statement"]
    ctx = {"aws:SecureTransport": "true", **context}
    if any(
        s["Effect"] == "Deny" and _statement_applies(s, principal, "sns:publish", ctx) for s in statements
    ):
        return False
    return any(
        s["Effect"] == "Allow" and _statement_applies(s, principal, "sns:publish", ctx) for s in statements
    )


def _topic_policies(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Topic logical id -> its (single) policy document."""
    out: dict[str, dict[str, Any]] = {}
    for res in resources(raw, "AWS::SNS::TopicPolicy").values():
        for topic in res["Properties"]["Topics"]:
            assert topic["Ref"] not in out, "two policies on one topic"
            out[topic["Ref"]] = res["Properties"]["PolicyDocument"]
    return out


def _publishers(raw: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(topic logical id, service principal, source ARN as the template names it) of every alarm action
    and every rule target that is one of the stack's topics."""
    topics = set(resources(raw, "AWS::SNS::Topic"))
    out = []
    for lid, res in resources(raw, "AWS::CloudWatch::Alarm").items():
        for action in res["Properties"].get("AlarmActions", []):
            if action.get("Ref") in topics:
                out.append((action["Ref"], "cloudwatch.amazonaws.com", f"<{lid}.Arn>"))
    for lid, res in resources(raw, "AWS::Events::Rule").items():
        for target in res["Properties"].get("Targets", []):
            if isinstance(target["Arn"], dict) and target["Arn"].get("Ref") in topics:
                out.append((target["Arn"]["Ref"], "events.amazonaws.com", f"<{lid}.Arn>"))
    return out


@pytest.mark.parametrize("stack", ["SecretsRotation", "ParameterReplication"])
def test_every_alarm_and_rule_of_the_stack_may_publish(example: Synth, stack: str) -> None:
    raw = example.raw(stack)
    policies = _topic_policies(raw)
    publishers = _publishers(raw)
    assert publishers, "the stack has alarms"
    for topic, principal, source_arn in publishers:
        context = {"aws:SourceArn": source_arn, "aws:SourceAccount": ACCOUNT}
        assert publish_allowed(policies[topic], principal, context), (principal, source_arn)
        # Without TLS: still refused.
        assert not publish_allowed(policies[topic], principal, {**context, "aws:SecureTransport": "false"})


@pytest.mark.parametrize("stack", ["SecretsRotation", "ParameterReplication"])
def test_nothing_else_may_publish(example: Synth, stack: str) -> None:
    raw = example.raw(stack)
    policies = _topic_policies(raw)
    mine = {(p, a) for _, p, a in _publishers(raw)}
    for topic, policy in policies.items():
        for principal in ("cloudwatch.amazonaws.com", "events.amazonaws.com", "s3.amazonaws.com"):
            # Another account's alarm or rule (the confused deputy), or this account's others.
            for source_arn, account in (
                (f"arn:aws:cloudwatch:eu-west-1:{OTHER_ACCOUNT}:alarm:x", OTHER_ACCOUNT),
                (f"arn:aws:events:eu-west-1:{OTHER_ACCOUNT}:rule/x", OTHER_ACCOUNT),
                (f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:someone-elses", ACCOUNT),
                (f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/someone-elses", ACCOUNT),
                *((arn, OTHER_ACCOUNT) for _, arn in mine),  # our ARN with a foreign account
            ):
                context = {"aws:SourceArn": source_arn, "aws:SourceAccount": account}
                assert not publish_allowed(policy, principal, context), (topic, principal, source_arn)
        # A service principal of ours with a source of the other kind (an alarm ARN for EventBridge).
        for principal, source_arn in mine:
            services = ("cloudwatch.amazonaws.com", "events.amazonaws.com")
            other = services[1] if principal == services[0] else services[0]
            if (other, source_arn) not in mine:
                context = {"aws:SourceArn": source_arn, "aws:SourceAccount": ACCOUNT}
                assert not publish_allowed(policy, other, context)
        # No unconditioned Allow for any principal.
        for st in policy["Statement"]:
            if st["Effect"] == "Allow":
                assert "Condition" in st, st


@pytest.mark.parametrize("stack", ["SecretsRotation", "ParameterReplication"])
def test_the_topic_key_lets_both_publishers_encrypt(example: Synth, stack: str) -> None:
    """The topic is encrypted with its own key: a publisher needs kms:GenerateDataKey* and kms:Decrypt on
    it (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
    The same page: "Adding the aws:SourceAccount and aws:SourceArn to a AWS KMS policy is not supported
    for EventBridge-to-encrypted topics" - with them, every rule's delivery fails."""
    raw = example.raw(stack)
    topic = next(iter(resources(raw, "AWS::SNS::Topic").values()))
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    policy = raw["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    for service in ("events.amazonaws.com", "cloudwatch.amazonaws.com"):
        (st,) = [s for s in policy if s.get("Principal") == {"Service": service}]
        assert set(st["Action"]) >= {"kms:Decrypt", "kms:GenerateDataKey*"}, st
        keys = {k for block in st.get("Condition", {}).values() for k in block}
        if service == "events.amazonaws.com":
            assert not keys & {"aws:SourceAccount", "aws:SourceArn"}, st


def test_the_config_check_rule_may_publish_too(tmp_path: Path) -> None:
    """The AWS Config rotation check's EventBridge rule targets the stack's own topic as well."""
    raw = json.loads(EXAMPLE.read_text())
    raw["rotation"]["scheduledRotationCheck"] = True
    del raw["replication"]
    out = synth(parse_config(raw, source="test", base_dir=EXAMPLE.parent), tmp_path)
    template = out.raw("SecretsRotation")
    publishers = _publishers(template)
    assert sum(p == "events.amazonaws.com" for _, p, _ in publishers) == 2  # rotation failures, Config
    policies = _topic_policies(template)
    for topic, principal, source_arn in publishers:
        context = {"aws:SourceArn": source_arn, "aws:SourceAccount": ACCOUNT}
        assert publish_allowed(policies[topic], principal, context), (principal, source_arn)
