"""The desired-state file: validation with paths, values from env/file/stdin, no value in any message."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from secretsctl.desired_state import DesiredStateError, load_desired_state

EXAMPLE = """
paths: [/app/orders/]
parameters:
  /app/orders/db-host:
    value: orders.db.internal
  /app/orders/api-key:
    type: SecureString
    value_from: env:ORDERS_API_KEY
    kms_key: alias/orders
    description: Third-party API key
    tags: {owner: orders}
  /app/orders/feature-flags:
    type: StringList
    value: [a, b]
    tier: Advanced
"""


def write(tmp_path: Path, text: str, name: str = "state.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path, **kwargs) -> list[str]:
    with pytest.raises(DesiredStateError) as info:
        load_desired_state(path, **kwargs)
    return info.value.problems


def test_the_documented_example_loads(tmp_path) -> None:
    state = load_desired_state(write(tmp_path, EXAMPLE), env={"ORDERS_API_KEY": "k-123456"})
    host, key, flags = (state.parameters[f"/app/orders/{n}"] for n in ("db-host", "api-key", "feature-flags"))
    assert (host.type, host.value, host.tier, host.tags) == ("String", "orders.db.internal", None, None)
    assert (key.type, key.value, key.value_source, key.kms_key) == (
        "SecureString",
        "k-123456",
        "env:ORDERS_API_KEY",
        "alias/orders",
    )
    assert (flags.value, flags.tier) == ("a,b", "Advanced")
    assert (
        state.prunable("/app/orders/old")
        and not state.prunable("/app/ordersx")
        and not state.prunable("/other")
    )
    assert "k-123456" not in repr(state)


def test_json_is_accepted_too(tmp_path) -> None:
    state = load_desired_state(write(tmp_path, '{"parameters": {"/a/b": {"value": "x"}}}', "s.json"))
    assert state.parameters["/a/b"].value == "x" and state.paths == ()


def test_every_problem_is_reported_with_its_path_and_no_value(tmp_path) -> None:
    text = """
paths: [/ok/, nope]
parameters:
  /a/inline:
    type: SecureString
    value: hunter2-inline-secret
  /a/both: {value: x, value_from: "env:X"}
  /a/neither: {type: String}
  /a/list: {value: [a, b]}
  /a/comma: {type: StringList, value: ["a,b"]}
  /a/kms: {value: x, kms_key: alias/k}
  /a/badfrom: {value_from: "http://x"}
  /a/type: {value: x, type: Secure}
  /a/pattern: {value: hunter2-pattern-secret, allowed_pattern: "^[0-9]+$"}
  /aws/reserved: {value: x}
  "bad name!": {value: x}
  /a/missing-env: {type: SecureString, value_from: "env:NOT_SET_ANYWHERE"}
  /a/missing-file: {type: SecureString, value_from: "file:does-not-exist"}
"""
    found = problems(write(tmp_path, text), env={})
    joined = "\n".join(found)
    expected = [
        "paths[1]: must be a hierarchy path",
        "parameters['/a/inline'].value: a SecureString value may not be written in a plain file",
        "parameters['/a/both']: give exactly one of 'value' and 'value_from'",
        "parameters['/a/neither']: give exactly one of 'value' and 'value_from'",
        "parameters['/a/list']: a list value needs type: StringList",
        "parameters['/a/comma']: StringList items cannot contain ','",
        "parameters['/a/kms']: kms_key applies to SecureString parameters only",
        "parameters['/a/badfrom'].value_from: must be env:NAME, file:PATH or stdin:",
        "parameters['/a/type'].type: Input should be 'String', 'StringList' or 'SecureString'",
        "parameters['/a/pattern']: the value does not match allowed_pattern",
        "parameters['/aws/reserved']: names beginning with 'aws' or 'ssm' are reserved by AWS",
        "parameters['bad name!']: name may contain only",
        "parameters['/a/missing-env'].value_from: environment variable NOT_SET_ANYWHERE is not set",
        "parameters['/a/missing-file'].value_from: cannot read",
    ]
    for text_start in expected:
        assert any(p.startswith(text_start) for p in found), f"missing: {text_start}\n{joined}"
    assert "hunter2" not in joined


def test_yaml_syntax_error_names_the_line(tmp_path) -> None:
    found = problems(write(tmp_path, "parameters:\n  /a: {value: x\n  /b: y\n"))
    assert found[0].startswith("line 3, column") and "not valid YAML/JSON" in found[0]


def test_yaml_is_loaded_safely(tmp_path) -> None:
    found = problems(write(tmp_path, "parameters: !!python/object/apply:os.system ['true']\n"))
    assert "not valid YAML/JSON" in found[0]


def test_values_from_file_and_stdin(tmp_path) -> None:
    (tmp_path / "key.txt").write_text("from-file-value\n")
    text = """
parameters:
  /a/file: {type: SecureString, value_from: "file:key.txt"}
  /a/stdin: {type: SecureString, value_from: "stdin:"}
"""
    state = load_desired_state(write(tmp_path, text), stdin=io.StringIO("from-stdin-value\n"))
    assert state.parameters["/a/file"].value == "from-file-value"
    assert state.parameters["/a/stdin"].value == "from-stdin-value"
    two = text + '  /a/stdin2: {type: SecureString, value_from: "stdin:"}\n'
    assert "only one parameter can read stdin:" in problems(write(tmp_path, two), stdin=io.StringIO("x"))[0]


def test_value_size_limit_follows_the_tier(tmp_path) -> None:
    big = "x" * 5000
    text = f"parameters:\n  /a/std: {{value: {big}}}\n  /a/adv: {{value: {big}, tier: Advanced}}\n"
    found = problems(write(tmp_path, text))
    assert found == ["parameters['/a/std']: the value is larger than 4096 bytes (the Standard tier limit)"]


def test_an_encrypted_file_may_hold_secure_string_values(tmp_path) -> None:
    """A SOPS file is decrypted in memory; the decryptor stands in for the `sops` binary here."""
    sops = "sops: {version: 3.9.0}\n"
    encrypted = "parameters:\n  /a/k: {type: SecureString, value: 'ENC[AES256_GCM,data:...]'}\n" + sops
    plain = "parameters:\n  /a/k: {type: SecureString, value: decrypted-value}\n" + sops
    path = write(tmp_path, encrypted)
    state = load_desired_state(path, decrypt=lambda p: plain)
    assert state.encrypted and state.parameters["/a/k"].value == "decrypted-value"
