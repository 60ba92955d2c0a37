"""secretsctl against the emulated AWS over HTTP, as an operator's shell would reach it.

One emulated AWS per test package: moto's ``ThreadedMotoServer`` on a free loopback port, with the
rotation function routed to the real handler in this process (``devtools.aws``). The CLI runs through
click's ``CliRunner`` (in process, so coverage and monkeypatching work) but talks to AWS only over
HTTP via ``--endpoint-url``. Every test's output is checked against every value the emulated AWS
holds: no value may appear unless the command was given ``--reveal`` (or ``get --raw``).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets as _secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from devtools.aws import LocalAws, local_aws
from devtools.localrun_keep import start_server
from secretsctl.cli import cli
from secretsctl.output import NON_SECRET_KEYS

REGION = "us-east-1"
#: Arguments that ask for values on stdout: their output is left out of the leak check.
REVEALING = frozenset({"--reveal", "--raw", "export"})


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Emulated:
    aws: LocalAws
    endpoint: str
    handler_log: _Lines

    def client(self, service: str) -> Any:
        """A boto3 client over HTTP (what any real client sees)."""
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)


@pytest.fixture(scope="package")
def emulated() -> Iterator[Emulated]:
    """The handler runs in the server's threads and logs to stdout, which CliRunner swaps for the
    command's output: its lines (log and metric lines) go to a list instead (checked for leaks too)."""
    from rotation_handlers import logs, metrics

    logs.get_logger("tests")
    root = logging.getLogger("rotation_handlers")
    saved = list(root.handlers)
    lines = _Lines()
    lines.setFormatter(logs.JsonFormatter())
    for handler in saved:
        root.removeHandler(handler)
    root.addHandler(lines)
    saved_sink, metrics.SINK = metrics.SINK, lines.lines.append
    try:
        with local_aws(REGION) as aws:
            server, endpoint = start_server(0)
            try:
                yield Emulated(aws, endpoint, lines)
            finally:
                server.stop()
    finally:
        metrics.SINK = saved_sink
        root.removeHandler(lines)
        for handler in saved:
            root.addHandler(handler)


def held_values() -> set[str]:
    """Every secret value the emulated AWS holds, field by field (non-secret connection keys left out)."""
    from moto.secretsmanager.models import secretsmanager_backends

    found: set[str] = set()
    for account in secretsmanager_backends.values():
        for backend in account.values():
            for secret in backend.secrets.values():
                for version in secret.versions.values():
                    found |= _binary_forms(version.get("secret_binary"))
                    raw = version.get("secret_string")
                    if not raw:
                        continue
                    try:
                        data = json.loads(raw)
                    except ValueError:
                        found.add(raw)
                        continue
                    if not isinstance(data, dict):
                        found.add(raw)
                        continue
                    found.add(raw)
                    for key, value in data.items():
                        if key not in NON_SECRET_KEYS:
                            found.add(value if isinstance(value, str) else json.dumps(value))
    return {v for v in found if len(v) >= 6}


def _binary_forms(stored: str | bytes | None) -> set[str]:
    """A SecretBinary value as it could leak: its base64 form, its hex form and every printable run."""
    if not stored:
        return set()
    encoded = stored.decode() if isinstance(stored, bytes) else stored
    raw = base64.b64decode(encoded)
    runs = re.findall(rb"[\x20-\x7e]{6,}", raw)
    return {encoded, raw.hex(), *(r.decode() for r in runs)}


@dataclass
class Cli:
    """Runs ``secretsctl`` against the emulated AWS and records every output for the leak check."""

    emulated: Emulated
    outputs: list[tuple[list[str], str]] = field(default_factory=list)

    @property
    def sm(self) -> Any:
        return self.emulated.client("secretsmanager")

    @property
    def function_arn(self) -> str:
        return self.emulated.aws.function_arn

    def run(self, *args: str, input: str | None = None, expect: int | None = 0) -> Result:
        argv = ["--endpoint-url", self.emulated.endpoint, "--region", REGION, *args]
        result = CliRunner().invoke(cli, argv, input=input, catch_exceptions=False)
        self.outputs.append((argv, result.stdout + "\n" + result.stderr))
        if expect is not None:
            assert result.exit_code == expect, (
                f"secretsctl {' '.join(args)} -> {result.exit_code}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str, expect: int | None = 0) -> dict[str, Any]:
        result = self.run("-o", "json", *args, expect=expect)
        return json.loads(result.stdout)

    def name(self, prefix: str = "cli") -> str:
        return f"{prefix}/{_secrets.token_hex(4)}"

    def leaks(self) -> list[str]:
        values = held_values()
        found = [
            " ".join(argv)
            for argv, text in self.outputs
            if not REVEALING.intersection(argv) and any(v in text for v in values)
        ]
        if any(v in line for line in self.emulated.handler_log.lines for v in values):
            found.append("the rotation handler's log")
        return found


@pytest.fixture
def run(emulated: Emulated) -> Iterator[Cli]:
    c = Cli(emulated)
    yield c
    leaks = c.leaks()
    assert not leaks, f"a secret value appeared in the output of: {leaks}"


@dataclass
class ApiCalls:
    """Every AWS operation secretsctl's own boto3 sessions call, counted by ``service.Operation``."""

    counts: dict[str, int] = field(default_factory=dict)
    #: The parameters of every call, as secretsctl passed them (``service.Operation`` -> list).
    params: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def count(self, model: Any, **_: Any) -> None:
        key = f"{model.service_model.service_name}.{model.name}"
        self.counts[key] = self.counts.get(key, 0) + 1

    def record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        key = f"{model.service_model.service_name}.{model.name}"
        self.params.setdefault(key, []).append(dict(params))


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> ApiCalls:
    """Counts the CLI's calls through botocore's ``before-call`` event on every session it makes."""
    import secretsctl.session

    calls = ApiCalls()
    real = boto3.Session

    def counted(*args: Any, **kwargs: Any) -> Any:
        session = real(*args, **kwargs)
        session.events.register("before-call", calls.count)
        session.events.register("before-parameter-build", calls.record)
        return session

    monkeypatch.setattr(secretsctl.session.boto3, "Session", counted)
    return calls
