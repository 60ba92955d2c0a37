"""The connection-fields custom resource against emulated Secrets Manager (moto): the generated
password is kept, the user name is seeded once, a rotation is never undone, nothing secret leaks."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from infra.secret_fields_handler import index
from tests.infra.secrets_manager_as_aws import labels_as_aws_documents  # noqa: F401 - autouse fixture

REGION = "eu-west-1"
PASSWORD = "Generated-Pass-0123456789abcdefXY"
ROTATED = "Rotated-Pass-9876543210zyxwvutsRQ"
FIELDS = {"engine": "postgres", "host": "db.internal", "port": 5432, "dbname": "app"}


@pytest.fixture(autouse=True)
def fake_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiting for a rotation advances a counter, not the wall clock."""
    now = [0.0]
    monkeypatch.setattr(index, "_monotonic", lambda: now[0])
    monkeypatch.setattr(index, "_sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))


def apply(props: dict[str, str], sm: Any, request_type: str = "Create") -> str:
    """One request through the handler; its reason, or FieldsError with it."""
    event = {**_event(request_type, props), "OldResourceProperties": props}
    response = index.handler(event, None, client=sm, send=lambda _u, _b: None)
    if response["Status"] != "SUCCESS":
        raise index.FieldsError(response["Reason"])
    return str(response["Reason"])


def _created(sm: Any) -> str:
    """As CloudFormation creates it: the generated password only."""
    return sm.create_secret(Name="prod/app", SecretString=json.dumps({"password": PASSWORD}))["ARN"]


def _props(arn: str, fields: dict[str, Any] | None = None, remove: list[str] | None = None) -> dict[str, str]:
    return {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:fields",
        "SecretId": arn,
        "Fields": json.dumps(fields or FIELDS),
        "RemoveFields": json.dumps(remove or []),
        "SeedFields": json.dumps({"username": "app"}),
    }


def _current(sm: Any, arn: str) -> dict[str, Any]:
    return json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])


def _event(request_type: str, props: dict[str, str]) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/presigned",
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1",
        "RequestId": "r-1",
        "LogicalResourceId": "Fields",
        "ResourceProperties": props,
    }


def test_create_adds_fields_and_keeps_the_password(sm: Any) -> None:
    arn = _created(sm)
    assert apply(_props(arn), sm) == "updated"
    assert _current(sm, arn) == {"password": PASSWORD, "username": "app", **FIELDS}
    assert apply(_props(arn), sm) == "unchanged"  # idempotent: no new version
    versions = sm.list_secret_version_ids(SecretId=arn)["Versions"]
    assert len(versions) == 2


def test_update_changes_fields_never_the_password_nor_a_switched_username(sm: Any) -> None:
    arn = _created(sm)
    apply(_props(arn), sm)
    # The alternating strategy has switched the secret to the clone user, with a rotated password.
    sm.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps({**_current(sm, arn), "username": "app_clone", "password": ROTATED}),
    )
    moved = {"engine": "postgres", "host": "db2.internal", "port": 6543}
    assert apply(_props(arn, moved, remove=["dbname"]), sm) == "updated"
    assert _current(sm, arn) == {"password": ROTATED, "username": "app_clone", **moved}


def test_refused_while_a_rotation_is_in_progress(sm: Any) -> None:
    arn = _created(sm)
    sm.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"password": ROTATED}), VersionStages=["AWSPENDING"]
    )
    with pytest.raises(index.FieldsError, match="rotation of the secret is in progress"):
        apply(_props(arn), sm)
    assert _current(sm, arn) == {"password": PASSWORD}  # untouched


def test_a_rotation_finishing_mid_write_is_not_undone(sm: Any) -> None:
    """finishSecret lands between the read and the write: the write is redone on the rotated value."""
    arn = _created(sm)
    apply(_props(arn), sm)
    fired = []

    def finish_rotation(**_: Any) -> None:
        if fired:
            return
        fired.append(True)
        other = boto3.client("secretsmanager", region_name=REGION)
        other.put_secret_value(
            SecretId=arn, SecretString=json.dumps({**_current(other, arn), "password": ROTATED})
        )

    sm.meta.events.register("before-call.secretsmanager.PutSecretValue", finish_rotation)
    apply(_props(arn, {**FIELDS, "host": "db2.internal"}), sm)
    assert fired
    assert _current(sm, arn) == {"password": ROTATED, "username": "app", **FIELDS, "host": "db2.internal"}


def test_handler_reports_failures_without_secret_content(sm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    arn = sm.create_secret(Name="prod/raw", SecretString="not-json " + PASSWORD)["ARN"]
    sent: list[tuple[str, bytes]] = []
    response = index.handler(
        _event("Create", _props(arn)), None, client=sm, send=lambda u, b: sent.append((u, b))
    )
    assert response["Status"] == "FAILED"
    assert response["Reason"] == "the secret's current value is not a JSON object"
    assert response["Data"] == {}
    ((url, body),) = sent
    assert url.startswith("https://cloudformation-custom-resource-response")
    output = capsys.readouterr().out
    for text in (body.decode(), output):
        assert PASSWORD not in text and "not-json" not in text


def test_handler_success_and_delete(sm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    arn = _created(sm)
    sent: list[bytes] = []
    created = index.handler(_event("Create", _props(arn)), None, client=sm, send=lambda u, b: sent.append(b))
    assert created["Status"] == "SUCCESS" and created["PhysicalResourceId"] == f"{arn}|connection-fields"
    deleted = index.handler(
        {**_event("Delete", _props(arn)), "PhysicalResourceId": created["PhysicalResourceId"]},
        None,
        client=sm,
        send=lambda u, b: sent.append(b),
    )
    assert deleted["Status"] == "SUCCESS"
    assert sm.describe_secret(SecretId=arn).get("DeletedDate") is None  # retained
    assert PASSWORD not in b"".join(sent).decode() + capsys.readouterr().out


def test_the_password_is_never_a_field(sm: Any) -> None:
    arn = _created(sm)
    with pytest.raises(index.FieldsError, match="never written"):
        apply(_props(arn, {"password": "x"}), sm)


def test_upgrade_regeneration_is_undone_and_the_known_password_kept(sm: Any) -> None:
    # As an earlier template left it: the connection fields inside the generated value.
    arn = sm.create_secret(
        Name="prod/app", SecretString=json.dumps({"password": PASSWORD, "username": "app", **FIELDS})
    )["ARN"]
    # The first deploy of the new template changes GenerateSecretString: CloudFormation generates anew.
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"password": ROTATED}))
    moved = dict(FIELDS, host="db2.internal")
    assert apply(_props(arn, moved), sm).startswith("restored the password the database knows")
    assert _current(sm, arn) == {"password": PASSWORD, "username": "app", **moved}
    assert apply(_props(arn, moved), sm) == "unchanged"  # and the retry is a no-op


def test_a_password_only_current_with_no_full_previous_is_left_as_generated(sm: Any) -> None:
    arn = _created(sm)
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"password": ROTATED}))  # no username before
    apply(_props(arn), sm)
    assert _current(sm, arn)["password"] == ROTATED
