"""Values exactly as stored: get --raw, binary secrets, versions by full id and custom labels, JSON
refused when malformed, newlines kept, no echo on a terminal."""

from __future__ import annotations

import base64
import json

import pytest

from secretsctl import values as values_module
from secretsctl.errors import EXIT_ERROR

BINARY = b"raw-binary-\x95\x00\xff-zzzzzzzz\n"


def test_get_raw_prints_the_value_alone_bytes_as_stored(run) -> None:
    text_name, bin_name, db_name = run.name("raw"), run.name("raw"), run.name("raw")
    run.sm.create_secret(Name=text_name, SecretString="line one\nline two\n")
    run.sm.create_secret(Name=bin_name, SecretBinary=BINARY)
    run.sm.create_secret(
        Name=db_name, SecretString=json.dumps({"username": "app", "password": "Raw-pw-1234"})
    )
    assert run.run("secret", "get", text_name, "--raw").stdout_bytes == b"line one\nline two\n"
    assert run.run("secret", "get", bin_name, "--raw").stdout_bytes == BINARY
    assert run.run("secret", "get", db_name, "--raw", "--field", "password").stdout_bytes == b"Raw-pw-1234"
    # --reveal of a binary secret never re-encodes bytes (0x95 was printed as C2 95): base64
    revealed = run.json("secret", "get", bin_name, "--reveal")["value"]
    assert base64.b64decode(revealed.removeprefix("base64:")) == BINARY


def test_versions_by_full_id_and_custom_label(run) -> None:
    name = run.name("label")
    first = run.sm.create_secret(Name=name, SecretString="token-first-aaaaaaaa")["VersionId"]
    run.sm.put_secret_value(SecretId=name, SecretString="token-second-bbbbbbbb")
    third = run.sm.put_secret_value(
        SecretId=name, SecretString="token-third-cccccccc", VersionStages=["release-7"]
    )["VersionId"]
    assert run.json("secret", "get", name, "--stage", "release-7")["versionId"] == third
    assert run.run("secret", "get", name, "--stage", "release-7", "--raw").stdout == "token-third-cccccccc"
    # the first version lost its last label (AWSPREVIOUS moved on); AWS still returns it by full id
    assert run.run("secret", "get", name, "--version", first, "--raw").stdout == "token-first-aaaaaaaa"


def test_malformed_json_is_refused_unless_text(run, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"username": "app", "password": "Json-pw-dddddd",}')
    name = run.name("json")
    result = run.run("--yes", "secret", "create", name, "--from-file", str(bad), expect=EXIT_ERROR)
    assert "not valid JSON" in result.stderr and "--text" in result.stderr
    run.run("--yes", "secret", "create", name, "--from-file", str(bad), "--text")
    obj = run.name("json")
    run.sm.create_secret(Name=obj, SecretString=json.dumps({"api_key": "Json-key-eeeeeeee"}))
    plain = tmp_path / "plain.txt"
    plain.write_text("not-json-anymore-ffff")
    result = run.run("--yes", "secret", "update", obj, "--from-file", str(plain), expect=EXIT_ERROR)
    assert "holds a JSON object" in result.stderr
    assert json.loads(run.sm.get_secret_value(SecretId=obj)["SecretString"]) == {
        "api_key": "Json-key-eeeeeeee"
    }
    run.run("--yes", "secret", "update", obj, "--from-file", str(plain), "--text")


def test_trailing_newline_kept_and_said_or_stripped_on_request(run, tmp_path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("token-newline-gggggggg\n")
    kept, stripped = run.name("nl"), run.name("nl")
    result = run.run("--yes", "secret", "create", kept, "--from-file", str(path))
    assert "ends with a newline" in result.stderr
    assert run.sm.get_secret_value(SecretId=kept)["SecretString"] == "token-newline-gggggggg\n"
    run.run("--yes", "secret", "create", stripped, "--from-file", str(path), "--strip-newline")
    assert run.sm.get_secret_value(SecretId=stripped)["SecretString"] == "token-newline-gggggggg"


def test_a_value_typed_on_a_terminal_is_not_echoed(run, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []

    def prompt(text: str, hide_input: bool = False, **_: object) -> str:
        asked.append(hide_input)
        return "typed-token-hhhhhhhh"

    monkeypatch.setattr(values_module, "stdin_is_terminal", lambda: True)
    monkeypatch.setattr(values_module.click, "prompt", prompt)
    name = run.name("typed")
    run.run("--yes", "secret", "create", name, "--from-file", "-")
    assert asked == [True]
    assert run.sm.get_secret_value(SecretId=name)["SecretString"] == "typed-token-hhhhhhhh"
