"""EventBridge "AWS API Call via CloudTrail" events for SSM calls, built from the real call.

moto emits no CloudTrail records, so the local run makes each Parameter Store call with boto3
and builds the event CloudTrail would deliver for it (eventVersion 1.08): request parameters
in CloudTrail's camelCase with the value hidden, response elements from the actual response.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
_NOT_RECORDED = {"ResponseMetadata"}


def _camel(key: str) -> str:
    return key[:1].lower() + key[1:]


def _cloudtrail_shape(value: Any) -> Any:
    """boto3 request/response shape -> CloudTrail's (camelCase keys, recursively)."""
    if isinstance(value, dict):
        return {_camel(k): _cloudtrail_shape(v) for k, v in value.items() if k not in _NOT_RECORDED}
    if isinstance(value, list):
        return [_cloudtrail_shape(v) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%b %d, %Y, %I:%M:%S %p")
    return value


def request_parameters(kwargs: dict[str, Any]) -> dict[str, Any]:
    params = _cloudtrail_shape(kwargs)
    if "value" in params:
        params["value"] = HIDDEN
    return params


def user_identity(caller_arn: str, account: str) -> dict[str, Any]:
    """``userIdentity`` for an IAM user (what moto's GetCallerIdentity reports)."""
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLELOCALRUN",
        "arn": caller_arn,
        "accountId": account,
        "accessKeyId": "AKIAEXAMPLELOCALRUN",
        "userName": caller_arn.rsplit("/", 1)[-1],
    }


def cloudtrail_event(
    event_name: str,
    request: dict[str, Any],
    response: dict[str, Any] | None,
    *,
    region: str,
    account: str,
    caller_arn: str,
) -> dict[str, Any]:
    """The EventBridge event for one successful ``ssm:<event_name>`` call."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    detail: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": user_identity(caller_arn, account),
        "eventTime": now,
        "eventSource": "ssm.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "localrun/boto3",
        "requestParameters": request_parameters(request),
        "responseElements": _cloudtrail_shape(response) or None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ssm",
        "account": account,
        "time": now,
        "region": region,
        "resources": [],
        "detail": detail,
    }
