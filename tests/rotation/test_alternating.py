"""Alternating-user rotation through RotateSecret on real PostgreSQL and MariaDB servers."""

from __future__ import annotations

import json
from typing import Any

import psycopg2
import pymysql
import pytest
from psycopg2 import sql

from devtools.aws import StepFailed
from rotation_handlers.engines.mysql import MariaDBEngine
from rotation_handlers.engines.postgres import PostgresEngine
from rotation_handlers.engines.users import UserAdmin, alternate_name, user_admin_for
from rotation_handlers.errors import DatabaseError, InvalidSecretError, LoginRejected

from .conftest import Db, Harness, new_password, unique_user
from .test_gate_and_input import assert_rotation_fails_cleanly


# -- helpers ----------------------------------------------------------------------------------------
def admin_for(db: Db) -> UserAdmin:
    return user_admin_for(PostgresEngine() if db.name == "postgres" else MariaDBEngine())


def master_secret(harness: Harness, db: Db, **extra: Any) -> str:
    server = db.server
    return harness.create_secret(db.secret(server.admin_user, server.admin_password, **extra))


def privileges(db: Db, user: str) -> Any:
    conn = db.server.connect_super()
    try:
        return admin_for(db).privileges(conn, user)
    finally:
        conn.close()


def assert_same_privileges(db: Db, user: str) -> None:
    mine, theirs = privileges(db, user), privileges(db, alternate_name(user))
    assert mine == theirs, (user, mine, theirs)


def super_sql(db: Db, *statements: str, params: tuple[Any, ...] | None = None) -> list[Any]:
    conn = db.server.connect_super()
    rows: list[Any] = []
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, params)
                rows = list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()
    return rows


def user_exists(db: Db, user: str) -> bool:
    if db.name == "postgres":
        return bool(super_sql(db, "SELECT 1 FROM pg_roles WHERE rolname = %s", params=(user,)))
    return bool(super_sql(db, "SELECT 1 FROM mysql.user WHERE User = %s", params=(user,)))


def set_password(db: Db, user: str, password: str, host: str = "%") -> None:
    if db.name == "postgres":
        conn = db.server.connect_super()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password))
                )
        finally:
            conn.close()
    else:
        super_sql(db, "ALTER USER %s@%s IDENTIFIED BY %s", params=(user, host, password))


def connect_as(db: Db, value: dict[str, Any], dbname: str | None = None) -> Any:
    if db.name == "postgres":
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=db.server.port,
            user=value["username"],
            password=value["password"],
            dbname=dbname or "postgres",
            sslmode="require",
            connect_timeout=5,
        )
        conn.autocommit = True
        return conn
    return pymysql.connect(
        host="127.0.0.1",
        port=db.server.port,
        user=value["username"],
        password=value["password"],
        ssl={"ca": str(db.server.tls.ca_cert)},
        autocommit=True,
        connect_timeout=5,
    )


def run_as(
    db: Db, value: dict[str, Any], *statements: Any, dbname: str | None = None, params: Any = None
) -> list[Any]:
    conn = connect_as(db, value, dbname)
    rows: list[Any] = []
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, params)
                rows = list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()
    return rows


def make_app(harness: Harness, db: Db, user: str | None = None, **extra: Any) -> tuple[str, str, str]:
    """A user with some privileges and an alternating secret for it: (arn, user, schema/db name)."""
    user = user or unique_user()
    password = new_password()
    db.make_user(user, password)
    place = "d_" + user.lower().replace(" ", "_").replace("'", "")[:20]
    if db.name == "postgres":
        super_sql(
            db,
            f'DROP SCHEMA IF EXISTS "{place}" CASCADE',
            f'CREATE SCHEMA "{place}" AUTHORIZATION "{user}"',
            f'CREATE TABLE "{place}".owned (id int)',
            f'ALTER TABLE "{place}".owned OWNER TO "{user}"',
            f'GRANT ALL ON SCHEMA public TO "{user}"',
        )
    else:
        super_sql(
            db,
            f"DROP DATABASE IF EXISTS `{place}`",
            f"CREATE DATABASE `{place}`",
            f"CREATE TABLE `{place}`.t (id int)",
        )
        grant_maria(db, f"SELECT, INSERT, UPDATE ON `{place}`.* TO %s@%s WITH GRANT OPTION", user)
    master = master_secret(harness, db)
    dbname = {"dbname": "postgres"} if db.name == "postgres" else {}
    arn = harness.create_secret(db.secret(user, password, masterarn=master, **dbname, **extra))
    return arn, user, place


def grant_maria(db: Db, statement: str, user: str, host: str = "%") -> None:
    super_sql(
        db, "GRANT " + statement if not statement.startswith("GRANT") else statement, params=(user, host)
    )


# -- the happy path ---------------------------------------------------------------------------------
def test_four_rotations_alternate_and_keep_previous_working(harness: Harness, db: Db) -> None:
    arn, user, _ = make_app(harness, db, extra_key={"kept": [1, 2]})
    original = harness.value(arn)
    history = [original]
    for n in range(4):
        token = harness.rotate(arn)
        versions = harness.versions(arn)
        assert versions[token] == ["AWSCURRENT"]
        assert not any("AWSPENDING" in s for s in versions.values())
        current, previous = harness.value(arn), harness.value(arn, "AWSPREVIOUS")
        assert previous == history[-1]
        assert current["username"] == (user + "_clone" if n % 2 == 0 else user)
        assert {k: v for k, v in current.items() if k not in ("username", "password")} == {
            k: v for k, v in original.items() if k not in ("username", "password")
        }
        assert current["masterarn"] == original["masterarn"]
        assert current["extra_key"] == {"kept": [1, 2]}
        assert db.login(current["username"], current["password"])
        assert db.login(previous["username"], previous["password"])  # until the next rotation
        if len(history) >= 2:
            older = history[-2]  # same user as now, its old password was reset
            assert older["username"] == current["username"]
            assert not db.login(older["username"], older["password"])
        assert_same_privileges(db, user)
        history.append(current)
    assert [inv.step for inv in harness.aws.invocations] == [
        "createSecret",
        "setSecret",
        "testSecret",
        "finishSecret",
    ] * 4


@pytest.mark.parametrize("step", ["createSecret", "setSecret", "testSecret", "finishSecret"])
def test_each_step_can_run_again(harness: Harness, db: Db, step: str) -> None:
    arn, user, _ = make_app(harness, db)
    token = harness.rotate(arn)
    harness.invoke(arn, token, step)
    harness.invoke(arn, token, step)
    assert harness.versions(arn)[token] == ["AWSCURRENT"]
    current = harness.value(arn)
    assert db.login(current["username"], current["password"])
    assert_same_privileges(db, user)


def test_a_current_clone_user_alternates_back_to_the_base_name(harness: Harness, db: Db) -> None:
    base = unique_user()
    arn, _, _ = make_app(harness, db, user=base + "_clone")
    harness.rotate(arn)
    assert harness.value(arn)["username"] == base
    harness.rotate(arn)
    assert harness.value(arn)["username"] == base + "_clone"
    assert_same_privileges(db, base)


# -- the strategy choice ----------------------------------------------------------------------------
def test_pinned_alternating_with_masterarn_rotates(
    harness: Harness, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROTATION_STRATEGY", "alternating")
    arn, user, _ = make_app(harness, db)
    harness.rotate(arn)
    assert harness.value(arn)["username"] == user + "_clone"


def test_pinned_single_refuses_a_secret_with_masterarn(
    harness: Harness, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROTATION_STRATEGY", "single")
    arn, _, _ = make_app(harness, db)
    assert_rotation_fails_cleanly(
        harness,
        arn,
        InvalidSecretError,
        "pinned to single-user rotation (ROTATION_STRATEGY) but the secret has a",
    )


def test_pinned_alternating_refuses_a_secret_without_masterarn(
    harness: Harness, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS's function got as far as setSecret with KeyError: 'masterarn'; this fails at once."""
    monkeypatch.setenv("ROTATION_STRATEGY", "alternating")
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    assert_rotation_fails_cleanly(harness, arn, InvalidSecretError, "has no 'masterarn'")


# -- bad input, caught in createSecret before anything is written -----------------------------------
def test_unreadable_master_secret(harness: Harness, db: Db) -> None:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-master-AbCdEf"
    arn = harness.create_secret(db.secret(user, password, masterarn=missing))
    assert_rotation_fails_cleanly(
        harness, arn, InvalidSecretError, f"the master secret {missing} (masterarn) cannot be read"
    )
    assert "ResourceNotFoundException" in harness.errors[-1]


@pytest.mark.parametrize(
    ("master_value", "match"),
    [
        ("not json", "is not valid JSON"),
        ('["x"]', "must be a JSON object"),
        ('{"username": "admin"}', "is unusable: the master secret is invalid: missing key 'password'"),
    ],
    ids=["not-json", "not-an-object", "no-password"],
)
def test_malformed_master_secret(harness: Harness, db: Db, master_value: str, match: str) -> None:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    master = harness.sm.create_secret(Name="m-" + user, SecretString=master_value)["ARN"]
    arn = harness.create_secret(db.secret(user, password, masterarn=master))
    assert_rotation_fails_cleanly(harness, arn, InvalidSecretError, match)


def test_master_secret_for_another_engine_family(harness: Harness, db: Db) -> None:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    other = "mysql" if db.name == "postgres" else "postgres"
    master = harness.create_secret(
        dict(db.secret(db.server.admin_user, db.server.admin_password), engine=other)
    )
    arn = harness.create_secret(db.secret(user, password, masterarn=master))
    assert_rotation_fails_cleanly(
        harness, arn, InvalidSecretError, f"the master secret is for engine '{other}', the secret for"
    )


def test_master_secret_of_the_rotated_user_is_refused(harness: Harness, db: Db) -> None:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    master = harness.create_secret(db.secret(user + "_clone", new_password()))
    arn = harness.create_secret(db.secret(user, password, masterarn=master))
    assert_rotation_fails_cleanly(harness, arn, InvalidSecretError, "is one of the alternating users")


@pytest.mark.parametrize(
    ("engine", "length", "limit"),
    [("postgres", 58, "63 bytes"), ("mariadb", 75, "80 characters"), ("mysql", 27, "32 characters")],
)
def test_alternate_name_too_long(harness: Harness, engine: str, length: int, limit: str) -> None:
    """Checked against the engine's real limit (no connection needed: nothing is written)."""
    user = "u" * length
    master = harness.create_secret(
        {"engine": engine, "host": "127.0.0.1", "username": "admin", "password": new_password()}
    )
    arn = harness.create_secret(
        {
            "engine": engine,
            "host": "127.0.0.1",
            "username": user,
            "password": new_password(),
            "masterarn": master,
        }
    )
    assert_rotation_fails_cleanly(harness, arn, InvalidSecretError, f"> {limit}")
    # One character less fits: test_name_limits.py rotates names exactly at each limit.


def test_postgres_name_limit_counts_bytes(harness: Harness) -> None:
    user = "é" * 29  # 58 bytes; + "_clone" = 64 bytes > 63
    master = harness.create_secret(
        {"engine": "postgres", "host": "127.0.0.1", "username": "admin", "password": new_password()}
    )
    arn = harness.create_secret(
        {
            "engine": "postgres",
            "host": "127.0.0.1",
            "username": user,
            "password": new_password(),
            "masterarn": master,
        }
    )
    assert_rotation_fails_cleanly(harness, arn, InvalidSecretError, "(64 > 63 bytes)")


# -- failures in setSecret: clear errors, AWSCURRENT untouched ---------------------------------------
def start_rotation(harness: Harness, arn: str, until: str) -> tuple[str, BaseException]:
    with pytest.raises(StepFailed) as failure:
        harness.rotate(arn)
    assert failure.value.step == until, failure.value
    return harness.aws.invocations[-1].token, failure.value.error


def test_master_that_cannot_create_users(harness: Harness, db: Db) -> None:
    weak, weak_password = unique_user("weak"), new_password()
    db.make_user(weak, weak_password)
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    master = harness.create_secret(db.secret(weak, weak_password))
    arn = harness.create_secret(db.secret(user, password, masterarn=master))
    before = harness.value(arn)
    token, error = start_rotation(harness, arn, "setSecret")
    assert isinstance(error, DatabaseError)
    assert f"the master user '{weak}' could not prepare '{user}_clone' as a copy of '{user}'" in str(error)
    expected = "cannot create or alter roles" if db.name == "postgres" else "denied"
    assert expected in str(error)
    assert harness.value(arn) == before
    assert harness.versions(arn)[token] == ["AWSPENDING"]
    assert not user_exists(db, user + "_clone")


def test_current_credentials_must_log_in(harness: Harness, db: Db) -> None:
    """A secret pointed at an account whose password it does not know clones nothing."""
    arn, user, _ = make_app(harness, db)
    set_password(db, user, new_password())  # the password changed behind the secret's back
    _, error = start_rotation(harness, arn, "setSecret")
    assert isinstance(error, LoginRejected)
    assert f"the current credentials do not log in to 127.0.0.1:{db.server.port} as {user}" in str(error)
    assert not user_exists(db, user + "_clone")


def test_pending_for_another_user_is_refused(harness: Harness, db: Db) -> None:
    """A tampered AWSPENDING naming the master (or anyone else) never gets a password set."""
    from .test_gate_and_input import start_rotation_without_running_it

    arn, user, _ = make_app(harness, db)
    token = start_rotation_without_running_it(harness, arn)
    other = dict(harness.value(arn), username=db.server.admin_user, password=new_password())
    harness.remember(other)
    harness.sm.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(other), VersionStages=["AWSPENDING"]
    )
    with pytest.raises(InvalidSecretError, match=f"is not the alternate of the current user '{user}'"):
        harness.invoke(arn, token, "setSecret")
    assert db.login(db.server.admin_user, db.server.admin_password)
