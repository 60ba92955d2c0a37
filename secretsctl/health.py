"""Rotation health of one secret, from its metadata (DescribeSecret/ListSecrets) and, when reachable,
its rotation function's CloudWatch Logs.

Findings and the AWS Security Hub controls they correspond to
(https://docs.aws.amazon.com/securityhub/latest/userguide/secretsmanager-controls.html):

- ``disabled``: automatic rotation is off (SecretsManager.1).
- ``never``: rotation is on but the secret was never rotated.
- ``overdue``: the last rotation is older than the schedule plus its window, or than ``max_age_days``
  (SecretsManager.4, "rotated within a specified number of days", default 90).
- ``stale``: AWSPENDING sits on a version that is not AWSCURRENT, so RotateSecret fails with
  "A previous rotation isn't complete" until it is removed (``secretsctl unstick``).
- ``failing``: the rotation function logged a failure for the unfinished version (SecretsManager.2,
  "should rotate successfully"); only reported when its log group can be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .inventory import SecretInfo

FINDINGS = ("disabled", "never", "overdue", "stale", "failing")
CONTROLS = {"disabled": "SecretsManager.1", "overdue": "SecretsManager.4", "failing": "SecretsManager.2"}
DEFAULT_MAX_AGE_DAYS = 90
#: Without a Duration, a rotation window closes at the end of the day it opened (at most 24 hours).
DEFAULT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str

    @property
    def control(self) -> str | None:
        return CONTROLS.get(self.kind)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "control": self.control, "detail": self.detail}


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _window(rules: dict[str, Any]) -> timedelta:
    match = re.fullmatch(r"(\d+)h", str(rules.get("Duration") or ""))
    return timedelta(hours=int(match.group(1))) if match else DEFAULT_WINDOW


def _days(rules: dict[str, Any]) -> int | None:
    if rules.get("AutomaticallyAfterDays"):
        return int(rules["AutomaticallyAfterDays"])
    match = re.fullmatch(r"rate\((\d+) days?\)", str(rules.get("ScheduleExpression") or ""))
    return int(match.group(1)) if match else None


def due_date(info: SecretInfo) -> datetime | None:
    """When the next rotation should have happened: NextRotationDate, else last rotation + interval."""
    if info.next_rotation is not None:
        return _aware(info.next_rotation)
    days = _days(info.rotation_rules)
    base = _aware(info.last_rotated or info.created)
    return base + timedelta(days=days) if days and base else None


def assess(
    info: SecretInfo,
    now: datetime | None = None,
    max_age_days: int = DEFAULT_MAX_AGE_DAYS,
    failed_lines: list[str] | None = None,
) -> list[Finding]:
    """The findings for one secret. ``failed_lines``: the function's error lines for the unfinished
    version (``None`` when the logs could not be read)."""
    now = now or datetime.now(UTC)
    found: list[Finding] = []
    last = _aware(info.last_rotated)
    if not info.rotation_enabled:
        found.append(Finding("disabled", "automatic rotation is not enabled"))
    elif last is None:
        found.append(Finding("never", "rotation is enabled but the secret has never been rotated"))
    age_base = last or _aware(info.created) or _aware(info.last_changed)
    if age_base is not None and now - age_base > timedelta(days=max_age_days):
        what = "last rotated" if last else "created"
        found.append(
            Finding("overdue", f"{what} {(now - age_base).days} days ago (more than {max_age_days} days)")
        )
    elif info.rotation_enabled:
        due = due_date(info)
        if due is not None and now > due + _window(info.rotation_rules):
            found.append(
                Finding("overdue", f"rotation was due {due:%Y-%m-%d %H:%M} UTC and has not happened")
            )
    pending = info.stale_pending
    if pending is not None:
        found.append(
            Finding(
                "stale",
                f"AWSPENDING is on version {pending}, not on AWSCURRENT: RotateSecret will fail with "
                "'A previous rotation isn't complete' (secretsctl unstick)",
            )
        )
        if failed_lines:
            found.append(Finding("failing", f"the rotation of version {pending} failed: {failed_lines[-1]}"))
    return found


def summary(findings: list[Finding]) -> str:
    return ", ".join(f.kind for f in findings) or "ok"
