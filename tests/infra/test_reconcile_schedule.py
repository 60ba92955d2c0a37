"""The reconcile schedule's target: retried, then parked in the dead-letter queue (nothing lost silently).

Resources are found by what they are (the function by its handler, the rule by its target, the
queue by the rule's DeadLetterConfig), not by construct ids.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import render, resources

RECONCILE_HANDLER = "rotation_handlers.replicate.reconcile_handler"


def reconcile_rule(raw: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(logical id, the single target) of the scheduled rule that invokes the reconcile function."""
    (fn,) = [
        lid
        for lid, res in resources(raw, "AWS::Lambda::Function").items()
        if res["Properties"].get("Handler") == RECONCILE_HANDLER
    ]
    found = [
        (lid, target)
        for lid, res in resources(raw, "AWS::Events::Rule").items()
        for target in render(res["Properties"].get("Targets", []))
        if target["Arn"] == f"<{fn}.Arn>"
    ]
    ((rule, target),) = found
    assert "ScheduleExpression" in raw["Resources"][rule]["Properties"]
    return rule, target


@pytest.mark.parametrize("stack", ["example", "minimal"])
def test_reconcile_target_has_a_retry_policy_and_the_dead_letter_queue(
    stack: str, request: pytest.FixtureRequest
) -> None:
    raw = request.getfixturevalue(stack).raw("ParameterReplication")
    rule, target = reconcile_rule(raw)

    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2}
    queue_arn = target["DeadLetterConfig"]["Arn"]
    queue = queue_arn.removeprefix("<").removesuffix(".Arn>")
    assert queue in resources(raw, "AWS::SQS::Queue"), queue_arn
    # The dead-letter queue the replication events use too (one queue to watch and alarm on).
    change_targets = [
        t
        for lid, res in resources(raw, "AWS::Events::Rule").items()
        if lid != rule
        for t in render(res["Properties"].get("Targets", []))
    ]
    assert change_targets and all(t["DeadLetterConfig"]["Arn"] == queue_arn for t in change_targets)

    # EventBridge may write to it on this rule's behalf (without this the queue stays empty).
    allowed = [
        (statement["Action"], statement["Resource"], statement.get("Condition"))
        for res in resources(raw, "AWS::SQS::QueuePolicy").values()
        if render(res["Properties"]["Queues"]) == [f"<{queue}>"]
        for statement in render(res["Properties"]["PolicyDocument"]["Statement"])
        if statement["Effect"] == "Allow"
        and statement.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    assert ("sqs:SendMessage", queue_arn, {"ArnEquals": {"aws:SourceArn": f"<{rule}.Arn>"}}) in allowed
