"""The local run (issue 6) in its self-checking mode, plus its small pure pieces."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.localrun_events import HIDDEN, cloudtrail_event
from devtools.localrun_rotation import DemoSecret, LabelState, _check
from devtools.localrun_ui import format_table
from rotation_handlers.replication.events import parse_event

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.db
def test_check_mode_passes_and_leaves_nothing_running(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.localrun",
            "--check",
            "--no-color",
            "--cdk-out",
            str(tmp_path / "cdk.out"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = proc.stdout
    print(out[-6000:], proc.stderr[-3000:])
    assert proc.returncode == 0
    assert re.search(r"--check: all \d+ checks passed", out)
    assert "MISMATCH" not in out and "FAIL" not in out
    # every stage ran: servers, synth, secrets, three rounds of four rotations, replication, stop
    assert "synthesized 2 stack(s)" in out
    assert len(list((tmp_path / "cdk.out").glob("*.template.json"))) == 2
    for round_no in (1, 2, 3):
        assert f"rotation {round_no}/3: 4 secrets" in out
    for name in ("demo/pg-single", "demo/pg-alternating", "demo/mysql-single", "demo/mysql-alternating"):
        assert out.count(name) >= 4
    assert re.search(r"app_clone\s+yes", out) and re.search(r"reports\s+no", out)
    assert "nothing to do" in out
    # the operator CLI's status table of the four rotated secrets, after the rotations
    status = out.split("secretsctl status")[-1]
    for name in ("demo/pg-single", "demo/pg-alternating", "demo/mysql-single", "demo/mysql-alternating"):
        assert re.search(rf"{name}[\s│]+on[\s│]+\d{{4}}-\d\d-\d\d [\d:]+ UTC[\s│]+ok\b", status), name
    # the metrics the handlers printed (EMF), counted per metric
    printed = out.split("Metrics the functions printed")[-1]
    for name in ("Rotations", "StepDuration", "FailedLogins", "EventsHandled", "WritesWritten", "DriftFound"):
        assert name in printed, name
    assert "databases, emulated AWS and synth stopped" in out
    # nothing left running: the servers' ports are closed and their directories gone
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", out.split("[2]")[0])]
    assert len(ports) == 2
    assert not any(_listening(p) for p in ports)
    run_dir = re.search(r"handler logs \(JSON\) go to (\S+)/handlers\.log", out)
    assert run_dir and not Path(run_dir.group(1)).exists()


def test_cloudtrail_event_is_understood_by_the_replicator() -> None:
    request = {
        "Name": "/app/x",
        "Value": "s3cr3t-value",
        "Type": "SecureString",
        "Tags": [{"Key": "team", "Value": "a"}],
    }
    event = cloudtrail_event(
        "PutParameter",
        request,
        {"Version": 1, "Tier": "Standard", "ResponseMetadata": {"HTTPStatusCode": 200}},
        region="eu-west-1",
        account="123456789012",
        caller_arn="arn:aws:iam::123456789012:user/moto",
    )
    detail = event["detail"]
    assert detail["requestParameters"] == {
        "name": "/app/x",
        "value": HIDDEN,
        "type": "SecureString",
        "tags": [{"key": "team", "value": "a"}],
    }
    assert detail["responseElements"] == {"version": 1, "tier": "Standard"}
    assert "s3cr3t-value" not in json.dumps(event)
    trigger = parse_event(event, "eu-west-1")
    assert (trigger.ignored, trigger.operation, trigger.names) == (None, "PutParameter", ("/app/x",))
    delete = cloudtrail_event(
        "DeleteParameters",
        {"Names": ["/a/b", "/a/c"]},
        {"DeletedParameters": ["/a/b", "/a/c"], "InvalidParameters": []},
        region="eu-west-1",
        account="123456789012",
        caller_arn="arn:aws:iam::123456789012:user/moto",
    )
    assert parse_event(delete, "eu-west-1").names == ("/a/b", "/a/c")


def _secret(strategy: str) -> DemoSecret:
    return DemoSecret("demo/x", None, strategy, "app")  # type: ignore[arg-type]


def _checked(strategy: str, prev_user: str, cur_user: str, prev_login: str) -> list[str]:
    old = {"engine": "postgres", "host": "h", "username": prev_user, "password": "old"}
    new = {**old, "username": cur_user, "password": "new"}
    return _check(
        _secret(strategy),
        "tok",
        "v1",
        old,
        {"tok": ["AWSCURRENT"], "v1": ["AWSPREVIOUS"]},
        new,
        old,
        LabelState("tok", cur_user, "yes"),
        LabelState("v1", prev_user, prev_login),
    )


def test_rotation_checks_catch_wrong_outcomes() -> None:
    assert _checked("single", "app", "app", "no") == []
    assert _checked("alternating", "app", "app_clone", "yes") == []
    assert _checked("alternating", "app_clone", "app", "yes") == []
    assert any("retire" in p for p in _checked("single", "app", "app", "yes"))
    assert any("alternate" in p for p in _checked("alternating", "app", "app", "yes"))
    assert any("does not log in" in p for p in _checked("alternating", "app", "app_clone", "no"))


def test_format_table_aligns_columns() -> None:
    lines = format_table(["a", "bbb"], [["xxxx", "y"], ["z", "\033[32mok\033[0m"]])
    assert lines[0] == "a     bbb"
    assert lines[1] == "----  ---"
    assert lines[3].startswith("z     \033[32mok")


def test_keep_refuses_a_busy_port() -> None:
    pytest.importorskip("flask")
    pytest.importorskip("flask_cors")
    from devtools.localrun_keep import KeepUnavailable, start_server

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(KeepUnavailable, match="in use"):
            start_server(busy.getsockname()[1])


def test_region_comparison_flags_every_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    from devtools.localrun_ssm import SOURCE, TARGETS, compare
    from rotation_handlers.replication.config import MARKER_TAG_KEY

    for var, value in (
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
        ("AWS_DEFAULT_REGION", SOURCE),
    ):
        monkeypatch.setenv(var, value)
    eu, us = TARGETS
    with mock_aws():
        ssm = {r: boto3.client("ssm", region_name=r) for r in (SOURCE, *TARGETS)}
        marker = [{"Key": MARKER_TAG_KEY, "Value": SOURCE}]
        ssm[SOURCE].put_parameter(Name="/app/a", Value="one", Type="String")
        ssm[eu].put_parameter(Name="/app/a", Value="one", Type="String", Tags=marker)
        ssm[us].put_parameter(Name="/app/a", Value="two", Type="String", Tags=marker)
        ssm[eu].put_parameter(Name="/app/gone", Value="x", Type="String", Tags=marker)
        ssm[SOURCE].put_parameter(Name="/app/local/x", Value="x", Type="String")
        result = {c.name: c.verdicts for c in compare(ssm, {"/app/a", "/app/gone", "/app/local/x"})}
    assert result["/app/a"][eu] == (True, "match")
    assert result["/app/a"][us] == (False, "differs: Value")
    assert result["/app/gone"][eu][0] is False and result["/app/gone"][us][0] is True
    assert result["/app/local/x"] == {eu: (True, "absent"), us: (True, "absent")}


@pytest.mark.db
def test_keep_serves_the_emulated_aws_until_sigterm() -> None:
    pytest.importorskip("flask")
    pytest.importorskip("flask_cors")
    import signal
    import time

    import boto3

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    cmd = [
        sys.executable,
        "-m",
        "devtools.localrun",
        "--keep",
        "--port",
        "0",
        "--skip-synth",
        "--rotations",
        "1",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        out = "".join(lines)
        endpoint = re.search(r"(http://127\.0\.0\.1:\d+)", out.split("Keep running")[-1])
        assert endpoint, out
        sm = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint.group(1),
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        before = sm.describe_secret(SecretId="demo/pg-alternating")["VersionIdsToStages"]
        token = sm.rotate_secret(SecretId="demo/pg-alternating")["VersionId"]  # runs our handler
        after = sm.describe_secret(SecretId="demo/pg-alternating")["VersionIdsToStages"]
        assert after[token] == ["AWSCURRENT"] and token not in before
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out += rest
    assert proc.returncode == 0, out
    assert "databases, emulated AWS and synth stopped" in out
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", out)]
    assert not any(_listening(p) for p in set(ports))


def test_status_check_reports_a_secret_that_is_not_rotating(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local run's check of `secretsctl status` fails for a secret without rotation or a missing one."""
    import boto3
    from moto import mock_aws

    from devtools.localrun_cli import secretsctl, status_problems

    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "eu-west-1"}
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
            Name="demo/never", SecretString='{"engine": "postgres"}'
        )
        table = secretsctl(["status", "demo/never"])
        problems = status_problems(["demo/never"])
        missing = status_problems(["demo/absent"])
    assert table.exit_code == 0 and "demo/never" in table.stdout and "disabled" in table.stdout
    assert problems == ["secretsctl status: demo/never rotation off, last rotated None, disabled"]
    assert len(missing) == 1 and "exited 1" in missing[0] and "ResourceNotFoundException" in missing[0]
