"""Configurations that synthesize but cannot work once deployed: refused at synth, or handled.

AWS behaviour:
- A created secret's generated password is unknown to the database until an operator creates the user
  with it, and both rotation strategies start by logging in with the current credentials, so a first
  rotation started by the deploy (``RotateImmediatelyOnUpdate: true``, "Specifies whether to rotate the
  secret immediately or wait until the next scheduled rotation window",
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-rotationschedule.html)
  cannot succeed.
- EventBridge starts a scheduled rule's target on every tick, whether or not the last run ended
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-rule-schedule.html): a reconcile
  schedule shorter than the reconcile timeout makes runs overlap (or, with the reservation of 1,
  throttles every other tick).
- An event pattern has at most 2,048 characters ("Event pattern size", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import parse_config
from infra.replication import EVENT_PATTERN_MAX_CHARS
from tests.infra.conftest import EXAMPLE, render, resources, synth
from tests.infra.conftest import config_errors as _errors
from tests.infra.conftest import example_raw as _example
from tests.infra.test_event_patterns import matches
from tests.replication.events import parameter_store_change_event, put_parameter_event


def test_rotate_immediately_on_a_created_secret_is_refused() -> None:
    raw = _example()
    raw["rotation"]["secrets"][3]["rotateImmediatelyOnUpdate"] = True  # reports-app: created
    errors = _errors(raw)
    assert any(
        e.startswith("rotation.secrets[3].rotateImmediatelyOnUpdate: the stack creates this secret")
        for e in errors
    ), errors
    raw = _example()
    raw["rotation"]["secrets"][0]["rotateImmediatelyOnUpdate"] = True  # orders-app: existing
    parse_config(raw, source="test", base_dir=EXAMPLE.parent)


@pytest.mark.parametrize(
    ("schedule", "timeout", "refused"),
    [
        ("rate(5 minutes)", 900, True),
        ("rate(10 minutes)", 900, True),
        ("rate(15 minutes)", 900, False),
        ("rate(10 minutes)", 600, False),
        ("cron(0/5 * * * ? *)", 900, True),  # every 5 minutes
        ("cron(0,30 * * * ? *)", 900, False),
        ("cron(55 23 * * ? *)", 900, False),  # once a day
        ("cron(50,55 * * * ? *)", 900, True),  # 5 minutes apart
        ("cron(0 0,23 ? * MON *)", 900, False),
        ("cron(55 23,0 * * ? *)", 900, False),  # 23:55 and 00:55
        ("cron(58,59 23 * * ? *)", 120, True),
    ],
)
def test_reconcile_schedule_not_shorter_than_its_timeout(schedule: str, timeout: int, refused: bool) -> None:
    raw = _example()
    raw["replication"]["reconcileSchedule"] = schedule
    raw["replication"]["reconcileTimeoutSeconds"] = timeout
    if refused:
        errors = _errors(raw)
        assert any(
            e.startswith(f"replication.reconcileSchedule: {schedule!r} starts reconcile") for e in errors
        ), errors
    else:
        parse_config(raw, source="test", base_dir=EXAMPLE.parent)


def _change_rules(raw: dict[str, Any]) -> list[dict[str, Any]]:
    rules = resources(raw, "AWS::Events::Rule")
    return [
        render(r["Properties"]["EventPattern"]) for r in rules.values() if "EventPattern" in r["Properties"]
    ]


@pytest.mark.parametrize("event_source", ["cloudtrail", "parameter-store"])
def test_many_include_paths_split_the_rule(tmp_path: Path, event_source: str) -> None:
    raw = _example()
    paths = [f"/team-{i:02d}/service-configuration/" for i in range(12)]
    raw["replication"]["includePaths"] = paths
    raw["replication"]["excludePaths"] = []
    raw["replication"]["eventSource"] = event_source
    del raw["rotation"]
    out = synth(parse_config(raw, source="test", base_dir=EXAMPLE.parent), tmp_path)
    patterns = _change_rules(out.raw("ParameterReplication"))
    assert len(patterns) >= 2 or event_source == "parameter-store"
    for pattern in patterns:
        assert len(json.dumps(pattern, separators=(",", ":"))) <= EVENT_PATTERN_MAX_CHARS
    for path in paths:
        name = f"{path}db/url"
        event = (
            put_parameter_event(name)
            if event_source == "cloudtrail"
            else parameter_store_change_event(name, "Update")
        )
        assert sum(matches(p, event) for p in patterns) == 1, path  # exactly one rule: one invocation
    other = (
        put_parameter_event("/other/x")
        if event_source == "cloudtrail"
        else parameter_store_change_event("/other/x", "Update")
    )
    assert not any(matches(p, other) for p in patterns)


def test_the_construct_refuses_overlapping_reconcile_runs() -> None:
    """The same rule for ParameterReplicator used from another CDK app."""
    import aws_cdk as cdk
    from aws_cdk import Duration
    from aws_cdk import aws_events as events
    from aws_cdk import aws_lambda as lambda_

    from infra.replication import ParameterReplicator
    from tests.infra.conftest import NO_BUNDLING

    def build(schedule: str) -> None:
        app = cdk.App(context=NO_BUNDLING)
        stack = cdk.Stack(
            app, f"S{abs(hash(schedule))}", env=cdk.Environment(account="111122223333", region="eu-west-1")
        )
        ParameterReplicator(
            stack,
            "R",
            target_regions=["eu-central-1"],
            reconcile_schedule=events.Schedule.expression(schedule),
            reconcile_timeout=Duration.minutes(15),
            code=lambda_.Code.from_inline("x"),
        )

    with pytest.raises(ValueError, match="sooner than the reconcile timeout"):
        build("rate(10 minutes)")
    build("rate(15 minutes)")
