"""``secretsctl audit NAME``: who changed a secret or a parameter, from CloudTrail's event history.

CloudTrail's event history (``LookupEvents``) covers management events of the last 90 days in
one region, without any trail (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/view-cloudtrail-events.html);
older events exist only in a trail's S3 bucket. ``LookupEvents`` is limited to 2 requests per
second per account and region (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html),
so pages are fetched one at a time. Only who, when, what and from where are shown: request
parameters are never printed (a PutParameter of a String parameter records its value there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

MAX_DAYS = 90
_SINCE_RE = re.compile(r"^(\d+)([dhm])$")
_UNAVAILABLE = {"UnknownOperationException", "InvalidAction", "NotImplemented", "404", "501"}


class AuditUnavailableError(RuntimeError):
    """The endpoint does not offer CloudTrail's event history."""


@dataclass(frozen=True)
class Event:
    time: datetime
    name: str
    user: str
    source_ip: str
    error: str
    event_id: str
    read_only: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "event": self.name,
            "user": self.user,
            "sourceIp": self.source_ip,
            "error": self.error or None,
            "readOnly": self.read_only,
            "eventId": self.event_id,
        }


def parse_since(text: str, now: datetime | None = None) -> tuple[datetime, bool]:
    """``30d`` / ``12h`` / ``45m`` -> (start time, clamped to 90 days?)."""
    match = _SINCE_RE.match(text.strip())
    if not match:
        raise ValueError(f"--since must look like 30d, 12h or 45m, got {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[unit]
    now = now or datetime.now(UTC)
    limit = timedelta(days=MAX_DAYS)
    return (now - min(delta, limit), delta > limit)


def _event(raw: dict[str, Any]) -> Event:
    detail: dict[str, Any] = {}
    try:
        detail = json.loads(raw.get("CloudTrailEvent") or "{}")
    except ValueError:
        detail = {}
    identity = detail.get("userIdentity") or {}
    user = identity.get("arn") or raw.get("Username") or identity.get("invokedBy") or "unknown"
    return Event(
        time=raw["EventTime"],
        name=raw.get("EventName", ""),
        user=user,
        source_ip=str(detail.get("sourceIPAddress") or ""),
        error=str(detail.get("errorCode") or ""),
        event_id=raw.get("EventId", ""),
        read_only=str(raw.get("ReadOnly", detail.get("readOnly", ""))).lower() == "true",
    )


def _lookup(cloudtrail: Any, resource: str, start: datetime) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": resource}],
        "StartTime": start,
        "MaxResults": 50,
    }
    while True:
        try:
            page = cloudtrail.lookup_events(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            # An emulator without CloudTrail (moto) answers with an HTML error page, not an AWS error.
            html = "<html" in str(error.get("Message", "")).lower()
            if error.get("Code") in _UNAVAILABLE or status in _UNAVAILABLE or html:
                code = error.get("Code") or status
                raise AuditUnavailableError(f"LookupEvents is not offered here ({code})") from None
            raise
        except BotoCoreError as exc:  # e.g. an emulator answering with something that is not CloudTrail
            raise AuditUnavailableError(f"LookupEvents is not offered here ({type(exc).__name__})") from None
        yield from page.get("Events") or []
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def events(
    cloudtrail: Any, resources: list[str], start: datetime, *, include_reads: bool = False
) -> list[Event]:
    """Events that name any of ``resources`` (a name, and for a secret also its ARN), newest first."""
    seen: dict[str, Event] = {}
    for resource in dict.fromkeys(resources):
        for raw in _lookup(cloudtrail, resource, start):
            event = _event(raw)
            if event.read_only and not include_reads:
                continue
            seen[event.event_id or f"{resource}:{len(seen)}"] = event
    return sorted(seen.values(), key=lambda e: e.time, reverse=True)
