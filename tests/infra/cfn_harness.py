"""The CloudFormation side of the connection-fields custom resource's tests, over moto.

``Stack`` is CloudFormation: the stack status (answered to the handler's DescribeStacks by a botocore
hook, as the API reference documents), the resource's physical id, and one request at a time through
the handler's own code. The fixtures (``clock``, ``sm``, ``other``, ``cfn_client``) are registered in
``tests/infra/conftest.py``. The documented behaviour each helper replays is cited in
``test_secret_fields_lifecycle.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from infra.secret_fields_handler import index

REGION = "eu-west-1"
STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/secrets/1"
KNOWN = "Known-Pass-0123456789abcdefXYZabcd"  # the password the database knows
ROTATED = "Rotated-Pass-9876543210zyxwvutsRQ"
BREAK_GLASS = "Break-Glass-Pass-00000000000000000"
# What an earlier template generated: the connection fields inside GenerateSecretString.
LEGACY = {"username": "app", "engine": "postgres", "host": "db.internal", "port": 5432, "dbname": "app"}
FIELDS = {"engine": "postgres", "host": "db.internal", "port": 5432, "dbname": "app"}
ROLLBACK_CLEANUP = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
GENERATOR = '{"GenerateStringKey":"password","PasswordLength":32,"SecretStringTemplate":"{}"}'


class FakeClock:
    """The handler's clock and sleep: time passes only when the handler sleeps (no timed assertions)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = 0
        self.on_sleep: list[Any] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        for hook in list(self.on_sleep):
            hook()


class Context:
    def __init__(self, clock: FakeClock, timeout_ms: int = 120_000) -> None:
        self.clock, self.end = clock, clock.now + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self.end - self.clock.now) * 1000)


class Stack:
    """CloudFormation's side: the stack status, the resource's recorded properties and physical id."""

    def __init__(self, sm: Any, cfn: Any, arn: str, clock: FakeClock) -> None:
        self.sm, self.cfn, self.arn, self.clock = sm, cfn, arn, clock
        self.status = "UPDATE_IN_PROGRESS"
        self.update_started = dt.datetime.fromtimestamp(int(time.time()), dt.UTC)  # LastUpdatedTime
        self.physical_id: str | None = None
        self.responses: list[dict[str, Any]] = []
        cfn.meta.events.register("before-call.cloudformation.DescribeStacks", self._describe_stacks)

    def _describe_stacks(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        stack = {
            "StackId": STACK_ID,
            "StackName": "secrets",
            "StackStatus": self.status,
            "CreationTime": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "LastUpdatedTime": self.update_started,
        }
        return AWSResponse(STACK_ID, 200, {}, None), {"Stacks": [stack], "ResponseMetadata": {}}

    def request(
        self,
        request_type: str,
        props: dict[str, str],
        old: dict[str, str] | None = None,
        timeout_ms: int = 120_000,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ResponseURL": "https://cloudformation-custom-resource-response.example/presigned",
            "StackId": STACK_ID,
            "RequestId": str(uuid.uuid4()),
            "ResourceType": "Custom::SecretConnectionFields",
            "LogicalResourceId": "AppSecretFields",
            "ResourceProperties": props,
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = self.physical_id
        if old is not None:
            event["OldResourceProperties"] = old
        sent: list[bytes] = []
        response = index.handler(
            event, Context(self.clock, timeout_ms), client=self.sm, send=lambda _u, b: sent.append(b)
        )
        assert len(sent) == 1  # every request is answered exactly once
        assert KNOWN not in sent[0].decode() and ROTATED not in sent[0].decode()
        if request_type == "Create" or response["Status"] == "SUCCESS":
            self.physical_id = response["PhysicalResourceId"]
        self.responses.append(response)
        return response


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(index, "_sleep", clock.sleep, raising=False)
    monkeypatch.setattr(index, "_monotonic", clock.monotonic, raising=False)
    return clock


@pytest.fixture
def sm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def other(sm: Any) -> Any:
    """Another party's client (a rotation, CloudFormation itself, an operator)."""
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def cfn_client(sm: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    client = boto3.client("cloudformation", region_name=REGION)
    real = getattr(index, "make_client", None)

    def make_client(service: str) -> Any:
        return client if service == "cloudformation" else real(service)  # type: ignore[misc]

    monkeypatch.setattr(index, "make_client", make_client, raising=False)
    return client


def _props(arn: str, generator: str = GENERATOR, **changes: Any) -> dict[str, str]:
    fields = {**FIELDS, **changes}
    return {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:fields",
        "SecretId": arn,
        "Fields": json.dumps({k: v for k, v in fields.items() if v is not None}),
        "RemoveFields": json.dumps(sorted(k for k, v in fields.items() if v is None)),
        "SeedFields": json.dumps({"username": "app"}),
        "Generator": generator,
    }


def _current(client: Any, arn: str) -> dict[str, Any]:
    return json.loads(client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])


def _stages(client: Any, arn: str) -> dict[str, list[str]]:
    return {v: s for v, s in client.describe_secret(SecretId=arn)["VersionIdsToStages"].items() if s}


def regenerate(client: Any, arn: str, template: dict[str, Any]) -> str:
    """CloudFormation updating GenerateSecretString: a new generated password becomes AWSCURRENT."""
    password = "Gen-" + secrets.token_hex(14)
    client.put_secret_value(SecretId=arn, SecretString=json.dumps({**template, "password": password}))
    return password


def start_rotation(client: Any, arn: str, password: str = ROTATED) -> str:
    """createSecret: AWSPENDING = AWSCURRENT with a new password."""
    token = str(uuid.uuid4())
    client.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps({**_current(client, arn), "password": password}),
        VersionStages=["AWSPENDING"],
    )
    return token


def finish_rotation(client: Any, arn: str, token: str) -> None:
    """setSecret's target check (the same host and port as AWSCURRENT), then finishSecret."""
    pending = json.loads(client.get_secret_value(SecretId=arn, VersionId=token)["SecretString"])
    current = _current(client, arn)
    if (pending["host"], pending["port"]) != (current["host"], current["port"]):
        raise AssertionError("setSecret refuses: the pending host differs from the current one (wedged)")
    stages = _stages(client, arn)
    (current_version,) = [v for v, s in stages.items() if "AWSCURRENT" in s]
    client.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current_version
    )
    client.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)


def _legacy_secret(client: Any) -> str:
    """As an earlier template created it: the fields inside the generated value."""
    return client.create_secret(Name="prod/app", SecretString=json.dumps({**LEGACY, "password": KNOWN}))[
        "ARN"
    ]


def _upgraded(stack: Stack) -> None:
    """The upgrade deploy: the secret's generator changes (a new password), then the resource is created."""
    regenerate(stack.sm, stack.arn, {})
    assert stack.request("Create", _props(stack.arn))["Status"] == "SUCCESS"


class LambdaKilled(BaseException):
    """The invocation ends here (a timeout or crash): no except clause of the handler runs."""
