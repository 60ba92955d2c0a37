"""``secretsctl audit``: skipped cleanly where CloudTrail is absent; events shown without request data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from secretsctl import audit
from tests.cli.params_support import param_run  # noqa: F401

pytestmark = pytest.mark.usefixtures("param_run")


def test_audit_is_skipped_cleanly_where_cloudtrail_is_not_offered(run) -> None:
    """moto 5.2.5's server does not implement LookupEvents (it answers with an HTML error page)."""
    result = run.run("audit", "/some/parameter")
    assert "audit skipped: CloudTrail event history is not available here" in result.stderr
    assert "Traceback" not in result.stderr
    doc = run.json("audit", "/some/parameter", "--since", "7d")
    assert doc["kind"] == "Audit" and doc["available"] is False and doc["events"] == []


def test_since_is_validated_and_clamped_to_ninety_days(run) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert audit.parse_since("30d", now) == (now - timedelta(days=30), False)
    assert audit.parse_since("12h", now) == (now - timedelta(hours=12), False)
    assert audit.parse_since("400d", now) == (now - timedelta(days=90), True)
    with pytest.raises(ValueError, match="30d, 12h or 45m"):
        audit.parse_since("soon")
    assert "--since" in run.run("audit", "x", "--since", "soon", expect=2).stderr


def _event(event_id: str, name: str, when: datetime, read_only: bool, request: dict) -> dict:
    """One LookupEvents entry, shaped as in the CloudTrail API reference (Event, CloudTrailEvent JSON)."""
    detail = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/ops/alice"},
        "eventTime": when.isoformat(),
        "eventSource": "ssm.amazonaws.com",
        "eventName": name,
        "sourceIPAddress": "198.51.100.7",
        "requestParameters": request,
        "readOnly": read_only,
    }
    return {
        "EventId": event_id,
        "EventName": name,
        "ReadOnly": "true" if read_only else "false",
        "EventTime": when,
        "EventSource": "ssm.amazonaws.com",
        "Username": "alice",
        "Resources": [{"ResourceType": "AWS::SSM::Parameter", "ResourceName": "/app/orders/db-host"}],
        "CloudTrailEvent": json.dumps(detail),
    }


def test_events_show_who_and_when_never_request_parameters() -> None:
    client = boto3.client("cloudtrail", region_name="us-east-1")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    t1, t2 = start + timedelta(days=1), start + timedelta(days=2)
    value = "orders-db-value-9f3c"  # a String parameter's value, as CloudTrail records it
    page1 = {
        "Events": [_event("e1", "PutParameter", t1, False, {"name": "/app/orders/db-host", "value": value})],
        "NextToken": "more",
    }
    page2 = {"Events": [_event("e2", "GetParameter", t2, True, {"name": "/app/orders/db-host"})]}
    expected = {
        "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": "/app/orders/db-host"}],
        "StartTime": start,
        "MaxResults": 50,
    }
    with Stubber(client) as stub:
        stub.add_response("lookup_events", page1, expected)
        stub.add_response("lookup_events", page2, {**expected, "NextToken": "more"})
        found = audit.events(client, ["/app/orders/db-host"], start)
    assert [(e.name, e.user, e.source_ip) for e in found] == [
        ("PutParameter", "arn:aws:sts::123456789012:assumed-role/ops/alice", "198.51.100.7")
    ]  # the read was left out
    assert value not in json.dumps([e.as_json() for e in found])
