"""``secretsctl secret ...`` against the emulated AWS over HTTP (values masked in every output)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from rotation_handlers.errors import InvalidSecretError
from rotation_handlers.secret import parse_secret
from secretsctl import confirm as confirm_module
from secretsctl.errors import EXIT_ABORTED, EXIT_DIFFERENT, EXIT_ERROR, EXIT_USAGE

ROOT = Path(__file__).resolve().parents[2]


def db_value(password: str = "Pw-0123456789abcdef", **extra) -> dict:
    return {
        "engine": "postgres",
        "host": "db.example",
        "port": 5432,
        "username": "app",
        "password": password,
    } | extra


@pytest.fixture
def terminal(monkeypatch):
    """Pretend stdin is a terminal, so writes prompt (answers come from CliRunner's input)."""
    monkeypatch.setattr(confirm_module, "stdin_is_terminal", lambda: True)


def test_ls_reads_no_value_over_500_secrets(run, api_calls) -> None:
    """A listing is ListSecrets only: GetSecretValue is a CloudTrail data event and sets a secret's
    LastAccessedDate, which unused-secret checks rely on."""
    prefix = f"many-{run.name('x').split('/')[1]}/"
    for i in range(500):
        run.sm.create_secret(Name=f"{prefix}{i:03d}", SecretString=json.dumps(db_value(f"Many-pw-{i:012d}")))
    doc = run.json("secret", "ls", "--filter", prefix)
    assert len(doc["secrets"]) == 500
    assert api_calls.counts.get("secretsmanager.GetSecretValue", 0) == 0
    run.run("secret", "ls", "--prefix", prefix)
    assert api_calls.counts.get("secretsmanager.GetSecretValue", 0) == 0
    assert api_calls.counts["secretsmanager.ListSecrets"] >= 2
    for i in range(500):  # the emulated AWS is shared by the package: leave it as it was
        run.sm.delete_secret(SecretId=f"{prefix}{i:03d}", ForceDeleteWithoutRecovery=True)


def test_ls_shows_rotation_function_tags_and_health_never_values(run) -> None:
    single, plain = run.name("ls"), run.name("ls")
    run.sm.create_secret(
        Name=single, SecretString=json.dumps(db_value()), Tags=[{"Key": "team", "Value": single}]
    )
    run.sm.create_secret(Name=plain, SecretString="token-abcdefghijkl")
    doc = run.json("secret", "ls", "--filter", "ls/")
    by_name = {s["name"]: s for s in doc["secrets"]}
    assert doc["kind"] == "SecretList" and doc["schemaVersion"] == 1
    assert by_name[single]["tags"] == {"team": single} and by_name[plain]["strategy"] is None
    assert [f["kind"] for f in by_name[single]["health"]] == ["disabled"]
    assert by_name[single]["health"][0]["control"] == "SecretsManager.1"
    table = run.run("secret", "ls", "--filter", "ls/").stdout
    assert single in table and "disabled" in table
    tagged = run.json("secret", "ls", "--tag", f"team={single}")
    assert [s["name"] for s in tagged["secrets"]] == [single]
    assert run.json("secret", "ls", "--filter", "ls/", "--rotation", "on")["secrets"] == []


def test_ls_include_deleted_shows_secrets_scheduled_for_deletion(run) -> None:
    name = run.name("lsdel")
    run.sm.create_secret(Name=name, SecretString="token-deleted-llllllll")
    run.sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert name not in [s["name"] for s in run.json("secret", "ls", "--filter", "lsdel/")["secrets"]]
    shown = run.json("secret", "ls", "--filter", "lsdel/", "--include-deleted")["secrets"]
    assert [s["name"] for s in shown] == [name] and shown[0]["deletionScheduled"]
    assert "deleted" in run.run("secret", "ls", "--filter", "lsdel/", "--include-deleted").stdout


def test_versions_get_by_stage_and_version(run) -> None:
    name = run.name()
    first = run.sm.create_secret(Name=name, SecretString=json.dumps(db_value("Old-pw-aaaaaaaaaa")))[
        "VersionId"
    ]
    second = run.sm.put_secret_value(
        SecretId=name, SecretString=json.dumps(db_value("New-pw-bbbbbbbbbbbbb"))
    )["VersionId"]
    doc = run.json("secret", "versions", name)
    assert {v["versionId"]: v["stages"] for v in doc["versions"]} == {
        first: ["AWSPREVIOUS"],
        second: ["AWSCURRENT"],
    }
    prev = run.json("secret", "get", name, "--stage", "AWSPREVIOUS")
    assert prev["versionId"] == first and prev["value"]["password"] == {"masked": True, "length": 17}
    by_prefix = run.json("secret", "get", name, "--version", second[:8])
    assert by_prefix["versionId"] == second and by_prefix["value"]["password"]["length"] == 20
    assert run.run("secret", "get", name, "--field", "username").stdout == "app\n"
    assert run.run("secret", "get", name, "--field", "password").stdout == "<masked: 20 chars>\n"
    revealed = run.json("secret", "get", name, "--reveal")
    assert revealed["value"]["password"] == "New-pw-bbbbbbbbbbbbb"
    assert run.run("secret", "get", name, "--field", "nope", expect=EXIT_USAGE)


def test_diff_masked_and_exit_3_when_different(run) -> None:
    name = run.name()
    run.sm.create_secret(Name=name, SecretString=json.dumps(db_value("Old-pw-aaaaaaaaaa", extra_key="x1")))
    run.sm.put_secret_value(
        SecretId=name, SecretString=json.dumps(db_value("New-pw-bbbbbbbbbbbbb", port=5433))
    )
    doc = run.json("secret", "diff", name, expect=EXIT_DIFFERENT)
    changes = {k["key"]: k for k in doc["keys"]}
    assert doc["different"] is True and doc["from"]["ref"] == "AWSPREVIOUS"
    assert changes["password"]["change"] == "changed"
    assert changes["password"]["from"] == {"masked": True, "length": 17}
    assert changes["port"] == {"key": "port", "change": "changed", "from": 5432, "to": 5433}
    assert changes["extra_key"]["change"] == "removed" and changes["username"]["change"] == "unchanged"
    table = run.run("secret", "diff", name, expect=EXIT_DIFFERENT).stdout
    assert "<masked: 17 chars>" in table and "<masked: 20 chars>" in table
    same = run.json("secret", "diff", name, "AWSCURRENT", "AWSCURRENT")
    assert same["different"] is False


def test_dump_files_are_private_and_git_work_trees_refused(run, tmp_path) -> None:
    a, b = run.name("dump"), run.name("dump")
    run.sm.create_secret(Name=a, SecretString=json.dumps(db_value("Dump-pw-cccccccccc")))
    run.sm.create_secret(Name=b, SecretString="plain value with 'quotes'")
    out = tmp_path / "out"
    doc = run.json("secret", "dump", a, b, "--to", str(out))
    files = [Path(f["file"]) for f in doc["files"]]
    assert [stat.S_IMODE(f.stat().st_mode) for f in files] == [0o600, 0o600]
    assert json.loads(files[0].read_text())["password"] == "Dump-pw-cccccccccc"
    assert files[1].read_text() == "plain value with 'quotes'\n"
    env = run.json("secret", "dump", a, "--to", str(out), "--format", "env")
    env_file = Path(env["files"][0]["file"])
    assert "PASSWORD=Dump-pw-cccccccccc" in env_file.read_text().splitlines()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # inside this repository's work tree (not ignored): refused, nothing written
    inside = ROOT / "tests" / "cli" / "dump-out"
    result = run.run("secret", "dump", a, "--to", str(inside), expect=EXIT_ERROR)
    assert "git work tree" in result.stderr and not any(inside.glob("*"))
    inside.rmdir()
    # inside a work tree where the path is ignored: allowed
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("secrets/\n")
    run.run("secret", "dump", a, "--to", str(repo / "secrets"))
    assert (repo / "secrets").is_dir() and len(list((repo / "secrets").iterdir())) == 1


def test_dump_all(run, tmp_path) -> None:
    run.sm.create_secret(Name=run.name("dumpall"), SecretString="token-mmmmmmmmmmmm")
    pages = run.sm.get_paginator("list_secrets").paginate()
    names = {s["Name"] for page in pages for s in page["SecretList"]}
    doc = run.json("secret", "dump", "--all", "--to", str(tmp_path / "all"))
    assert {f["name"] for f in doc["files"]} == names
    assert len(list((tmp_path / "all").iterdir())) == len(names)
    run.run("secret", "dump", "--to", str(tmp_path / "none"), expect=EXIT_USAGE)


def test_create_validates_db_secret_with_the_rotation_parser(run, tmp_path) -> None:
    bad = db_value(port="not-a-port", ssl="maybe")
    del bad["host"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    name = run.name("create")
    result = run.run("--yes", "secret", "create", name, "--from-file", str(path), expect=EXIT_ERROR)
    with pytest.raises(InvalidSecretError) as parser:
        parse_secret(json.dumps(bad), "new")
    assert str(parser.value) in result.stderr  # same rules, same message
    assert name not in [s["Name"] for s in run.sm.list_secrets()["SecretList"]]


def test_create_from_file_and_stdin_with_banner(run, tmp_path) -> None:
    path = tmp_path / "v.json"
    path.write_text(json.dumps(db_value("Create-pw-dddddddd")) + "\n")
    name = run.name("create")
    result = run.run("--yes", "secret", "create", name, "--from-file", str(path), "--description", "d")
    assert "account 123456789012 | region us-east-1 | caller arn:aws:" in result.stderr
    assert (
        json.loads(run.sm.get_secret_value(SecretId=name)["SecretString"])["password"] == "Create-pw-dddddddd"
    )
    other = run.name("create")
    run.run(
        "--yes",
        "secret",
        "create",
        other,
        "--from-file",
        "-",
        "--replica-region",
        "eu-central-1",
        "--strip-newline",
        input="just-a-token-eeeeee\n",
    )
    assert run.sm.get_secret_value(SecretId=other)["SecretString"] == "just-a-token-eeeeee"
    assert [r["Region"] for r in run.sm.describe_secret(SecretId=other)["ReplicationStatus"]] == [
        "eu-central-1"
    ]
    # the value is never accepted on the command line
    run.run("--yes", "secret", "create", run.name(), "--value", "x", expect=EXIT_USAGE)


def test_writes_refused_without_terminal_aborted_at_prompt(run, tmp_path, terminal, monkeypatch) -> None:
    path = tmp_path / "v.json"
    path.write_text("token-ffffffffffff")
    name = run.name("prompt")
    run.run("secret", "create", name, "--from-file", str(path), input="n\n", expect=EXIT_ABORTED)
    run.run("secret", "create", name, "--from-file", str(path), input="y\n")
    monkeypatch.setattr(confirm_module, "stdin_is_terminal", lambda: False)
    result = run.run("secret", "delete", name, expect=EXIT_ERROR)
    assert "pass --yes" in result.stderr
    assert "DeletedDate" not in run.sm.describe_secret(SecretId=name)


def test_wrong_account_refuses_writes(run, tmp_path) -> None:
    path = tmp_path / "v.json"
    path.write_text("token-gggggggggggg")
    name = run.name("acct")
    result = run.run(
        "--expect-account",
        "210987654321",
        "--yes",
        "secret",
        "create",
        name,
        "--from-file",
        str(path),
        expect=EXIT_ERROR,
    )
    assert "not 210987654321" in result.stderr
    assert name not in [s["Name"] for s in run.sm.list_secrets()["SecretList"]]
    run.run("--expect-account", "123456789012", "--yes", "secret", "create", name, "--from-file", str(path))


def test_update_checks_version_validates_and_refuses_during_rotation(run, tmp_path) -> None:
    name = run.name("upd")
    first = run.sm.create_secret(Name=name, SecretString=json.dumps(db_value("Upd-pw-hhhhhhhhhh")))[
        "VersionId"
    ]
    new = tmp_path / "new.json"
    new.write_text(json.dumps(db_value("Upd-pw-iiiiiiiiiiii")))
    run.run(
        "--yes", "secret", "update", name, "--from-file", str(new), "--expect-version", "0" * 32, expect=1
    )
    not_db = tmp_path / "notdb.txt"
    not_db.write_text("no-longer-json")
    result = run.run("--yes", "secret", "update", name, "--from-file", str(not_db), expect=EXIT_ERROR)
    assert "holds a JSON object and the new value is not JSON" in result.stderr
    result = run.run("--yes", "secret", "update", name, "--from-file", str(not_db), "--text", expect=1)
    assert "not valid JSON" in result.stderr  # a database secret stays valid for the rotation parser
    result = run.run("--yes", "secret", "update", name, "--from-file", str(new), "--expect-version", first)
    assert "~ password: <masked: 17 chars> -> <masked: 19 chars>" in result.stderr
    assert run.json("secret", "get", name, "--reveal")["value"]["password"] == "Upd-pw-iiiiiiiiiiii"
    # an unfinished rotation (AWSPENDING on another version): refused
    run.sm.put_secret_value(
        SecretId=name, SecretString=json.dumps(db_value("Pending-pw-jjjjjjjj")), VersionStages=["AWSPENDING"]
    )
    result = run.run("--yes", "secret", "update", name, "--from-file", str(new), expect=EXIT_ERROR)
    assert "AWSPENDING" in result.stderr


def test_delete_restore_and_force_requires_the_name(run, tmp_path, terminal) -> None:
    name = run.name("del")
    run.sm.create_secret(Name=name, SecretString="token-kkkkkkkkkkkk")
    run.run("secret", "delete", name, "--recovery-days", "5", expect=EXIT_USAGE)
    doc = run.json("--yes", "secret", "delete", name, "--recovery-days", "7")
    assert doc["recoverable"] is True and doc["deletionDate"]
    run.run("--yes", "secret", "restore", name)
    assert "DeletedDate" not in run.sm.describe_secret(SecretId=name)
    run.run("secret", "delete", name, "--force-no-recovery", input="wrong\n", expect=EXIT_ABORTED)
    assert run.sm.describe_secret(SecretId=name)["Name"] == name
    run.run("secret", "delete", name, "--force-no-recovery", input=f"{name}\n")
    with pytest.raises(run.sm.exceptions.ResourceNotFoundException):
        run.sm.describe_secret(SecretId=name)
