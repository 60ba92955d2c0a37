"""The deploy-time test: with RotateImmediately=false Secrets Manager invokes only testSecret.

AWS: "if you don't immediately rotate the secret, Secrets Manager tests the rotation
configuration by running the testSecret step of the Lambda rotation function. The test
creates an AWSPENDING version of the secret and then removes it."
(https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html)
The documentation does not say whether that version holds a value (moto copies AWSCURRENT's
into it); both shapes are a configuration test, never a database login.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from devtools.aws import StepFailed
from devtools.dbservers import PostgresServer
from rotation_handlers.errors import ConfigurationError, InvalidSecretError, LoginRejected

from .conftest import Db, Harness, new_password, pg_db, unique_user


def probe(harness: Harness, arn: str) -> str:
    """RotateSecret with RotateImmediately=false, as the CDK app's rotation schedule does on deploy."""
    try:
        return harness.sm.rotate_secret(
            SecretId=arn,
            RotationLambdaARN=harness.aws.function_arn,
            RotationRules={"AutomaticallyAfterDays": 30},
            RotateImmediately=False,
        )["VersionId"]
    finally:
        harness._collect()


def created_secret(harness: Harness, db: Db, **extra: Any) -> tuple[str, str]:
    """A secret the app created: its database user does not exist (yet)."""
    user = unique_user("notyet")
    return harness.create_secret(db.secret(user, new_password(), **extra)), user


def test_probe_with_a_copied_value_checks_configuration_without_a_login(
    harness: Harness, db: Db, capfd: pytest.CaptureFixture[str]
) -> None:
    arn, _ = created_secret(harness, db)
    before_value = harness.value(arn)
    before = db.server.stats()
    probe(harness, arn)
    after = db.server.stats()
    assert [inv.step for inv in harness.aws.invocations] == ["testSecret"]
    assert harness.aws.invocations[0].error is None
    assert after["connections"] == before["connections"]
    assert after["failed_logins"] == before["failed_logins"]
    assert harness.value(arn) == before_value
    out = capfd.readouterr().out
    print(out, end="")  # the harness checks it for passwords too
    line = json.loads(next(line for line in out.splitlines() if '"testSecret ok"' in line))
    assert line["configuration_test"] is True
    assert line["database_login"] == "not attempted"
    assert line["result"].startswith("configuration test passed")


def start_rotation_without_running_it(harness: Harness, arn: str) -> str:
    real = harness.aws.handler
    harness.aws.handler = lambda event, context: None
    try:
        return harness.sm.rotate_secret(
            SecretId=arn,
            RotationLambdaARN=harness.aws.function_arn,
            RotationRules={"AutomaticallyAfterDays": 30},
        )["VersionId"]
    finally:
        harness.aws.handler = real


def test_probe_with_a_pending_version_without_a_value(harness: Harness, db: Db) -> None:
    arn, _ = created_secret(harness, db)
    token = start_rotation_without_running_it(harness, arn)
    before = db.server.stats()
    result = harness.invoke(arn, token, "testSecret")
    assert result["outcome"].startswith("configuration test passed")
    assert db.server.stats()["connections"] == before["connections"]


def test_probe_for_alternating_users_reads_the_master_secret(harness: Harness, db: Db) -> None:
    master = harness.create_secret(db.secret(db.server.admin_user, db.server.admin_password))
    arn, _ = created_secret(harness, db, masterarn=master)
    harness.counter.calls.clear()
    probe(harness, arn)
    assert harness.aws.invocations[-1].error is None
    assert harness.counter.calls["GetSecretValue"] >= 2  # pending/current and the master secret


def bad_ca_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    monkeypatch.setenv("DB_CA_BUNDLE", str(bundle))


@pytest.mark.parametrize(
    ("setup", "error", "match"),
    [
        (lambda h, db, mp, tmp: bad_ca_bundle(mp, tmp), ConfigurationError, "holds no usable CA certificate"),
        (lambda h, db, mp, tmp: mp.setenv("PASSWORD_LENGTH", "4"), ConfigurationError, "PASSWORD_LENGTH"),
        (
            lambda h, db, mp, tmp: mp.setenv("DB_CONNECT_TIMEOUT", "0"),
            ConfigurationError,
            "DB_CONNECT_TIMEOUT",
        ),
        (lambda h, db, mp, tmp: mp.setenv("ROTATION_STRATEGY", "alternating"), InvalidSecretError, "pinned"),
        (lambda h, db, mp, tmp: {"port": "not-a-port"}, InvalidSecretError, "'port' must be a number"),
        (
            lambda h, db, mp, tmp: {
                "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"
            },
            InvalidSecretError,
            "cannot be read",
        ),
        (
            lambda h, db, mp, tmp: {
                "masterarn": h.sm.create_secret(Name="m-" + uuid.uuid4().hex[:6], SecretString="[]")["ARN"]
            },
            InvalidSecretError,
            "must be a JSON object",
        ),
    ],
    ids=[
        "ca-bundle",
        "password-policy",
        "connect-timeout",
        "strategy-pin",
        "current-secret",
        "master-missing",
        "master-malformed",
    ],
)
def test_probe_fails_on_bad_configuration(
    harness: Harness,
    pg_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    setup: Any,
    error: type,
    match: str,
) -> None:
    db = pg_db(pg_server)  # the checks do not depend on the engine
    extra = setup(harness, db, monkeypatch, tmp_path) or {}
    arn = harness.create_secret(db.secret(unique_user(), new_password(), **extra))
    with pytest.raises(StepFailed) as failure:
        probe(harness, arn)
    assert failure.value.step == "testSecret"
    assert isinstance(failure.value.error, error), failure.value.error
    assert match in str(failure.value.error), failure.value.error


def test_a_real_rotations_test_secret_still_logs_in_with_the_pending_credentials(
    harness: Harness, db: Db
) -> None:
    """createSecret stored a new password that setSecret never set: testSecret fails with a rejected login."""
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    before = db.server.stats()
    with pytest.raises(LoginRejected):
        harness.invoke(arn, token, "testSecret")
    after = db.server.stats()
    assert after["connections"] - before["connections"] == 1
    harness.invoke(arn, token, "setSecret")
    harness.invoke(arn, token, "testSecret")
    harness.invoke(arn, token, "finishSecret")
    assert db.login(user, harness.value(arn)["password"])


def test_probe_with_a_reserialised_copy_of_the_current_value(harness: Harness, db: Db) -> None:
    arn, _ = created_secret(harness, db)
    token = start_rotation_without_running_it(harness, arn)
    copy = json.dumps(harness.value(arn), indent=2, sort_keys=True)
    harness.sm.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=copy, VersionStages=["AWSPENDING"]
    )
    before = db.server.stats()
    result = harness.invoke(arn, token, "testSecret")
    assert result["outcome"].startswith(
        "configuration test passed (testSecret on a pending version with a copy"
    )
    assert db.server.stats()["connections"] == before["connections"]
