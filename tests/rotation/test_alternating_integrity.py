"""Alternating PostgreSQL users: what the master may take over, what follows the application
across switches, the owner-role pattern, and bounded lock waits (real servers)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.aws import StepFailed
from rotation_handlers.engines.users import pair_marker

from .conftest import Db, Harness, by_master, create_pg_user, new_password, unique_user
from .test_alternating import make_app, privileges, run_as, super_sql


def role_state(pg: Db, role: str) -> list[Any]:
    return super_sql(
        pg,
        "SELECT rolcanlogin, rolsuper, rolcreaterole, shobj_description(oid, 'pg_authid'),"
        " ARRAY(SELECT pg_get_userbyid(member) FROM pg_auth_members WHERE roleid = r.oid ORDER BY 1),"
        " ARRAY(SELECT pg_get_userbyid(roleid) FROM pg_auth_members WHERE member = r.oid ORDER BY 1)"
        " FROM pg_roles r WHERE rolname = %s",
        params=(role,),
    )


def fails_in_set_secret(harness: Harness, arn: str) -> str:
    before = harness.value(arn)
    with pytest.raises(StepFailed) as failure:
        harness.rotate(arn)
    assert failure.value.step == "setSecret", failure.value
    assert harness.value(arn) == before
    return str(failure.value.error)


# -- a role named like the alternate login that is not ours -----------------------------------------
def test_existing_group_role_named_like_the_clone_is_not_taken_over(harness: Harness, pg: Db) -> None:
    arn, user, _ = make_app(harness, pg)
    clone, bob = user + "_clone", unique_user("bob")
    super_sql(
        pg, f'CREATE ROLE "{clone}" NOLOGIN', f'CREATE ROLE "{bob}" LOGIN', f'GRANT "{clone}" TO "{bob}"'
    )
    before = role_state(pg, clone)
    error = fails_in_set_secret(harness, arn)
    assert f"the role '{clone}' exists and is not an alternate login of '{user}'" in error
    assert f"neither it nor '{user}' is a member of the other" in error
    assert "it is NOLOGIN" in error
    assert f"it has members ('{bob}')" in error
    assert role_state(pg, clone) == before  # nothing changed: no login, no password, no membership


def test_linked_clone_with_more_power_than_the_user_is_not_taken_over(harness: Harness, pg: Db) -> None:
    arn, user, _ = make_app(harness, pg)
    clone = user + "_clone"
    super_sql(
        pg,
        f'CREATE ROLE "{clone}" LOGIN CREATEROLE',
        f'GRANT "{user}" TO "{clone}"',
        f'GRANT pg_read_all_data TO "{clone}"',
    )
    before = role_state(pg, clone)
    error = fails_in_set_secret(harness, arn)
    assert "it has CREATEROLE, which" in error
    assert "it is a member of roles" in error and "pg_read_all_data" in error
    assert role_state(pg, clone) == before


def test_alternating_back_never_takes_over_an_unrelated_base_role(harness: Harness, pg: Db) -> None:
    base = unique_user("ops")
    super_sql(pg, f'CREATE ROLE "{base}" NOLOGIN SUPERUSER')
    arn, _, _ = make_app(harness, pg, user=base + "_clone")
    before = role_state(pg, base)
    error = fails_in_set_secret(harness, arn)
    assert f"the role '{base}' exists" in error and "it has SUPERUSER" in error
    assert role_state(pg, base) == before


def test_our_clone_is_marked_and_an_aws_clone_is_adopted_and_marked(harness: Harness, pg: Db) -> None:
    arn, user, _ = make_app(harness, pg)
    harness.rotate(arn)
    assert role_state(pg, user + "_clone")[0][3] == pair_marker(user)
    # A clone as AWS's function makes it: LOGIN, a member of the user, nothing else.
    arn2, user2, _ = make_app(harness, pg)
    create_pg_user(pg.server, user2 + "_clone", new_password())
    super_sql(pg, f'GRANT "{user2}" TO "{user2}_clone"')
    harness.rotate(arn2)
    assert role_state(pg, user2 + "_clone")[0][3] == pair_marker(user2)


# -- what is given to the login in use reaches the other login --------------------------------------
def test_privileges_given_to_the_current_login_survive_every_switch(harness: Harness, pg: Db) -> None:
    """Invariant over 5 rotations: after each, the new current login can do everything the previous
    current login could just before it, and no one else gained anything."""
    arn, user, _ = make_app(harness, pg)
    owner, bystander, defreader = unique_user("own"), unique_user("by"), unique_user("dr")
    schema = "s_" + owner
    super_sql(
        pg,
        by_master(pg.server, f'CREATE ROLE "{owner}" NOLOGIN'),
        by_master(pg.server, f'CREATE ROLE "{bystander}" LOGIN'),
        by_master(pg.server, f'CREATE ROLE "{defreader}"'),
        f'CREATE SCHEMA "{schema}" AUTHORIZATION "{owner}"',
    )
    bystander_before = privileges(pg, bystander)
    for n in range(5):
        current = harness.value(arn)["username"]
        table = f'"{schema}".t{n}'
        reader = f"{owner}_r{n}"
        super_sql(
            pg,
            f'SET ROLE "{owner}"',
            f"CREATE TABLE {table} (id int)",
            "RESET ROLE",
            f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{current}"',
            # a default privilege the login in use defines for the tables it will create
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{current}" IN SCHEMA "{schema}"'
            f' GRANT SELECT ON TABLES TO "{defreader}"',
            f'GRANT SELECT, INSERT ON {table} TO "{current}"',
            f'GRANT UPDATE (id) ON {table} TO "{current}"',
            f'ALTER ROLE "{current}" CREATEDB CONNECTION LIMIT {50 + n}',
            by_master(pg.server, f'CREATE ROLE "{reader}"'),
            f'GRANT "{reader}" TO "{current}"',
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA "{schema}"'
            f' GRANT SELECT ON TABLES TO "{current}"',
        )
        before = privileges(pg, current)
        harness.rotate(arn)
        now = harness.value(arn)
        assert now["username"] != current
        after = privileges(pg, now["username"])
        assert after["attributes"] == before["attributes"], n
        for key in ("roles", "database", "schemas", "tables"):
            assert set(map(str, before[key])) <= set(map(str, after[key])), (n, key)
        # The default privilege keeps working for tables the owner creates later.
        super_sql(pg, f'SET ROLE "{owner}"', f'CREATE TABLE "{schema}".later{n} (id int)', "RESET ROLE")
        run_as(pg, now, f"INSERT INTO {table} VALUES ({n})", f'SELECT * FROM "{schema}".later{n}')
        # A table the new current login creates gets the default privileges the previous one defined.
        run_as(pg, now, f'CREATE TABLE "{schema}".mine{n} (id int)')
        readable = super_sql(
            pg, "SELECT has_table_privilege(%s, %s, 'SELECT')", params=(defreader, f'"{schema}".mine{n}')
        )
        assert readable == [(True,)], n
        # Only the owner and the two logins hold privileges on the schema's tables.
        grantees = super_sql(
            pg,
            "SELECT DISTINCT pg_get_userbyid(a.grantee) FROM pg_class c, aclexplode(c.relacl) a"
            " WHERE c.relnamespace = %s::regnamespace",
            params=(f'"{schema}"',),
        )
        assert {g[0] for g in grantees} <= {owner, user, user + "_clone", defreader}, grantees
        assert privileges(pg, bystander) == bystander_before


# -- the owner-role pattern -------------------------------------------------------------------------
def test_owner_role_setting_is_kept_and_followed(harness: Harness, pg: Db) -> None:
    arn, user, schema = make_app(harness, pg)
    owner, reader = unique_user("owner"), unique_user("reader")
    super_sql(
        pg,
        f'CREATE ROLE "{owner}" NOLOGIN',
        f'CREATE ROLE "{reader}" LOGIN PASSWORD %s',
        f'GRANT "{owner}" TO "{user}"',
        f'GRANT ALL ON SCHEMA "{schema}" TO "{owner}"',
        f'GRANT USAGE ON SCHEMA "{schema}" TO "{reader}"',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA "{schema}"'
        f' GRANT SELECT ON TABLES TO "{reader}"',
        f'ALTER ROLE "{user}" SET role = "{owner}"',
        params=(reader_password := new_password(),),
    )
    harness.passwords.add(reader_password)
    for n in range(4):
        harness.rotate(arn)
        current = harness.value(arn)
        assert run_as(pg, current, "SELECT current_user") == [(owner,)]
        run_as(pg, current, f'CREATE TABLE "{schema}".r{n} (id int)')
        owners = super_sql(
            pg,
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = %s::regnamespace"
            " AND relname LIKE 'r%%'",
            params=(f'"{schema}"',),
        )
        assert owners == [(owner,)]
        run_as(pg, {"username": reader, "password": reader_password}, f'SELECT * FROM "{schema}".r{n}')
    settings = super_sql(
        pg,
        "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
        " WHERE r.rolname IN (%s, %s) ORDER BY 1",
        params=(user, user + "_clone"),
    )
    assert settings == [(user, [f"role={owner}"]), (user + "_clone", [f"role={owner}"])]


# -- a lock held by the application: bounded wait, clear error, retry completes ----------------------
def test_lock_held_by_an_application_transaction(
    harness: Harness, pg: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clone (current) owns a table an open transaction is reading: handing it to the base user
    needs an exclusive lock. setSecret gives up after DB_LOCK_TIMEOUT, AWSCURRENT stays, other
    sessions are not queued behind it any longer, and the retry after the transaction ends completes."""
    monkeypatch.setenv("DB_LOCK_TIMEOUT", "1")
    arn, user, schema = make_app(harness, pg)
    clone, clone_password = user + "_clone", new_password()
    create_pg_user(pg.server, clone, clone_password)
    super_sql(pg, f'GRANT "{user}" TO "{clone}"')  # a clone as AWS's function leaves it
    clone_value = dict(harness.value(arn), username=clone, password=clone_password)
    harness.remember(clone_value)
    run_as(
        pg, clone_value, f'CREATE TABLE "{schema}".busy (id int)', f'INSERT INTO "{schema}".busy VALUES (1)'
    )
    harness.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(clone_value))

    holder = pg.server.connect_super()  # the application's long transaction
    holder.autocommit = False
    try:
        with holder.cursor() as cur:
            cur.execute(f'SELECT * FROM "{schema}".busy')
        error = fails_in_set_secret(harness, arn)
        assert error.startswith(
            f"the master user 'admin' could not prepare '{user}' as a copy of '{clone}': "
            "lock not available, will retry: reassign owned waited more than 1 s"
        ), error
        # Nobody is queued behind the master any more: a new session reads at once.
        rows = run_as(
            pg, clone_value, "SET statement_timeout = '5s'", f'SELECT count(*) FROM "{schema}".busy'
        )
        assert rows == [(1,)]
    finally:
        holder.rollback()
        holder.close()
    token = harness.aws.invocations[-1].token
    for step in ("setSecret", "testSecret", "finishSecret"):
        harness.invoke(arn, token, step)
    current = harness.value(arn)
    assert current["username"] == user
    run_as(pg, current, f'INSERT INTO "{schema}".busy VALUES (2)')


@pytest.mark.parametrize("variable", ["DB_LOCK_TIMEOUT", "DB_STATEMENT_TIMEOUT"])
def test_bad_timeout_setting_is_refused_before_anything_is_written(
    harness: Harness, pg: Db, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    from rotation_handlers.errors import ConfigurationError

    from .test_gate_and_input import assert_rotation_fails_cleanly

    monkeypatch.setenv(variable, "0")
    arn, _, _ = make_app(harness, pg)
    assert_rotation_fails_cleanly(harness, arn, ConfigurationError, f"{variable} must be between 1 and")
