"""``secretsctl rotate | status | unstick | rollback`` against the emulated AWS over HTTP, with the real
rotation handler behind it and the suite's real PostgreSQL and MariaDB."""

from __future__ import annotations

import json

import pytest

from secretsctl.errors import EXIT_ERROR, EXIT_FINDINGS
from tests.rotation.conftest import (
    create_maria_user,
    create_pg_user,
    maria_login,
    new_password,
    pg_db,
    pg_login,
    unique_user,
)
from tests.rotation.test_alternating import set_password

pytestmark = pytest.mark.db


def value(run, name: str, stage: str = "AWSCURRENT") -> dict:
    return json.loads(run.sm.get_secret_value(SecretId=name, VersionStage=stage)["SecretString"])


def stages(run, name: str) -> dict[str, list[str]]:
    return {v: s for v, s in run.sm.describe_secret(SecretId=name)["VersionIdsToStages"].items() if s}


@pytest.fixture
def pg_secret(run, pg_server) -> str:
    """A single-user PostgreSQL secret with rotation configured and rotated once (AWSPREVIOUS exists)."""
    user, password = unique_user(), new_password()
    create_pg_user(pg_server, user, password)
    name = run.name("pg")
    run.sm.create_secret(Name=name, SecretString=json.dumps(pg_server.secret(user, password)))
    run.sm.rotate_secret(
        SecretId=name, RotationLambdaARN=run.function_arn, RotationRules={"AutomaticallyAfterDays": 30}
    )
    return name


def test_rotate_wait_moves_awscurrent_and_the_new_password_logs_in(run, pg_server, pg_secret) -> None:
    before = stages(run, pg_secret)
    doc = run.json("--yes", "rotate", pg_secret, "--wait", "--timeout", "60")
    assert doc["kind"] == "RotationResult" and doc["outcome"] == "ok"
    after = stages(run, pg_secret)
    assert after[doc["versionId"]] == ["AWSCURRENT"] and doc["versionId"] not in before
    current = value(run, pg_secret)
    assert pg_login(pg_server, current["username"], current["password"])
    assert run.json("status", pg_secret, "--fail-on", "all")["failed"] == []


def test_stale_pending_found_by_status_fixed_by_unstick_then_rotate(run, pg_server, pg_secret) -> None:
    user = value(run, pg_secret)["username"]
    # Someone changed the password behind the secret's back: the next rotation fails in setSecret.
    set_password(pg_db(pg_server), user, new_password())
    result = run.run("--yes", "rotate", pg_secret, "--wait", "--timeout", "60", expect=EXIT_ERROR)
    assert "FAILED" in result.stdout
    assert "setSecret failed" in result.stdout and "password authentication failed" in result.stdout
    assert "AWSPENDING" in result.stdout  # the state left behind
    assert any("setSecret failed" in line for line in run.emulated.handler_log.lines)  # leak-checked too
    pending = next(v for v, s in stages(run, pg_secret).items() if s == ["AWSPENDING"])

    status = run.json("status", pg_secret, "--fail-on", "stale", expect=EXIT_FINDINGS)
    kinds = {f["kind"]: f for f in status["secrets"][0]["findings"]}
    assert {"stale", "failing"} <= kinds.keys() and pending in kinds["stale"]["detail"]
    assert kinds["failing"]["control"] == "SecretsManager.2"
    assert run.run("status", pg_secret, "--fail-on", "disabled").exit_code == 0
    assert "stale" in run.run("status", pg_secret, "--fail-on", "stale", expect=EXIT_FINDINGS).stdout

    refused = run.run("--yes", "rotate", pg_secret, expect=EXIT_ERROR)
    assert "previous rotation is not complete" in refused.stderr and "unstick" in refused.stderr

    before = stages(run, pg_secret)
    dry = run.json("unstick", pg_secret)
    assert dry["stalePending"] == pending and dry["applied"] is False
    assert stages(run, pg_secret) == before
    current_version = next(v for v, s in before.items() if "AWSCURRENT" in s)
    applied = run.json("--yes", "unstick", pg_secret, "--apply")
    assert applied["applied"] is True
    after = stages(run, pg_secret)
    assert pending not in after and "AWSCURRENT" in after[current_version]
    assert run.json("unstick", pg_secret)["stalePending"] is None

    # The database is put right (the secret's password again), then a rotation goes through.
    set_password(pg_db(pg_server), user, value(run, pg_secret)["password"])
    assert run.json("--yes", "rotate", pg_secret, "--wait", "--timeout", "60")["outcome"] == "ok"
    current = value(run, pg_secret)
    assert pg_login(pg_server, current["username"], current["password"])
    assert run.run("status", pg_secret, "--fail-on", "stale,failing").exit_code == 0


def test_unstick_leaves_pending_on_current_alone(run, pg_secret) -> None:
    current = next(v for v, s in stages(run, pg_secret).items() if "AWSCURRENT" in s)
    run.sm.update_secret_version_stage(SecretId=pg_secret, VersionStage="AWSPENDING", MoveToVersionId=current)
    doc = run.json("--yes", "unstick", pg_secret, "--apply")
    assert doc["stalePending"] is None and doc["applied"] is False
    assert "AWSPENDING" in stages(run, pg_secret)[current]


@pytest.fixture
def maria_alt(run, maria_server) -> tuple[str, str]:
    """An alternating-user MariaDB secret rotated once: AWSCURRENT names USER_clone, AWSPREVIOUS USER."""
    user, password = unique_user(), new_password()
    create_maria_user(maria_server, user, password)
    master = run.sm.create_secret(
        Name=run.name("master"),
        SecretString=json.dumps(maria_server.secret(maria_server.admin_user, maria_server.admin_password)),
    )["ARN"]
    name = run.name("alt")
    run.sm.create_secret(
        Name=name, SecretString=json.dumps(maria_server.secret(user, password, masterarn=master))
    )
    run.sm.rotate_secret(
        SecretId=name, RotationLambdaARN=run.function_arn, RotationRules={"AutomaticallyAfterDays": 30}
    )
    assert value(run, name)["username"] == user + "_clone"
    return name, user


def test_rollback_of_alternating_secret_previous_credentials_log_in(run, maria_server, maria_alt) -> None:
    name, user = maria_alt
    before = stages(run, name)
    cur = next(v for v, s in before.items() if "AWSCURRENT" in s)
    prev = next(v for v, s in before.items() if "AWSPREVIOUS" in s)

    dry = run.json("rollback", name)
    assert (dry["from"], dry["to"], dry["applied"]) == (cur, prev, False) and stages(run, name) == before
    assert f"user {user}_clone" in dry["plan"] and f"to {prev} (user {user})" in dry["plan"]
    run.run("--expect-account", "999999999999", "--yes", "rollback", name, "--apply", expect=EXIT_ERROR)
    assert stages(run, name) == before

    result = run.run("--yes", "rollback", name, "--apply")
    assert "account 123456789012" in result.stderr  # the write banner
    after = stages(run, name)
    assert "AWSCURRENT" in after[prev] and "AWSPREVIOUS" in after[cur]
    current = value(run, name)
    assert current["username"] == user
    assert maria_login(maria_server, current["username"], current["password"])
    # and the next rotation works from there (it resets the clone user's password)
    assert run.json("--yes", "rotate", name, "--wait", "--timeout", "60")["outcome"] == "ok"
    latest = value(run, name)
    assert latest["username"] == user + "_clone" and maria_login(
        maria_server, user + "_clone", latest["password"]
    )


def test_rollback_racing_a_rotation_leaves_the_new_version_current(run, maria_alt, monkeypatch) -> None:
    """A rotation finishing between rollback's read and its label move: AWS rejects the move (the
    label is no longer on RemoveFromVersionId), so the fresh rotation is not undone.
    https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html"""
    from secretsctl.session import AwsSession

    name, _ = maria_alt
    rotated: list[str] = []
    original = AwsSession.client

    def rotate_first(**_) -> None:
        if not rotated:
            rotated.append(run.sm.rotate_secret(SecretId=name)["VersionId"])

    def client(self, service, region=None):
        made = original(self, service, region)
        if service == "secretsmanager":
            made.meta.events.register_first(
                "before-call.secrets-manager.UpdateSecretVersionStage", rotate_first
            )
        return made

    monkeypatch.setattr(AwsSession, "client", client)
    result = run.run("--yes", "rollback", name, "--apply", expect=EXIT_ERROR)
    assert "UpdateSecretVersionStage" in result.stderr and rotated
    assert stages(run, name)[rotated[0]] == ["AWSCURRENT"]


def test_single_user_rollback_refused_with_explanation(run, pg_secret) -> None:
    before = stages(run, pg_secret)
    result = run.run("--yes", "rollback", pg_secret, "--apply", expect=EXIT_ERROR)
    assert "rotates a single user" in result.stderr and "secretsctl rotate" in result.stderr
    assert stages(run, pg_secret) == before


def test_rotate_without_wait_starts_and_reports_the_new_version(run, pg_secret) -> None:
    doc = run.json("--yes", "rotate", pg_secret)
    assert doc["kind"] == "RotationStarted" and doc["previousCurrent"] in stages(run, pg_secret)
    # the emulated AWS runs the rotation inside the call; on AWS it runs after it
    assert stages(run, pg_secret)[doc["versionId"]] == ["AWSCURRENT"]


def test_rotate_preflight_and_wrong_account(run, pg_secret) -> None:
    plain = run.name("norot")
    run.sm.create_secret(Name=plain, SecretString="token-llllllllllll")
    result = run.run("--yes", "rotate", plain, expect=EXIT_ERROR)
    assert "no rotation function configured" in result.stderr
    before = stages(run, pg_secret)
    result = run.run("--expect-account", "999999999999", "--yes", "rotate", pg_secret, expect=EXIT_ERROR)
    assert "not 999999999999" in result.stderr and stages(run, pg_secret) == before


def test_no_value_in_any_read_output(run, pg_secret) -> None:
    """Every read command, both formats, on a rotated DB secret: the fixture checks each output
    against every value the emulated AWS holds (current, previous, master passwords...)."""
    for fmt in ("table", "json"):
        for args in (
            ("secret", "ls"),
            ("secret", "versions", pg_secret),
            ("secret", "get", pg_secret),
            ("secret", "get", pg_secret, "--stage", "AWSPREVIOUS"),
            ("secret", "get", pg_secret, "--field", "password"),
            ("status",),
            ("unstick", pg_secret),
            ("rollback", pg_secret),
        ):
            run.run("-o", fmt, *args, expect=None)
        run.run("-o", fmt, "secret", "diff", pg_secret, expect=3)
    assert len(run.outputs) == 18
