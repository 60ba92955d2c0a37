"""The frame every command shares: global options, banner, account guard, confirmation, exit codes."""

from __future__ import annotations

import json

import pytest

from secretsctl import confirm as confirm_module
from secretsctl.errors import EXIT_ABORTED, EXIT_ERROR, EXIT_USAGE


def test_get_masks_json_and_table_and_reveal_shows(run) -> None:
    name = run.name()
    value = {
        "engine": "postgres",
        "host": "db.example",
        "username": "[bold]app[/]",
        "password": "Sekr3t-Value-1",
        "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:m-AbCdEf",
    }
    run.sm.create_secret(Name=name, SecretString=json.dumps(value))
    doc = run.json("secret", "get", name)
    assert doc["schemaVersion"] == 1 and doc["kind"] == "SecretValue"
    assert doc["value"]["password"] == {"masked": True, "length": len(value["password"])}
    assert doc["value"]["username"] == "[bold]app[/]" and doc["value"]["host"] == "db.example"
    table = run.run("secret", "get", name).stdout
    assert f"<masked: {len(value['password'])} chars>" in table and "db.example" in table
    assert value["masterarn"] in table and "[bold]app[/]" in table  # data, not markup or emoji codes
    raw = run.run("secret", "get", name, "--field", "password", "--reveal").stdout
    assert raw == value["password"] + "\n"


def test_usage_error_exits_2(run) -> None:
    result = run.run("secret", "get", expect=EXIT_USAGE)
    assert "Missing argument" in result.stderr
    result = run.run("status", "--fail-on", "stale,bogus", expect=EXIT_USAGE)
    assert "unknown finding(s) bogus" in result.stderr
    run.run("--expect-account", "12345", "secret", "ls", expect=EXIT_USAGE)


def test_completion_scripts_and_completion(run) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    for shell in ("bash", "zsh", "fish"):
        assert "_SECRETSCTL_COMPLETE" in run.run("completion", shell).stdout
    # what the bash script asks the installed command
    env = os.environ | {
        "_SECRETSCTL_COMPLETE": "bash_complete",
        "COMP_WORDS": "secretsctl secret d",
        "COMP_CWORD": "2",
    }
    script = Path(sys.executable).parent / "secretsctl"
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, check=False)
    assert done.stdout.split() == ["plain,delete", "plain,describe", "plain,diff", "plain,dump"]


def test_cli_imports_no_devtools_infra_or_drivers() -> None:
    """The CLI's runtime is independent of infra/ and devtools/ (and needs no database driver)."""
    import subprocess
    import sys

    code = (
        "import sys, secretsctl.cli; "
        "print([m for m in sys.modules if m.split('.')[0] in "
        "('devtools', 'infra', 'moto', 'aws_cdk', 'psycopg2', 'pymysql')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_unknown_secret_is_one_clear_line(run) -> None:
    result = run.run("secret", "get", "no/such/secret", expect=EXIT_ERROR)
    assert "ResourceNotFoundException" in result.stderr and "Traceback" not in result.stderr


def test_wrong_account_is_refused_before_any_read(run) -> None:
    result = run.run("--expect-account", "999999999999", "secret", "ls", expect=EXIT_ERROR)
    assert "account 123456789012, not 999999999999" in result.stderr


def test_confirmation_refuses_without_terminal_and_aborts_at_prompt(monkeypatch) -> None:
    from secretsctl.errors import Aborted, Refused

    monkeypatch.setattr(confirm_module, "stdin_is_terminal", lambda: False)
    with pytest.raises(Refused):
        confirm_module.confirm("Delete x?", yes=False)
    confirm_module.confirm("Delete x?", yes=True)
    assert Aborted().exit_code == EXIT_ABORTED


def test_commands_really_go_over_http(run) -> None:
    """An endpoint nobody listens on fails the call: nothing answers in process behind the CLI's back."""
    from click.testing import CliRunner

    from secretsctl.cli import cli

    result = CliRunner().invoke(
        cli, ["--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1", "secret", "ls"]
    )
    assert result.exit_code == EXIT_ERROR
    assert "Could not connect to the endpoint URL" in result.stderr


def test_leak_check_sees_revealed_values(run) -> None:
    """The per-test leak check is not vacuous: a revealed value is found by it."""
    from tests.cli.conftest import held_values

    name = run.name()
    run.sm.create_secret(Name=name, SecretString=json.dumps({"password": "Visible-when-revealed-1"}))
    out = run.run("secret", "get", name, "--reveal").stdout
    assert "Visible-when-revealed-1" in held_values()
    assert "Visible-when-revealed-1" in out


def test_console_script_is_installed() -> None:
    """scripts/setup.sh installs the project: `.venv/bin/secretsctl` runs from anywhere."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "secretsctl"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd="/", check=False)
    assert done.returncode == 0 and "rotate" in done.stdout and "secret" in done.stdout


def test_region_from_aws_region_as_the_aws_cli_reads_it(emulated) -> None:
    """`--keep` prints `export AWS_REGION=...`; botocore alone reads only AWS_DEFAULT_REGION."""
    from click.testing import CliRunner

    from secretsctl.cli import cli

    env = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": None, "AWS_ENDPOINT_URL": emulated.endpoint}
    result = CliRunner(env=env).invoke(cli, ["-o", "json", "secret", "ls"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["kind"] == "SecretList"


def test_every_command_has_help() -> None:
    """`--help` works on every command and group, and each has a help text (the reference is generated
    from them)."""
    import click
    from click.testing import CliRunner

    from secretsctl.cli import cli

    def walk(group: click.Group, path: list[str]):
        for name, command in group.commands.items():
            yield [*path, name], command
            if isinstance(command, click.Group):
                yield from walk(command, [*path, name])

    seen = 0
    for path, command in walk(cli, []):
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        seen += 1
    assert seen >= 30
