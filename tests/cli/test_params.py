"""``secretsctl param`` against the emulated AWS over HTTP: plan/apply, concurrency, masking, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secretsctl import context
from secretsctl.errors import EXIT_ABORTED, EXIT_DIFFERENT, EXIT_ERROR
from tests.cli.params_support import param_run, prefix, value  # noqa: F401

pytestmark = pytest.mark.usefixtures("param_run")


def write(tmp_path: Path, doc: dict, name: str = "state.yaml") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if name.endswith(".json") else _yaml(doc))
    return str(path)


def _yaml(doc: dict) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture
def ssm(run):
    return run.emulated.client("ssm")


def tags(ssm, name: str) -> dict[str, str]:
    tag_list = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    return {t["Key"]: t["Value"] for t in tag_list}


def describe(ssm, name: str) -> dict:
    return ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]


def test_plan_apply_plan_round_trip_with_prune(run, ssm, tmp_path, monkeypatch) -> None:
    p = prefix()
    api_key, host, changed, kept, flags = value("key"), value("host"), value("new"), value("kept"), value("f")
    ssm.put_parameter(Name=f"{p}changed", Value=value("old"), Type="String")
    ssm.put_parameter(Name=f"{p}kept", Value=kept, Type="String")
    ssm.put_parameter(Name=f"{p}stale", Value=value("stale"), Type="String")
    ssm.put_parameter(Name="/outside/" + p.strip("/"), Value=value("out"), Type="String")
    monkeypatch.setenv("ORDERS_API_KEY", api_key)
    doc = {
        "paths": [p],
        "parameters": {
            f"{p}db-host": {"value": host},
            f"{p}api-key": {
                "type": "SecureString",
                "value_from": "env:ORDERS_API_KEY",
                "kms_key": "alias/orders",
                "description": "Third-party API key",
                "tags": {"owner": "orders"},
            },
            f"{p}flags": {"type": "StringList", "value": [flags, "b"], "tier": "Advanced"},
            f"{p}changed": {"value": changed},
            f"{p}kept": {"value": kept},
        },
    }
    file = write(tmp_path, doc)

    result = run.run("param", "plan", file, expect=EXIT_DIFFERENT)
    lines = result.stdout.splitlines()
    assert f"+ create    {p}api-key (SecureString)" in lines
    assert f"~ modify    {p}changed (value)" in lines
    assert f"= unchanged {p}kept" in lines
    assert not any(line.startswith("-") for line in lines)  # deletes only with --prune
    assert "1 parameter(s) under the file's paths are not in the file" in result.stderr

    pruned = run.json("param", "plan", file, "--prune", expect=EXIT_DIFFERENT)
    assert pruned["schemaVersion"] == 1 and pruned["kind"] == "ParameterPlan"
    assert pruned["summary"] == {"create": 3, "modify": 1, "unchanged": 1, "delete": 1}
    assert [c["name"] for c in pruned["changes"] if c["action"] == "delete"] == [f"{p}stale"]
    # One listing of the path (metadata) and one GetParameters for the two existing declared names.
    assert pruned["apiCalls"] == {"total": 2, "byOperation": {"DescribeParameters": 1, "GetParameters": 1}}

    applied = run.run("param", "apply", file, "--prune", "--yes")
    assert "applied: - delete" in applied.stdout and "banner" not in applied.stdout
    assert "param apply | account 123456789012 | region us-east-1" in applied.stderr

    key = ssm.get_parameter(Name=f"{p}api-key", WithDecryption=True)["Parameter"]
    assert key["Value"] == api_key and key["Type"] == "SecureString"
    meta = describe(ssm, f"{p}api-key")
    assert meta["KeyId"] == "alias/orders" and meta["Description"] == "Third-party API key"
    assert tags(ssm, f"{p}api-key") == {"owner": "orders"}
    assert describe(ssm, f"{p}flags")["Tier"] == "Advanced"
    assert ssm.get_parameter(Name=f"{p}flags")["Parameter"]["Value"] == f"{flags},b"
    assert ssm.get_parameter(Name=f"{p}changed")["Parameter"]["Value"] == changed
    assert describe(ssm, f"{p}kept")["Version"] == 1  # unchanged: not rewritten
    assert not ssm.get_parameters(Names=[f"{p}stale"])["Parameters"]
    assert ssm.get_parameters(Names=["/outside/" + p.strip("/")])["Parameters"]  # outside paths: kept

    again = run.run("param", "plan", file, "--prune")  # exit 0: nothing to do
    assert "Plan: 0 to create, 0 to modify, 0 to delete, 5 unchanged." in again.stdout
    assert "No changes." in run.run("param", "apply", file, "--prune").stdout  # no prompt needed


def test_modify_each_field_and_tags_without_a_new_version(run, ssm, tmp_path) -> None:
    p = prefix()
    v = value("v")
    ssm.put_parameter(
        Name=f"{p}a",
        Value=v,
        Type="String",
        Tags=[{"Key": "old", "Value": "1"}, {"Key": "cost", "Value": "2"}, {"Key": "team", "Value": "x"}],
    )
    ssm.put_parameter(Name=f"{p}b", Value=v, Type="String", Description="before")
    doc = {
        "parameters": {
            f"{p}a": {"value": v, "tags": {"team": "orders"}},
            f"{p}b": {"value": v, "description": "after", "allowed_pattern": "^[a-z0-9-]+$"},
        }
    }
    plan = run.json("param", "plan", write(tmp_path, doc), expect=EXIT_DIFFERENT)
    fields = {c["name"]: c.get("fields") for c in plan["changes"]}
    assert fields == {f"{p}a": ["tags"], f"{p}b": ["description", "allowed_pattern"]}
    # every tag apply removes is in the plan, not only "tags"
    tag_plan = next(c["tags"] for c in plan["changes"] if c["name"] == f"{p}a")
    assert tag_plan == {"add": [], "change": ["team"], "remove": ["cost", "old"]}
    table = run.run("param", "plan", write(tmp_path, doc), expect=EXIT_DIFFERENT).stdout
    assert "tags: ~team -cost -old" in table
    doc_out = run.json("--yes", "param", "apply", write(tmp_path, doc))
    assert doc_out["applied"] == [f"{p}a", f"{p}b"]
    assert "PutParameter" in doc_out["apiCalls"]["byOperation"]
    assert doc_out["apiCalls"]["byOperation"]["PutParameter"] == 1  # tags alone write no version
    assert tags(ssm, f"{p}a") == {"team": "orders"} and describe(ssm, f"{p}a")["Version"] == 1
    assert describe(ssm, f"{p}b")["Description"] == "after"


def test_advanced_tier_is_never_downgraded(run, ssm, tmp_path) -> None:
    p = prefix()
    ssm.put_parameter(Name=f"{p}big", Value=value("a"), Type="String", Tier="Advanced")
    new = value("b")
    file = write(tmp_path, {"parameters": {f"{p}big": {"value": new, "tier": "Standard"}}})
    result = run.run("param", "plan", file, expect=EXIT_DIFFERENT)
    assert "cannot change it back to Standard" in result.stdout and f"{p}big (value)" in result.stdout
    run.run("--yes", "param", "apply", file)
    assert describe(ssm, f"{p}big")["Tier"] == "Advanced"
    assert ssm.get_parameter(Name=f"{p}big")["Parameter"]["Value"] == new


def test_apply_stops_when_a_parameter_changed_after_the_plan(run, ssm, tmp_path, monkeypatch) -> None:
    """Another writer changes the parameter while the operator reads the plan: nothing is overwritten."""
    p = prefix()
    theirs = value("theirs")
    ssm.put_parameter(Name=f"{p}a", Value=value("a0"), Type="String")
    ssm.put_parameter(Name=f"{p}b", Value=value("b0"), Type="String")
    doc = {"parameters": {f"{p}a": {"value": value("a1")}, f"{p}b": {"value": value("b1")}}}

    def someone_writes_during_the_prompt(question: str, yes: bool, **_: object) -> None:
        ssm.put_parameter(Name=f"{p}a", Value=theirs, Type="String", Overwrite=True)

    monkeypatch.setattr(context, "confirm", someone_writes_during_the_prompt)
    result = run.run("param", "apply", write(tmp_path, doc), expect=EXIT_ERROR)
    assert f"{p}a changed after the plan was shown (version 1 -> 2" in result.stderr
    assert "0 of 2 change(s) applied" in result.stderr
    assert ssm.get_parameter(Name=f"{p}a")["Parameter"]["Value"] == theirs  # theirs kept
    assert describe(ssm, f"{p}b")["Version"] == 1  # stopped: nothing after it written


def test_apply_refuses_to_overwrite_a_parameter_created_after_the_plan(
    run, ssm, tmp_path, monkeypatch
) -> None:
    p = prefix()
    theirs = value("theirs")
    doc = {"parameters": {f"{p}new": {"value": value("mine")}}}

    def someone_creates_it(question: str, yes: bool, **_: object) -> None:
        ssm.put_parameter(Name=f"{p}new", Value=theirs, Type="String")

    monkeypatch.setattr(context, "confirm", someone_creates_it)
    result = run.run("param", "apply", write(tmp_path, doc), expect=EXIT_ERROR)
    assert f"{p}new was created by" in result.stderr and "not overwritten" in result.stderr
    assert ssm.get_parameter(Name=f"{p}new")["Parameter"]["Value"] == theirs


def test_secret_values_from_env_file_and_stdin(run, ssm, tmp_path, monkeypatch) -> None:
    p = prefix()
    from_env, from_file, from_stdin = value("env"), value("file"), value("stdin")
    monkeypatch.setenv("PARAM_TEST_SECRET", from_env)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(from_file + "\n")
    secret_file.chmod(0o600)
    doc = {
        "parameters": {
            f"{p}env": {"type": "SecureString", "value_from": "env:PARAM_TEST_SECRET"},
            f"{p}file": {"type": "SecureString", "value_from": "file:secret.txt"},  # relative to the file
            f"{p}stdin": {"type": "SecureString", "value_from": "stdin:"},
        }
    }
    file = write(tmp_path, doc)
    result = run.run("--yes", "param", "apply", file, input=from_stdin + "\n")
    assert result.stdout.count("applied: + create") == 3
    got = ssm.get_parameters(Names=[f"{p}env", f"{p}file", f"{p}stdin"], WithDecryption=True)["Parameters"]
    assert {g["Name"]: g["Value"] for g in got} == {
        f"{p}env": from_env,
        f"{p}file": from_file,
        f"{p}stdin": from_stdin,
    }
    assert run.run("param", "plan", file, input=from_stdin + "\n").exit_code == 0


def test_invalid_file_lists_every_problem_and_writes_nothing(run, ssm, tmp_path) -> None:
    p = prefix()
    doc = {
        "paths": ["relative/"],
        "parameters": {
            f"{p}key": {"type": "SecureString", "value": value("inline")},
            f"{p}host": {"value": "x", "colour": "red"},
            f"{p}other": {"value": "x", "kms_key": "alias/k"},
        },
    }
    result = run.run("--yes", "param", "apply", write(tmp_path, doc), expect=EXIT_ERROR)
    assert "paths[0]: must be a hierarchy path" in result.stderr
    assert (
        f"parameters['{p}key'].value: a SecureString value may not be written in a plain file"
        in result.stderr
    )
    assert "value_from" in result.stderr
    assert f"parameters['{p}host'].colour: Extra inputs are not permitted" in result.stderr
    assert f"parameters['{p}other']: kms_key applies to SecureString parameters only" in result.stderr
    assert not ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Values": [p.rstrip("/")]}])[
        "Parameters"
    ]


def test_apply_without_terminal_or_yes_is_refused(run, ssm, tmp_path) -> None:
    p = prefix()
    result = run.run(
        "param", "apply", write(tmp_path, {"parameters": {f"{p}x": {"value": value()}}}), expect=1
    )
    assert "no terminal to confirm on; pass --yes" in result.stderr
    assert not ssm.get_parameters(Names=[f"{p}x"])["Parameters"]


def test_ls_get_history_diff_mask_values(run, ssm) -> None:
    p = prefix()
    name = f"{p}db/password"
    v1, v2 = value("one"), value("two-longer")
    ssm.put_parameter(Name=name, Value=v1, Type="SecureString")
    ssm.put_parameter(Name=name, Value=v2, Type="SecureString", Overwrite=True)
    ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=["previous"])

    listed = run.json("param", "ls", p, "--recursive")
    assert [(r["name"], r["type"], r["version"]) for r in listed["parameters"]] == [(name, "SecureString", 2)]
    assert run.json("param", "ls", p)["parameters"] == []  # one level only without --recursive

    got = run.json("param", "get", name)
    assert got["value"] == {"masked": True, "length": len(v2)} and got["version"] == 2
    assert f"<masked: {len(v1)} chars>" in run.run("param", "get", name, "--label", "previous").stdout
    assert run.json("param", "get", name, "--version", "1", "--reveal")["value"] == v1

    hist = run.json("param", "history", name)
    assert [(h["version"], h["labels"]) for h in hist["versions"]] == [(2, []), (1, ["previous"])]

    diff = run.json("param", "diff", name, "previous", "2", expect=EXIT_DIFFERENT)
    assert diff["differences"] == [
        {"field": "value", "a": {"masked": True, "length": len(v1)}, "b": {"masked": True, "length": len(v2)}}
    ]
    table = run.run("param", "diff", name, "1", "2", expect=EXIT_DIFFERENT).stdout
    assert f"<masked: {len(v1)} chars>" in table
    assert v2 in run.run("param", "diff", name, "1", "2", "--reveal", expect=EXIT_DIFFERENT).stdout
    assert "identical" in run.run("param", "diff", name, "2", "2").stdout  # exit 0

    missing = run.run("param", "get", f"{p}nope", expect=EXIT_ERROR)
    assert f"parameter {p}nope not found" in missing.stderr
    assert "no label nolabel" in run.run("param", "diff", name, "1", "nolabel", expect=EXIT_ERROR).stderr
    assert run.run("param", "get", name, "--version", "1", "--label", "x", expect=2).exit_code == 2


def test_answering_no_at_the_prompt_exits_5_and_writes_nothing(run, ssm, tmp_path, monkeypatch) -> None:
    from secretsctl import confirm as confirm_module

    p = prefix()
    monkeypatch.setattr(confirm_module, "stdin_is_terminal", lambda: True)
    file = write(tmp_path, {"parameters": {f"{p}x": {"value": value()}}})
    result = run.run("param", "apply", file, input="n\n", expect=EXIT_ABORTED)
    assert "Apply 1 change(s) in us-east-1?" in result.stderr
    assert not ssm.get_parameters(Names=[f"{p}x"])["Parameters"]


def test_a_type_change_is_refused_before_anything_is_written(run, ssm, tmp_path, monkeypatch) -> None:
    """AWS refuses PutParameter that changes a type (HierarchyTypeMismatchException); moto would allow it."""
    p = prefix()
    ssm.put_parameter(Name=f"{p}token", Value=value("plain"), Type="String")
    monkeypatch.setenv("PARAM_TEST_TOKEN", value("secure"))
    doc = {
        "parameters": {
            f"{p}token": {"type": "SecureString", "value_from": "env:PARAM_TEST_TOKEN"},
            f"{p}other": {"value": value("other")},
        }
    }
    file = write(tmp_path, doc)
    plan = run.run("param", "plan", file, expect=EXIT_DIFFERENT).stdout
    assert f"~ modify    {p}token (type, value)" in plan
    assert "cannot change a parameter's type (String -> SecureString" in plan
    assert f"`secretsctl param delete {p}token`" in plan  # a command the tool has
    result = run.run("--yes", "param", "apply", file, expect=EXIT_ERROR)
    assert f"nothing written: Parameter Store cannot change the type of {p}token" in result.stderr
    assert describe(ssm, f"{p}token")["Type"] == "String"
    assert not ssm.get_parameters(Names=[f"{p}other"])["Parameters"]


def test_an_empty_description_in_the_file_clears_it(run, ssm, tmp_path) -> None:
    p = prefix()
    v = value()
    ssm.put_parameter(Name=f"{p}d", Value=v, Type="String", Description="to be cleared")
    file = write(tmp_path, {"parameters": {f"{p}d": {"value": v, "description": ""}}})
    run.run("--yes", "param", "apply", file)
    assert describe(ssm, f"{p}d").get("Description", "") == ""
    run.run("param", "plan", file)  # converged: exit 0


def test_ls_without_recursive_hints_at_deeper_parameters(run, ssm) -> None:
    p = prefix()
    ssm.put_parameter(Name=f"{p}deep/one", Value=value("d"), Type="String")
    top = p.rstrip("/")
    result = run.run("param", "ls", top)
    assert f"`secretsctl param ls {top} -r` lists them" in result.stderr
    assert f"{p}deep/one" in run.run("param", "ls", top, "-r").stdout
