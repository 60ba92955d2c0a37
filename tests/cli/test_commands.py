"""secret describe/tag/untag and the rotation schedule, over HTTP against the emulated AWS."""

from __future__ import annotations

import json

import pytest

from secretsctl import confirm as confirm_module
from secretsctl.errors import EXIT_ABORTED, EXIT_ERROR


@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.setattr(confirm_module, "stdin_is_terminal", lambda: True)


def _db(password: str) -> str:
    return json.dumps(
        {"engine": "postgres", "host": "db.example", "port": 5432, "username": "app", "password": password}
    )


def test_describe_shows_metadata_never_a_value(run, api_calls) -> None:
    name = run.name("desc")
    run.sm.create_secret(
        Name=name,
        SecretString="token-describe-aaaaaaaa",
        Tags=[{"Key": "team", "Value": "payments"}],
        AddReplicaRegions=[{"Region": "eu-west-1"}],
    )
    doc = run.json("secret", "describe", name)
    assert doc["kind"] == "SecretDescription" and doc["schemaVersion"] == 1
    assert doc["tags"] == {"team": "payments"} and doc["kmsKeyId"] == "aws/secretsmanager"
    assert [r["region"] for r in doc["replicas"]] == ["eu-west-1"]
    assert doc["rotationEnabled"] is False and "lastAccessed" in doc
    assert "eu-west-1" in run.run("secret", "describe", name).stdout
    assert api_calls.counts.get("secretsmanager.GetSecretValue", 0) == 0


def test_tag_and_untag_confirm_and_write(run, terminal) -> None:
    name = run.name("tag")
    run.sm.create_secret(Name=name, SecretString="token-tag-bbbbbbbbbb")
    run.run("secret", "tag", name, "team=orders", input="n\n", expect=EXIT_ABORTED)
    assert (
        "Tags" not in run.sm.describe_secret(SecretId=name)
        or not run.sm.describe_secret(SecretId=name)["Tags"]
    )
    run.run("secret", "tag", name, "team=orders", "env=prod", "--yes")
    assert {t["Key"]: t["Value"] for t in run.sm.describe_secret(SecretId=name)["Tags"]} == {
        "team": "orders",
        "env": "prod",
    }
    assert "nothing to do" in run.run("secret", "tag", name, "team=orders").stderr
    run.run("secret", "tag", name, "novalue", "--yes", expect=2)
    run.run("secret", "untag", name, "env", "--yes")
    assert [t["Key"] for t in run.sm.describe_secret(SecretId=name)["Tags"]] == ["team"]


def test_rotation_enable_every_and_cron_disable(run, api_calls) -> None:
    name = run.name("sched")
    run.sm.create_secret(Name=name, SecretString=_db("Sched-pw-cccccccccc"))
    result = run.run("--yes", "rotation", "enable", name, "--every", "30d", expect=EXIT_ERROR)
    assert "pass --function" in result.stderr
    current = run.sm.get_secret_value(SecretId=name)["VersionId"]
    doc = run.json("--yes", "rotation", "enable", name, "--every", "30d", "--function", run.function_arn)
    assert doc["rules"] == {"AutomaticallyAfterDays": 30} and doc["rotatedNow"] is False
    described = run.sm.describe_secret(SecretId=name)
    assert described["RotationEnabled"] is True
    assert run.sm.get_secret_value(SecretId=name)["VersionId"] == current  # not rotated now
    run.json("--yes", "rotation", "enable", name, "--cron", "0 4 ? * SUN *", "--window", "3h")
    # the emulated AWS keeps no ScheduleExpression: check what was asked of it
    sent = api_calls.params["secretsmanager.RotateSecret"][-1]
    assert sent["RotationRules"] == {"ScheduleExpression": "cron(0 4 ? * SUN *)", "Duration": "3h"}
    assert sent["RotateImmediately"] is False
    run.run("--yes", "rotation", "enable", name, "--every", "2h", expect=2)
    run.run("--yes", "rotation", "disable", name)
    assert not run.sm.describe_secret(SecretId=name).get("RotationEnabled")
    assert "already off" in run.run("--yes", "rotation", "disable", name).stderr


def test_rotation_cancel_needs_a_rotation_in_progress(run) -> None:
    name = run.name("cancel")
    run.sm.create_secret(Name=name, SecretString=_db("Cancel-pw-dddddddd"))
    run.run("--yes", "rotation", "cancel", name, expect=EXIT_ERROR)
    run.sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN=run.function_arn,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    pending = run.sm.put_secret_value(
        SecretId=name, SecretString=_db("Pending-pw-eeeeeeee"), VersionStages=["AWSPENDING"]
    )["VersionId"]
    doc = run.json("--yes", "rotation", "cancel", name)
    assert doc["pendingVersion"] == pending
    assert not run.sm.describe_secret(SecretId=name).get("RotationEnabled")
