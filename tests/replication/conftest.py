"""Fixtures for the replication tests: moto in several regions, call counting, log capture."""

from __future__ import annotations

import io
import logging
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from botocore.exceptions import ClientError  # noqa: E402
from moto import mock_aws  # noqa: E402

from rotation_handlers.logs import JsonFormatter  # noqa: E402
from rotation_handlers.replication import clients, engine, guards  # noqa: E402
from rotation_handlers.replication.events import CLOUDTRAIL_EVENT_NAMES  # noqa: E402
from tests.replication.events import ROLE_NAME_REPLICATOR, role_arn  # noqa: E402

SOURCE = "us-east-1"
EU = "eu-west-1"
US = "us-west-2"
TARGETS = (EU, US)
REPLICATOR_ROLE = role_arn(ROLE_NAME_REPLICATOR)
#: The SSM calls that change a parameter: the ones the replicator writes with.
WRITE_OPS = frozenset(CLOUDTRAIL_EVENT_NAMES)

#: Every value a test stores in Parameter Store; none may ever appear in a log line.
SECRET_VALUES: set[str] = set()


def secret(tag: str = "v") -> str:
    """A unique test value, registered so the log check can look for it."""
    value = f"val-{tag}-{uuid.uuid4().hex[:12]}"
    SECRET_VALUES.add(value)
    return value


class LogCapture:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()


@pytest.fixture(autouse=True)
def log_capture() -> Iterator[LogCapture]:
    """Capture every replication log line (as printed) and fail if any test value shows up."""
    capture = LogCapture()
    root = logging.getLogger("rotation_handlers")
    root.addHandler(capture.handler)
    try:
        yield capture
    finally:
        root.removeHandler(capture.handler)
    text = capture.stream.getvalue()
    leaked = sorted(v for v in SECRET_VALUES if v in text)
    assert not leaked, f"values leaked into logs: {leaked}"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SSM",
        "AWS_LAMBDA_FUNCTION_NAME",
        "REPLICATE_PATHS",
        "EXCLUDE_PATHS",
        "REPLICA_KMS_KEYS",
        "DELETE_UNMANAGED_REPLICAS",
        "ADOPT_UNMANAGED_TARGETS",
        "COPY_EC2_IMAGE_PARAMETERS",
        "RECONCILE_DRY_RUN",
        "REPLICATION_MAX_ATTEMPTS",
        "REPLICATION_MAX_ROUNDS",
        "RECONCILE_BULK_TAGS",
        "RECONCILE_DEEP_EVERY",
        "RECONCILE_STATE_PARAMETER",
        "RECONCILE_TIME_MARGIN_SECONDS",
        "RECONCILE_CONCURRENCY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", SOURCE)
    monkeypatch.setenv("AWS_REGION", SOURCE)
    monkeypatch.setenv("REPLICA_REGIONS", ",".join(TARGETS))
    monkeypatch.setenv("REPLICATOR_ROLE_ARN", REPLICATOR_ROLE)
    monkeypatch.setenv("RECONCILE_REQUESTS_PER_SECOND", "0")  # tests count calls; the budget has its own
    return monkeypatch


class Aws:
    """moto session helpers: clients per region (the replicator's own cached ones) and call counts."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.sleeps: list[float] = []
        self._hooked: set[str] = set()
        self._handlers: list[tuple[Any, str, Callable[..., None]]] = []

    def on(self, client: Any, event: str, handler: Callable[..., None]) -> None:
        client.meta.events.register(event, handler)
        self._handlers.append((client, event, handler))

    def close(self) -> None:
        for client, event, handler in self._handlers:
            client.meta.events.unregister(event, handler)

    def ssm(self, region: str) -> Any:
        client = clients.ssm(region)
        if region not in self._hooked:
            self._hooked.add(region)

            def count(model: Any, **_: Any) -> None:
                self.calls[(region, model.name)] += 1

            self.on(client, "before-call.ssm", count)
            # reconcile reads tags in bulk with the Resource Groups Tagging API: count those too
            self.on(clients.client("resourcegroupstaggingapi", region), "before-call", count)
        return client

    def reset_counts(self) -> None:
        self.calls.clear()

    def writes(self, region: str | None = None) -> int:
        return sum(n for (r, op), n in self.calls.items() if op in WRITE_OPS and region in (None, r))

    def count(self, region: str | None = None, op: str | None = None) -> int:
        return sum(n for (r, o), n in self.calls.items() if region in (None, r) and op in (None, o))

    def inject(
        self, region: str, operation: str, code: str, times: int | None = None, message: str = "injected"
    ) -> Callable[[], int]:
        """Make ``operation`` in ``region`` fail with ``code`` (``times`` times, or always)."""
        state = {"n": 0}

        def fail(model: Any, **_: Any) -> None:
            if model.name == operation and (times is None or state["n"] < times):
                state["n"] += 1
                raise ClientError({"Error": {"Code": code, "Message": message}}, operation)

        self.on(self.ssm(region), "before-call.ssm", fail)  # runs after the counter
        return lambda: state["n"]

    # -- parameter helpers (source side = a user, not the replicator) ------------------------
    def put(self, name: str, value: str, region: str = SOURCE, **kwargs: Any) -> int:
        kwargs.setdefault("Type", "String")
        return self.ssm(region).put_parameter(Name=name, Value=value, **kwargs)["Version"]

    def get(self, name: str, region: str) -> dict[str, Any] | None:
        try:
            return self.ssm(region).get_parameter(Name=name, WithDecryption=True)["Parameter"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ParameterNotFound":
                return None
            raise

    def describe(self, name: str, region: str) -> dict[str, Any]:
        items = self.ssm(region).describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])
        return items["Parameters"][0]

    def tags(self, name: str, region: str) -> dict[str, str]:
        tags = self.ssm(region).list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
        return {t["Key"]: t["Value"] for t in tags}

    def history(self, name: str, region: str) -> list[dict[str, Any]]:
        """Every version: GetParameterHistory returns at most 50 a page (MaxResults; API reference)."""
        pages = self.ssm(region).get_paginator("get_parameter_history")
        return [p for page in pages.paginate(Name=name, WithDecryption=True) for p in page["Parameters"]]

    def labels(self, name: str, region: str) -> dict[str, str]:
        """label -> value of the version it is on."""
        return {label: h["Value"] for h in self.history(name, region) for label in h.get("Labels", [])}


@pytest.fixture
def aws(env: pytest.MonkeyPatch) -> Iterator[Aws]:
    sleeps: list[float] = []
    env.setattr(engine, "SLEEP", sleeps.append)
    guards.reset()
    # The replicator's cached clients are kept across tests (creating them is the slow part);
    # moto intercepts them whenever a mock is active, and our hooks are removed after each test.
    with mock_aws():
        helper = Aws()
        helper.sleeps = sleeps
        for region in (SOURCE, *TARGETS):
            helper.ssm(region)  # hook the cached clients now so that every call is counted
        try:
            yield helper
        finally:
            helper.close()
