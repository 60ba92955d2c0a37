"""CloudFormation custom resource: puts a created secret's connection fields next to its password.

The stack creates each database secret with a generated ``{"password": ...}`` only, so that no
deploy ever regenerates the password (CloudFormation regenerates ``GenerateSecretString`` whenever
any of its properties changes). This function then writes the non-secret fields into the secret's
current value, keeping every other key (the password, and the user name the alternating strategy
switched to) as it is:

* ``Fields`` (JSON object): set on every Create/Update: engine, host, port, dbname, masterarn.
* ``RemoveFields`` (JSON list): keys removed on every Create/Update (e.g. a dbname no longer given).
* ``SeedFields`` (JSON object): set only when the key is absent (``username``: after the first
  rotation of an alternating secret it names ``<user>_clone``, and a deploy must not reset it).

Upgrading from a template that put the connection fields into ``GenerateSecretString``: the first
deploy of this one changes that property, and CloudFormation then generates a new password (a new
AWSCURRENT version holding ``{"password"}`` only) that the database never got. When this function
finds exactly that — a password-only AWSCURRENT whose AWSPREVIOUS is a full secret with a user name
— it merges the fields into that previous value (the password the database knows) and writes the
result as the new AWSCURRENT. A freshly created secret has no AWSPREVIOUS, so it is never affected.

A value that is already right is not written again. While a rotation is in progress (AWSPENDING on
another version) the update is refused with a clear reason: the deploy fails and can be retried. If a
rotation finishes between the read and the write, the write is repeated on the rotated version, so
the newest password is never replaced by an older one. Delete does nothing: the secret is retained.

Nothing secret is logged or returned: the response carries no data, and failure reasons name the
error only. Runs on the Lambda Python runtime (boto3 included); no third-party packages.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

MAX_ATTEMPTS = 3


class FieldsError(Exception):
    """A problem this function reports as the custom resource's failure reason (never secret)."""


def apply(props: dict[str, Any], client: Any) -> str:
    """Merge the fields into the secret's current value; returns ``updated`` or ``unchanged``."""
    secret_id = props["SecretId"]
    fields = _object(props.get("Fields", "{}"), "Fields")
    seed = _object(props.get("SeedFields", "{}"), "SeedFields")
    remove = _json(props.get("RemoveFields", "[]"), "RemoveFields")
    if not isinstance(remove, list) or not all(isinstance(k, str) for k in remove):
        raise FieldsError("RemoveFields is not a JSON list of names")
    if "password" in remove or "password" in fields or "password" in seed:
        raise FieldsError("the password is never written by this function")
    current, pending = _stages(client, secret_id)
    if pending is not None:
        raise FieldsError(
            "a rotation of the secret is in progress (AWSPENDING is on another version); "
            "deploy again after it completes"
        )
    restored = _full_secret_under_regenerated(client, secret_id, current)
    source, expected = restored or current, current
    for attempt in range(MAX_ATTEMPTS):
        data = _secret_object(client.get_secret_value(SecretId=secret_id, VersionId=source)["SecretString"])
        merged = dict(data)
        merged.update(fields)
        for key in remove:
            merged.pop(key, None)
        for key, field_value in seed.items():
            merged.setdefault(key, field_value)
        if attempt == 0 and merged == data and restored is None:
            return "unchanged"
        put = client.put_secret_value(
            SecretId=secret_id, SecretString=json.dumps(merged), VersionStages=["AWSCURRENT"]
        )
        # The version written must have displaced the one expected (the one read, then our own last
        # write). If another version became current in between (a rotation finished), that one holds
        # the password the database has: write again from it.
        displaced = _displaced(client, secret_id, put["VersionId"])
        if displaced == expected:
            return "restored the password the database knows; updated" if restored else "updated"
        if displaced is None:
            raise FieldsError("another write replaced the connection fields just written; deploy again")
        source, expected = displaced, put["VersionId"]
    raise FieldsError(
        f"the secret kept changing while its connection fields were written ({MAX_ATTEMPTS} tries)"
    )


def _stages(client: Any, secret_id: str) -> tuple[str, str | None]:
    versions = client.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    current = next((v for v, stages in versions.items() if "AWSCURRENT" in stages), None)
    if current is None:
        raise FieldsError("the secret has no AWSCURRENT version")
    pending = next((v for v, stages in versions.items() if "AWSPENDING" in stages and v != current), None)
    return current, pending


def _full_secret_under_regenerated(client: Any, secret_id: str, current: str) -> str | None:
    """The AWSPREVIOUS version to restore when a deploy regenerated an upgraded secret (module docstring)."""
    current_data = _secret_object(
        client.get_secret_value(SecretId=secret_id, VersionId=current)["SecretString"]
    )
    if set(current_data) != {"password"}:
        return None
    versions = client.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    previous = next((v for v, stages in versions.items() if "AWSPREVIOUS" in stages), None)
    if previous is None:
        return None
    try:
        previous_data = _secret_object(
            client.get_secret_value(SecretId=secret_id, VersionId=previous)["SecretString"]
        )
    except FieldsError:
        return None
    return previous if isinstance(previous_data.get("username"), str) else None


def _displaced(client: Any, secret_id: str, written: str) -> str | None:
    """The version that ``written`` replaced as AWSCURRENT (now AWSPREVIOUS); None if it is not current."""
    versions = client.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    if "AWSCURRENT" not in versions.get(written, []):
        return None  # another write already replaced ours
    return next((v for v, stages in versions.items() if "AWSPREVIOUS" in stages), None)


def _json(raw: Any, name: str) -> Any:
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise FieldsError(f"{name} is not JSON") from None


def _object(raw: Any, name: str) -> dict[str, Any]:
    value = _json(raw, name)
    if not isinstance(value, dict):
        raise FieldsError(f"{name} is not a JSON object")
    return value


def _secret_object(value: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except ValueError:
        data = None  # the decoder's message could quote the value: never pass it on
    if not isinstance(data, dict):
        raise FieldsError("the secret's current value is not a JSON object")
    if "password" not in data:
        raise FieldsError("the secret's current value has no password")
    return data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FieldsError):
        return str(exc)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name} failed: {error.get('Code', 'error')}"
    return f"unexpected {type(exc).__name__}"


def _send(url: str, body: bytes) -> None:
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's pre-signed https URL
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


def handler(
    event: dict[str, Any],
    context: Any,
    client: Any = None,
    send: Callable[[str, bytes], None] = _send,
) -> dict[str, Any]:
    props = event.get("ResourceProperties", {})
    physical_id = event.get("PhysicalResourceId") or f"{props.get('SecretId', 'secret')}|connection-fields"
    status, reason = "SUCCESS", "deleted: the secret is retained"
    try:
        if event["RequestType"] in ("Create", "Update"):
            reason = apply(props, client or boto3.client("secretsmanager"))
    except Exception as exc:
        status, reason = "FAILED", _reason(exc)
    response = {
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "Data": {},
    }
    print(json.dumps({"requestType": event.get("RequestType"), "status": status, "reason": reason}))
    send(event["ResponseURL"], json.dumps(response).encode())
    return response
