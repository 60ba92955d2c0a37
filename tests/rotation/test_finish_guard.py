"""finishSecret moves AWSCURRENT only onto a version whose credentials were tested.

Secrets Manager invokes finishSecret after testSecret succeeded, but a late or repeated
invocation, or one made by hand, can reach it without that: after the deploy-time test
(RotateSecret with RotateImmediately=false runs only testSecret on a fresh AWSPENDING version,
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html), or after a
createSecret whose password setSecret never set. Moving AWSCURRENT there would leave the
application with no value or with a password the database does not know.

A successful testSecret is remembered by the Lambda container that ran it (the version is
immutable, so the mark holds for as long as the container caches the version). A finishSecret
in another container, or after the cache expired, proves the pending credentials itself with
testSecret's own check before moving anything.
"""

from __future__ import annotations

import json

import pytest

from rotation_handlers import secrets_manager
from rotation_handlers.errors import LoginRejected, RotationStateError

from .conftest import Db, Harness, new_password, unique_user
from .test_alternating import make_app
from .test_deploy_probe import created_secret, start_rotation_without_running_it


def single_user_app(harness: Harness, db: Db) -> tuple[str, str]:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    return harness.create_secret(db.secret(user, password)), password


def test_finish_refuses_the_deploy_probes_version_without_a_value(harness: Harness, db: Db) -> None:
    arn, _ = created_secret(harness, db)
    before = harness.value(arn)
    token = start_rotation_without_running_it(harness, arn)  # AWSPENDING with no value, as on AWS
    harness.invoke(arn, token, "testSecret")  # the configuration test passes without a login
    with pytest.raises(RotationStateError) as failure:
        harness.invoke(arn, token, "finishSecret")
    assert "has no value" in str(failure.value), failure.value
    assert "AWSCURRENT was not moved" in str(failure.value), failure.value
    assert harness.value(arn) == before
    assert "AWSCURRENT" not in harness.versions(arn)[token]


def test_finish_refuses_a_copied_probe_value_that_does_not_log_in(harness: Harness, db: Db) -> None:
    """moto's probe version holds a copy of AWSCURRENT; the user does not exist yet, so the copy's
    credentials do not log in and cannot become AWSCURRENT through finishSecret."""
    arn, _ = created_secret(harness, db)
    before = harness.value(arn)
    token = start_rotation_without_running_it(harness, arn)
    harness.sm.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(before), VersionStages=["AWSPENDING"]
    )
    harness.invoke(arn, token, "testSecret")
    with pytest.raises(LoginRejected, match="AWSCURRENT was not moved: no testSecret of version"):
        harness.invoke(arn, token, "finishSecret")
    assert "AWSCURRENT" not in harness.versions(arn)[token]
    assert harness.value(arn) == before


@pytest.mark.parametrize("strategy", ["single", "alternating"])
def test_finish_without_set_and_test_keeps_the_working_credentials(
    harness: Harness, db: Db, strategy: str
) -> None:
    """createSecret stored a new password that setSecret never set; finishSecret is invoked next."""
    arn = single_user_app(harness, db)[0] if strategy == "single" else make_app(harness, db)[0]
    before = harness.value(arn)
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    with pytest.raises(LoginRejected, match="AWSCURRENT was not moved: no testSecret of version"):
        harness.invoke(arn, token, "finishSecret")
    assert harness.value(arn) == before
    assert db.login(before["username"], before["password"])
    # The rotation itself is intact: Secrets Manager's next attempts finish it.
    for step in ("setSecret", "testSecret", "finishSecret"):
        harness.invoke(arn, token, step)
    after = harness.value(arn)
    assert after["password"] != before["password"]
    assert db.login(after["username"], after["password"])


def test_finish_in_a_new_container_proves_the_login_itself(harness: Harness, db: Db) -> None:
    """In the container that ran testSecret finishSecret logs in to nothing; in a new container it
    logs in once with the pending credentials (no failed login) before moving AWSCURRENT."""
    for cold, expected in ((False, 0), (True, 1)):
        arn, _ = single_user_app(harness, db)
        token = start_rotation_without_running_it(harness, arn)
        for step in ("createSecret", "setSecret", "testSecret"):
            harness.invoke(arn, token, step)
        if cold:
            secrets_manager.VERSION_CACHE.clear()
        before = db.server.stats()
        harness.invoke(arn, token, "finishSecret")
        after = db.server.stats()
        assert after["connections"] - before["connections"] == expected, cold
        assert after["failed_logins"] == before["failed_logins"]
        assert harness.versions(arn)[token] == ["AWSCURRENT"]
        assert db.login(harness.value(arn)["username"], harness.value(arn)["password"])
