"""Health findings from secret metadata (pure functions; the rotation tests cover them over HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from secretsctl.function_logs import log_group
from secretsctl.health import assess
from secretsctl.inventory import SecretInfo

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def info(**kw) -> SecretInfo:
    base = {
        "Name": "s",
        "ARN": "arn:s",
        "RotationEnabled": True,
        "RotationRules": {"AutomaticallyAfterDays": 30},
        "CreatedDate": NOW - timedelta(days=10),
        "VersionIdsToStages": {"v1": ["AWSCURRENT"]},
    }
    return SecretInfo.from_api(base | kw)


def kinds(i: SecretInfo, **kw) -> list[str]:
    return [f.kind for f in assess(i, now=NOW, **kw)]


def test_disabled_never_and_healthy() -> None:
    assert kinds(info(RotationEnabled=False)) == ["disabled"]
    assert kinds(info()) == ["never"]
    assert (
        kinds(info(LastRotatedDate=NOW - timedelta(days=3), NextRotationDate=NOW + timedelta(days=27))) == []
    )


def test_overdue_against_schedule_window_and_max_age() -> None:
    late = info(LastRotatedDate=NOW - timedelta(days=32), NextRotationDate=NOW - timedelta(days=2))
    assert kinds(late) == ["overdue"]
    within_window = info(
        LastRotatedDate=NOW - timedelta(days=30, hours=2),
        NextRotationDate=NOW - timedelta(hours=2),
        RotationRules={"AutomaticallyAfterDays": 30, "Duration": "4h"},
    )
    assert kinds(within_window) == []
    old = info(RotationEnabled=False, CreatedDate=NOW - timedelta(days=200))
    assert kinds(old) == ["disabled", "overdue"]
    assert kinds(old, max_age_days=365) == ["disabled"]
    # no NextRotationDate: last rotation + rate(N days)
    rate = info(
        LastRotatedDate=NOW - timedelta(days=12), RotationRules={"ScheduleExpression": "rate(10 days)"}
    )
    assert kinds(rate) == ["overdue"]


def test_stale_pending_and_failing() -> None:
    stale = info(
        LastRotatedDate=NOW - timedelta(days=1),
        VersionIdsToStages={"v1": ["AWSCURRENT"], "v2": ["AWSPENDING"], "v0": []},
    )
    assert kinds(stale) == ["stale"]
    assert kinds(stale, failed_lines=["setSecret failed: boom"]) == ["stale", "failing"]
    on_current = info(
        LastRotatedDate=NOW - timedelta(days=1), VersionIdsToStages={"v1": ["AWSCURRENT", "AWSPENDING"]}
    )
    assert kinds(on_current) == []


def test_log_group_of_function_arn() -> None:
    assert log_group("arn:aws:lambda:eu-west-1:123456789012:function:rot-fn") == "/aws/lambda/rot-fn"
    assert log_group("arn:aws:lambda:eu-west-1:123456789012:function:rot-fn:live") == "/aws/lambda/rot-fn"
