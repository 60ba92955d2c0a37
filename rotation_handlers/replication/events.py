"""Turn an EventBridge event into the parameter names to sync, or a reason to ignore it.

An event is only a trigger: nothing in it (CloudTrail shows ``HIDDEN_DUE_TO_SECURITY_REASONS``
for values) is copied. The replicator re-reads the source and converges the targets on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
CHANGE_DETAIL_TYPE = "Parameter Store Change"

#: CloudTrail event names handled (matched case-insensitively).
CLOUDTRAIL_EVENT_NAMES = (
    "PutParameter",
    "DeleteParameter",
    "DeleteParameters",
    "LabelParameterVersion",
    "UnlabelParameterVersion",
    "AddTagsToResource",
    "RemoveTagsFromResource",
)
#: "Parameter Store Change" operations handled (matched case-insensitively).
CHANGE_OPERATIONS = ("Create", "Update", "Delete", "LabelParameterVersion")

_LOWER_EVENT_NAMES = {name.lower(): name for name in CLOUDTRAIL_EVENT_NAMES}
_LOWER_OPERATIONS = {op.lower(): op for op in CHANGE_OPERATIONS}
_PARAM_ARN_RE = re.compile(r"^arn:aws[a-z-]*:ssm:[a-z0-9-]*:\d*:parameter/(?P<rest>.+)$")
_ASSUMED_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/(?:.*/)?(?P<role>[^/]+)$")


@dataclass(frozen=True)
class RoleIdentity:
    """The replicator's own IAM role: matched against the caller of each CloudTrail event."""

    account: str
    role_name: str
    role_arn: str | None = None

    @classmethod
    def from_role_arn(cls, arn: str) -> RoleIdentity | None:
        match = _ROLE_ARN_RE.match(arn)
        return cls(match["account"], match["role"], arn) if match else None

    @classmethod
    def from_assumed_role_arn(cls, arn: str) -> RoleIdentity | None:
        match = _ASSUMED_ROLE_RE.match(arn)
        return cls(match["account"], match["role"]) if match else None


@dataclass(frozen=True)
class Trigger:
    """What an event asks for: candidate parameter names, or ``ignored`` with a reason."""

    source: str  # "cloudtrail" | "parameter-store-change" | "unknown"
    operation: str
    names: tuple[str, ...] = ()
    ignored: str | None = None


def parameter_names(value: str) -> list[str]:
    """Candidate parameter names for a name or ARN as it appears in an event.

    * ``arn:...:parameter/a/b`` -> ``/a/b`` (hierarchical names always start with ``/``).
    * ``arn:...:parameter/foo`` -> ``foo`` and ``/foo`` (the ARN does not say which exists;
      syncing both is harmless because a name missing in the source only deletes replicas).
    * ``a/b`` -> ``/a/b``; ``/a/b`` and ``foo`` unchanged.
    """
    value = value.strip()
    if not value:
        return []
    match = _PARAM_ARN_RE.match(value)
    if match:
        rest = match["rest"]
        if rest.startswith("/"):
            return [rest]
        return ["/" + rest] if "/" in rest else [rest, "/" + rest]
    if "/" in value and not value.startswith("/"):
        return ["/" + value]
    return [value]


def _names(values: Iterable[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        if isinstance(value, str):
            out.extend(parameter_names(value))
    return tuple(dict.fromkeys(out))


def is_own_call(detail: Mapping[str, Any], own: RoleIdentity | None) -> bool:
    """True if the CloudTrail call was made by the replicator's role (its session or the role)."""
    if own is None:
        return False
    identity = detail.get("userIdentity") or {}
    issuer = ((identity.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
    if isinstance(issuer, str) and issuer:
        if own.role_arn is not None and issuer == own.role_arn:
            return True
        parsed = RoleIdentity.from_role_arn(issuer)
        if parsed and (parsed.account, parsed.role_name) == (own.account, own.role_name):
            return True
    arn = identity.get("arn")
    if isinstance(arn, str):
        parsed = RoleIdentity.from_assumed_role_arn(arn)
        if parsed and (parsed.account, parsed.role_name) == (own.account, own.role_name):
            return True
    return False


def _cloudtrail(event: Mapping[str, Any], source_region: str, own: RoleIdentity | None) -> Trigger:
    detail = event.get("detail") or {}
    raw_name = str(detail.get("eventName") or "")
    operation = _LOWER_EVENT_NAMES.get(raw_name.lower())
    if operation is None:
        return Trigger("cloudtrail", raw_name, ignored="unsupported-event-name")
    if detail.get("errorCode"):
        return Trigger("cloudtrail", operation, ignored="failed-call")
    region = detail.get("awsRegion") or event.get("region")
    if region and region != source_region:
        return Trigger("cloudtrail", operation, ignored="other-region")
    if is_own_call(detail, own):
        return Trigger("cloudtrail", operation, ignored="own-call")
    params = detail.get("requestParameters") or {}
    if operation in ("AddTagsToResource", "RemoveTagsFromResource"):
        if str(params.get("resourceType") or "").lower() != "parameter":
            return Trigger("cloudtrail", operation, ignored="not-a-parameter-resource")
        names = _names([params.get("resourceId")])
    elif operation == "DeleteParameters":
        names = _names(params.get("names") or [])
    else:
        names = _names([params.get("name")])
    if not names:  # fall back to the ARNs EventBridge lists, if any
        names = _names(event.get("resources") or [])
    if not names:
        return Trigger("cloudtrail", operation, ignored="no-parameter-name")
    return Trigger("cloudtrail", operation, names)


def _change(event: Mapping[str, Any], source_region: str) -> Trigger:
    detail = event.get("detail") or {}
    raw_op = str(detail.get("operation") or "")
    operation = _LOWER_OPERATIONS.get(raw_op.lower())
    if operation is None:
        return Trigger("parameter-store-change", raw_op, ignored="unsupported-operation")
    region = event.get("region")
    if region and region != source_region:
        return Trigger("parameter-store-change", operation, ignored="other-region")
    names = _names([detail.get("name")]) or _names(event.get("resources") or [])
    if not names:
        return Trigger("parameter-store-change", operation, ignored="no-parameter-name")
    return Trigger("parameter-store-change", operation, names)


def event_time(event: Any) -> float | None:
    """The event's ``time`` (when the change happened; for CloudTrail events, the API call) in epoch
    seconds, or None. EventBridge event structure: https://docs.aws.amazon.com/eventbridge/latest/
    ref/overiew-event-structure.html ("time": ISO 8601, e.g. ``2026-12-05T18:00:00Z``)."""
    raw = event.get("time") if isinstance(event, Mapping) else None
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else None


def parse_event(event: Any, source_region: str, own: RoleIdentity | None = None) -> Trigger:
    """Classify one EventBridge event (see module docstring)."""
    if not isinstance(event, Mapping) or event.get("source") != "aws.ssm":
        return Trigger("unknown", "", ignored="not-an-aws.ssm-event")
    detail_type = event.get("detail-type")
    if detail_type == CLOUDTRAIL_DETAIL_TYPE:
        return _cloudtrail(event, source_region, own)
    if detail_type == CHANGE_DETAIL_TYPE:
        return _change(event, source_region)
    return Trigger("unknown", str(detail_type), ignored="unsupported-detail-type")
