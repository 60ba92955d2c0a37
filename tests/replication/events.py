"""Hand-built EventBridge events in the documented shapes (reusable, e.g. for the CDK rule tests).

* ``cloudtrail_event`` - detail-type "AWS API Call via CloudTrail", source ``aws.ssm``: the
  CloudTrail record (eventVersion 1.08) in ``detail``; values appear as
  ``HIDDEN_DUE_TO_SECURITY_REASONS``, failed calls carry ``errorCode``/``errorMessage``.
* ``parameter_store_change_event`` - detail-type "Parameter Store Change": ``detail`` has
  ``operation`` (Create | Update | Delete | LabelParameterVersion), ``name``, ``type``,
  ``description``.

Import as ``from tests.replication.events import cloudtrail_event`` (repo root on sys.path).
"""

from __future__ import annotations

import uuid
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
DEFAULT_USER_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/DeployRole/alice"
TIME = "2026-11-25T12:00:00Z"


def assumed_role_arn(role_name: str, session: str = "session", account: str = ACCOUNT) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"


def role_arn(role_name: str, account: str = ACCOUNT, path: str = "/") -> str:
    return f"arn:aws:iam::{account}:role{path}{role_name}"


def parameter_arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def user_identity(user_arn: str = DEFAULT_USER_ARN, issuer_arn: str | None = None) -> dict[str, Any]:
    """CloudTrail ``userIdentity`` for an assumed-role session (or an IAM user ARN)."""
    parts = user_arn.split(":")
    account = parts[4]
    if ":assumed-role/" in user_arn:
        role_name, session = user_arn.split(":assumed-role/", 1)[1].split("/", 1)
        return {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLEID:{session}",
            "arn": user_arn,
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLEKEY",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLEID",
                    "arn": issuer_arn or role_arn(role_name, account),
                    "accountId": account,
                    "userName": role_name,
                },
                "webIdFederationData": {},
                "attributes": {"creationDate": TIME, "mfaAuthenticated": "false"},
            },
        }
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEID",
        "arn": user_arn,
        "accountId": account,
        "accessKeyId": "AKIAEXAMPLEKEY",
        "userName": user_arn.rsplit("/", 1)[-1],
    }


def cloudtrail_event(
    event_name: str,
    request_parameters: dict[str, Any] | None,
    error_code: str | None = None,
    user_arn: str = DEFAULT_USER_ARN,
    *,
    region: str = REGION,
    response_elements: dict[str, Any] | None = None,
    issuer_arn: str | None = None,
) -> dict[str, Any]:
    """EventBridge event for an SSM API call recorded by CloudTrail."""
    detail: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": user_identity(user_arn, issuer_arn),
        "eventTime": TIME,
        "eventSource": "ssm.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": request_parameters,
        "responseElements": None if error_code else response_elements,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": user_arn.split(":")[4],
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "clientProvidedHostHeader": f"ssm.{region}.amazonaws.com"},
    }
    if error_code:
        detail["errorCode"] = error_code
        detail["errorMessage"] = f"{error_code}: the call failed"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ssm",
        "account": user_arn.split(":")[4],
        "time": TIME,
        "region": region,
        "resources": [],
        "detail": detail,
    }


def parameter_store_change_event(
    name: str,
    operation: str,
    *,
    region: str = REGION,
    type_: str = "String",
    description: str | None = None,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """The native "Parameter Store Change" event (no caller identity, no value)."""
    detail: dict[str, Any] = {"operation": operation, "name": name, "type": type_}
    if description is not None:
        detail["description"] = description
    if labels is not None:
        detail["labels"] = labels
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Parameter Store Change",
        "source": "aws.ssm",
        "account": ACCOUNT,
        "time": TIME,
        "region": region,
        "resources": [parameter_arn(name, region)],
        "detail": detail,
    }


# -- per-API shortcuts (requestParameters / responseElements as CloudTrail records them) ------


def put_parameter_event(
    name: str, type_: str = "String", overwrite: bool = False, version: int = 1, **kw: Any
) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "type": type_, "value": HIDDEN, "overwrite": overwrite}
    if type_ == "SecureString":
        params["keyId"] = "alias/aws/ssm"
    return cloudtrail_event(
        "PutParameter", params, response_elements={"version": version, "tier": "Standard"}, **kw
    )


def delete_parameter_event(name: str, **kw: Any) -> dict[str, Any]:
    return cloudtrail_event("DeleteParameter", {"name": name}, **kw)


def delete_parameters_event(names: list[str], **kw: Any) -> dict[str, Any]:
    return cloudtrail_event(
        "DeleteParameters",
        {"names": names},
        response_elements={"deletedParameters": names, "invalidParameters": []},
        **kw,
    )


def label_event(name: str, version: int, labels: list[str], **kw: Any) -> dict[str, Any]:
    return cloudtrail_event(
        "LabelParameterVersion",
        {"name": name, "parameterVersion": version, "labels": labels},
        response_elements={"invalidLabels": [], "parameterVersion": version},
        **kw,
    )


def unlabel_event(name: str, version: int, labels: list[str], **kw: Any) -> dict[str, Any]:
    return cloudtrail_event(
        "UnlabelParameterVersion",
        {"name": name, "parameterVersion": version, "labels": labels},
        response_elements={"removedLabels": labels, "invalidLabels": []},
        **kw,
    )


def add_tags_event(resource_id: str, tags: dict[str, str], **kw: Any) -> dict[str, Any]:
    return cloudtrail_event(
        "AddTagsToResource",
        {
            "resourceType": "Parameter",
            "resourceId": resource_id,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        },
        **kw,
    )


def remove_tags_event(resource_id: str, keys: list[str], **kw: Any) -> dict[str, Any]:
    return cloudtrail_event(
        "RemoveTagsFromResource",
        {"resourceType": "Parameter", "resourceId": resource_id, "tagKeys": keys},
        **kw,
    )


#: Role name the tests give the replicator (REPLICATOR_ROLE_ARN = role_arn(ROLE_NAME_REPLICATOR)).
ROLE_NAME_REPLICATOR = "ssm-replicator-role"
