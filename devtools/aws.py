"""Emulated AWS for tests, benchmarks and the local run (moto, in process).

``LocalAws`` starts moto, creates the rotation function in moto's Lambda backend
and routes Secrets Manager's invocations of it to our real handler in this
process, exactly as Secrets Manager would call it (RotateSecret -> createSecret,
setSecret, testSecret, finishSecret). A failing step stops the rotation, as on AWS.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3

ACCOUNT = "123456789012"
REGION = "us-east-1"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class StepFailed(Exception):
    """A rotation step raised; RotateSecret stops there (as Secrets Manager does)."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"{step} failed: {type(error).__name__}: {error}")
        self.step = step
        self.error = error


@dataclass
class Invocation:
    step: str
    secret_id: str
    token: str
    seconds: float
    error: BaseException | None = None


@dataclass
class LocalAws:
    """What a running emulated AWS offers: clients, the function ARN, the invocation log."""

    function_arn: str
    region: str = REGION
    invocations: list[Invocation] = field(default_factory=list)
    handler: Callable[[dict[str, Any], Any], Any] | None = None
    secret_id_as_arn: bool = False
    #: Run every invocation as in a new Lambda container (nothing cached between steps).
    cold_containers: bool = False

    def client(self, service: str, region: str | None = None) -> Any:
        return boto3.client(service, region_name=region or self.region)


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("placeholder.py", "# the real handler runs in process\n")
    return buf.getvalue()


@contextmanager
def local_aws(region: str = REGION) -> Iterator[LocalAws]:
    """moto with the rotation function registered and its invocations routed in process."""
    from moto import mock_aws
    from moto.awslambda.models import LambdaBackend

    from rotation_handlers import rotate, secrets_manager

    with mock.patch.dict(os.environ, FAKE_ENV), mock_aws():
        secrets_manager.reset_clients()
        iam = boto3.client("iam", region_name=region)
        role = iam.create_role(
            RoleName="rotation-fn-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        fn = boto3.client("lambda", region_name=region).create_function(
            FunctionName="rotation-fn",
            Runtime="python3.12",
            Role=role,
            Handler="rotation_handlers.rotate.handler",
            Code={"ZipFile": _zip_bytes()},
        )
        env = LocalAws(function_arn=fn["FunctionArn"], region=region, handler=rotate.handler)

        def invoke(
            self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            event = json.loads(body)
            if env.secret_id_as_arn:
                sm = boto3.client("secretsmanager", region_name=region)
                event["SecretId"] = sm.describe_secret(SecretId=event["SecretId"])["ARN"]
            if env.cold_containers:
                secrets_manager.VERSION_CACHE.clear()
            started = time.perf_counter()
            record = Invocation(event["Step"], event["SecretId"], event["ClientRequestToken"], 0.0)
            env.invocations.append(record)
            try:
                assert env.handler is not None
                result = env.handler(event, None)
            except BaseException as exc:
                record.seconds = time.perf_counter() - started
                record.error = exc
                raise StepFailed(event["Step"], exc) from exc
            record.seconds = time.perf_counter() - started
            return json.dumps(result).encode()

        with mock.patch.object(LambdaBackend, "invoke", invoke):
            try:
                yield env
            finally:
                secrets_manager.reset_clients()


class ApiCounter:
    """Counts a boto3 client's API calls by operation; optionally adds latency to each."""

    def __init__(self, latency: float = 0.0) -> None:
        self.calls: Counter[str] = Counter()
        self.latency = latency

    def attach(self, client: Any) -> ApiCounter:
        client.meta.events.register("before-call.*.*", self._before)
        return self

    def _before(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        if self.latency:
            time.sleep(self.latency)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def secret_versions(sm: Any, secret_id: str) -> dict[str, list[str]]:
    """Version id -> labels, leaving out versions with no label (AWS hides those; moto lists them)."""
    described = sm.describe_secret(SecretId=secret_id)
    return {k: v for k, v in described.get("VersionIdsToStages", {}).items() if v}


RequestWrapper = Callable[[Any, Callable[[], Any]], Any]


def wrap_requests(client: Any, wrapper: RequestWrapper) -> None:
    """Route ``client``'s requests through ``wrapper(request, answer)`` (tests and benchmarks).

    ``answer()`` lets moto process the request and returns its response. The wrapper may
    answer instead (a ThrottlingException: moto never sees the request) or call ``answer()``
    and return something else (the request was done, its response lost). A handler that
    merely returns a response from ``before-send`` is not enough: botocore calls every
    handler, so moto would still process the request.
    """
    from moto.core.models import botocore_stubber

    client.meta.events.unregister("before-send", botocore_stubber)

    def handler(request: Any, **kwargs: Any) -> Any:
        return wrapper(request, lambda: botocore_stubber(request=request, **kwargs))

    client.meta.events.register("before-send", handler)


def error_response(request: Any, status: int, code: str, message: str) -> Any:
    """An AWS JSON-protocol error response, as a ``before-send`` handler returns it."""
    from botocore.awsrequest import AWSResponse
    from moto.core.botocore_stubber import MockRawResponse

    body = json.dumps({"__type": code, "message": message})
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "injected"}
    return AWSResponse(request.url, status, headers, MockRawResponse(body))
