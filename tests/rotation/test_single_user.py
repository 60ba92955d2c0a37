"""Single-user rotation through RotateSecret on real PostgreSQL and MariaDB servers."""

from __future__ import annotations

import pytest

from .conftest import Db, Harness, new_password, unique_user


def test_three_rotations_in_a_row(harness: Harness, db: Db) -> None:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(
        db.secret(
            user, password, dbname="postgres" if db.name == "postgres" else None, extra_key={"kept": [1, 2]}
        )
    )
    seen_passwords = {password}
    previous_current = harness.value(arn)
    for _ in range(3):
        token = harness.rotate(arn)
        versions = harness.versions(arn)
        assert versions[token] == ["AWSCURRENT"]
        current = harness.value(arn)
        previous = harness.value(arn, "AWSPREVIOUS")
        assert previous == previous_current
        assert current["password"] not in seen_passwords
        seen_passwords.add(current["password"])
        assert {k: v for k, v in current.items() if k != "password"} == {
            k: v for k, v in previous.items() if k != "password"
        }
        assert current["extra_key"] == {"kept": [1, 2]}
        assert db.login(user, current["password"])
        assert not db.login(user, previous["password"])
        assert not any("AWSPENDING" in stages for stages in versions.values())
        previous_current = current
    assert [inv.step for inv in harness.aws.invocations] == [
        "createSecret",
        "setSecret",
        "testSecret",
        "finishSecret",
    ] * 3


@pytest.mark.parametrize("step", ["createSecret", "setSecret", "testSecret", "finishSecret"])
def test_each_step_can_run_again(harness: Harness, db: Db, step: str) -> None:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    token = harness.rotate(arn)
    # Secrets Manager may deliver any step again (retries); the rotation stays correct.
    harness.invoke(arn, token, step)
    harness.invoke(arn, token, step)
    assert harness.versions(arn)[token] == ["AWSCURRENT"]
    assert db.login(user, harness.value(arn)["password"])


def test_secret_id_as_arn_like_aws_sends_it(harness: Harness, db: Db) -> None:
    """moto sends the secret's name; AWS sends the ARN. Both rotate."""
    harness.aws.secret_id_as_arn = True
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    token = harness.rotate(arn)
    assert all(inv.secret_id == arn for inv in harness.aws.invocations)
    assert harness.versions(arn)[token] == ["AWSCURRENT"]
    assert db.login(user, harness.value(arn)["password"])


@pytest.mark.parametrize(("engine", "unwanted"), [("postgres", "pymysql"), ("mariadb", "psycopg2")])
def test_only_the_needed_driver_is_imported(engine: str, unwanted: str) -> None:
    import subprocess
    import sys

    code = (
        "import sys, rotation_handlers.rotate\n"
        "from rotation_handlers.engines import engine_for\n"
        f"engine_for({engine!r})\n"
        f"assert {unwanted!r} not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
