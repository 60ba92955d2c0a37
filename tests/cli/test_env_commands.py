"""exec, export, import and param put/delete over HTTP against the emulated AWS."""

from __future__ import annotations

import json
import sys

import pytest

from secretsctl import confirm as confirm_module
from secretsctl.errors import EXIT_ABORTED, EXIT_ERROR

CHILD = """
import json, os, sys
out = sys.argv[1]
with open('/proc/self/cmdline', 'rb') as f:
    cmdline = f.read().decode(errors='replace')
json.dump({'env': {k: os.environ.get(k) for k in ('PASSWORD', 'USERNAME', 'TOKEN', 'API_URL')},
           'cmdline': cmdline}, open(out, 'w'))
sys.exit(7)
"""


def test_exec_passes_values_in_the_environment_only(run, tmp_path) -> None:
    db, token = run.name("exec"), run.name("exec")
    run.sm.create_secret(Name=db, SecretString=json.dumps({"username": "app", "password": "Exec-pw-aaaaaaa"}))
    run.sm.create_secret(Name=f"{token}/token", SecretString="exec-token-bbbbbbbb")
    ssm = run.emulated.client("ssm")
    ssm.put_parameter(Name=f"/{token}/api-url", Value="https://api.example", Type="String")
    out = tmp_path / "child.json"
    result = run.run(
        "exec",
        db,
        f"{token}/token",
        "--param",
        f"/{token}/",
        "--",
        sys.executable,
        "-c",
        CHILD,
        str(out),
        expect=7,
    )
    seen = json.loads(out.read_text())
    assert seen["env"] == {
        "PASSWORD": "Exec-pw-aaaaaaa",
        "USERNAME": "app",
        "TOKEN": "exec-token-bbbbbbbb",
        "API_URL": "https://api.example",
    }
    assert "Exec-pw" not in seen["cmdline"] and "exec-token" not in seen["cmdline"]
    assert result.exit_code == 7
    run.run("exec", db, expect=2)  # no command


def test_export_dotenv_and_json_and_import_round_trip(run, tmp_path, monkeypatch) -> None:
    src, dst = run.name("export"), run.name("import")
    run.sm.create_secret(Name=src, SecretString=json.dumps({"db-password": "Export pw 'cc'", "port": 5432}))
    dotenv = run.run("export", src).stdout
    assert dotenv == "DB_PASSWORD='Export pw '\"'\"'cc'\"'\"''\nPORT=5432\n"
    assert json.loads(run.run("export", src, "--format", "json").stdout) == {
        "DB_PASSWORD": "Export pw 'cc'",
        "PORT": "5432",
    }
    path = tmp_path / "app.env"
    path.write_text("# comment\nexport DB_PASSWORD='Export pw '\"'\"'cc'\"'\"''\nPORT=5432\n")
    monkeypatch.setattr(confirm_module, "stdin_is_terminal", lambda: True)
    run.run("import", dst, "--from-file", str(path), input="n\n", expect=EXIT_ABORTED)
    run.run("import", dst, "--from-file", str(path), "--yes")
    assert json.loads(run.sm.get_secret_value(SecretId=dst)["SecretString"]) == {
        "DB_PASSWORD": "Export pw 'cc'",
        "PORT": "5432",
    }
    assert "nothing to do" in run.run("import", dst, "--from-file", str(path), "--yes").stderr
    bad = tmp_path / "bad.env"
    bad.write_text("NOT A LINE WITH secret-value-dddddd\n")
    result = run.run("import", dst, "--from-file", str(bad), "--yes", expect=EXIT_ERROR)
    assert "line 1" in result.stderr


def test_param_put_and_delete(run, tmp_path, monkeypatch) -> None:
    ssm = run.emulated.client("ssm")
    name = f"/{run.name('pput')}/key"
    value = tmp_path / "v"
    value.write_text("param-value-eeeeeeee")
    run.run("--yes", "param", "put", name, "--from-file", str(value))
    got = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert got["Type"] == "SecureString" and got["Value"] == "param-value-eeeeeeee"
    doc = run.json("param", "put", name, "--from-file", str(value), "--yes")
    assert doc["version"] == 2
    result = run.run("--yes", "param", "put", name, "--type", "String", "--from-file", str(value), expect=1)
    assert "param delete" in result.stderr
    monkeypatch.setattr(confirm_module, "stdin_is_terminal", lambda: True)
    run.run("param", "delete", name, input="wrong\n", expect=EXIT_ABORTED)
    run.run("param", "delete", name, input=f"{name}\n")
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=name)
