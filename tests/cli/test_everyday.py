"""Everyday use: global options anywhere, one-line errors (--debug for the trace), pipes, --quiet."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from secretsctl.errors import EXIT_ERROR

ROOT = Path(__file__).resolve().parents[2]


def test_global_options_anywhere_like_the_aws_cli(run) -> None:
    name = run.name("glob")
    run.sm.create_secret(Name=name, SecretString="token-global-uuuuuuuu")
    doc = json.loads(run.run("secret", "ls", "--filter", "glob/", "-o", "json").stdout)
    assert [s["name"] for s in doc["secrets"]] == [name]
    assert json.loads(run.run("secret", "get", name, "--output=json").stdout)["name"] == name


def test_errors_are_one_line_and_debug_shows_the_trace(run) -> None:
    missing = run.name("missing")
    result = run.run("secret", "get", missing, expect=EXIT_ERROR)
    assert result.stderr.count("\n") == 1 and "ResourceNotFoundException" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(ClientError):
        run.run("secret", "get", missing, "--debug")


def test_expired_credentials_are_one_line(run, monkeypatch) -> None:
    """AWS answers ExpiredTokenException when the session token has expired (Secrets Manager API
    reference, Common Errors: https://docs.aws.amazon.com/secretsmanager/latest/apireference/CommonErrors.html)."""
    import boto3

    import secretsctl.session

    real = boto3.Session

    def expired(*args, **kwargs):
        session = real(*args, **kwargs)
        session.events.register(
            "before-call",
            lambda **_: (
                AWSResponse("https://secretsmanager.us-east-1.amazonaws.com/", 400, {}, None),
                {
                    "Error": {
                        "Code": "ExpiredTokenException",
                        "Message": "The security token included in the request is expired",
                    },
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
            ),
        )
        return session

    monkeypatch.setattr(secretsctl.session.boto3, "Session", expired)
    result = run.run("secret", "ls", expect=EXIT_ERROR)
    assert result.stderr.splitlines() == [
        "secretsctl: error: ListSecrets: ExpiredTokenException: The security token included in the request "
        "is expired"
    ]


def test_dump_onto_a_symlink_is_one_line_and_writes_nothing_through_it(run, tmp_path) -> None:
    name = run.name("dumplink")
    run.sm.create_secret(Name=name, SecretString="token-symlink-vvvvvvvv")
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (out / f"{name.replace('/', '_')}.json").symlink_to(victim)
    result = run.run("secret", "dump", name, "--to", str(out), expect=EXIT_ERROR)
    assert len(result.stderr.splitlines()) == 1 and "symbolic link" in result.stderr
    assert victim.read_text() == "untouched"
    linked_dir = tmp_path / "linked"
    linked_dir.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    run.run("secret", "dump", name, "--to", str(linked_dir), expect=EXIT_ERROR)
    assert not any((tmp_path / "elsewhere").iterdir())


def test_dump_sets_an_existing_directory_to_0700(run, tmp_path) -> None:
    name = run.name("dumpmode")
    run.sm.create_secret(Name=name, SecretString="token-mode-wwwwwwwwww")
    out = tmp_path / "existing"
    out.mkdir(mode=0o755)
    os.chmod(out, 0o755)
    run.run("secret", "dump", name, "--to", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_tables_in_a_pipe_are_plain_columns_and_quiet_drops_notes(run, tmp_path) -> None:
    name = run.name("plain")
    run.sm.create_secret(Name=name, SecretString="token-plain-xxxxxxxxx")
    table = run.run("secret", "ls", "--filter", "plain/").stdout  # CliRunner's stdout is no terminal
    assert not any(ch in table for ch in "│┃━─┏┗")
    header, row = table.splitlines()
    assert header.split("\t")[0] == "name" and row.split("\t")[0] == name
    value = tmp_path / "v"
    value.write_text("token-plain-xxxxxxxxx")
    noisy = run.run("--yes", "secret", "update", name, "--from-file", str(value))
    assert "nothing to do" in noisy.stderr
    quiet = run.run("--yes", "secret", "update", name, "--from-file", str(value), "--quiet")
    assert "nothing to do" not in quiet.stderr


def test_a_closed_pipe_exits_0(run) -> None:
    """`secretsctl status | head -1`: the reader closes the pipe before secretsctl writes."""
    for i in range(3):
        run.sm.create_secret(Name=f"{run.name('pipe')}-{i}", SecretString=f"token-pipe-{i}-yyyyyyyy")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from secretsctl.cli import main; main()",
            "--endpoint-url",
            run.emulated.endpoint,
            "--region",
            "us-east-1",
            "status",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # before the interpreter has even imported secretsctl
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr and b"Broken pipe" not in stderr
