"""Alternating users on PostgreSQL: handover in the shapes real databases have.

The ``public`` schema owned by ``pg_database_owner`` (PostgreSQL 15+), a per-database owner
role (``ALTER ROLE app IN DATABASE x SET role = app_owner``), and a database the master
cannot connect to. Each runs on every version in ``PG_VERSIONS``.
"""

from __future__ import annotations

from typing import Any

from .conftest import Db, Harness, by_master, new_password, unique_user
from .test_alternating import make_app, master_secret, run_as, super_sql
from .test_connections import rotate_fails_in_set_secret


def db_sql(pg: Db, dbname: str, *statements: Any) -> list[Any]:
    """Statements as the superuser in database ``dbname``."""
    conn = pg.server.connect_super(dbname)
    rows: list[Any] = []
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                rows = list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()
    return rows


def new_database(pg: Db, owner: str | None = None) -> str:
    """A database created by the superuser (owned by ``owner`` when given)."""
    name = unique_user("db")
    super_sql(pg, f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
    return name


# -- the public schema: owned by pg_database_owner ---------------------------------------------------
def test_clone_privilege_on_the_public_schema_moves_back_to_the_primary(harness: Harness, pg: Db) -> None:
    """The login in use (the clone) was given CREATE on ``public``; the master holds it WITH GRANT
    OPTION. The rotation back to the primary gives it to the primary, every time."""
    arn, user, _ = make_app(harness, pg)
    clone = user + "_clone"
    super_sql(pg, f'REVOKE ALL ON SCHEMA public FROM "{user}"')
    harness.rotate(arn)  # current: the clone
    super_sql(pg, f'GRANT USAGE, CREATE ON SCHEMA public TO "{clone}"')
    for _ in range(2):
        harness.rotate(arn)  # back to the primary
        current = harness.value(arn)
        assert current["username"] == user
        run_as(pg, current, f'CREATE TABLE public."p_{user}" (id int)', f'DROP TABLE public."p_{user}"')
        harness.rotate(arn)  # and to the clone again
        current = harness.value(arn)
        run_as(pg, current, f'CREATE TABLE public."c_{user}" (id int)', f'DROP TABLE public."c_{user}"')


def test_public_schema_privilege_the_master_cannot_give_names_the_database_owner(
    harness: Harness, pg: Db
) -> None:
    """In a database whose owner the master cannot act as (a superuser) and where it does not hold
    the privilege WITH GRANT OPTION, the rotation back to the primary fails before switching,
    naming the privilege and who can grant it; once granted, the retry completes."""
    owner = "postgres"
    dbname = new_database(pg)
    user, password = unique_user(), new_password()
    pg.make_user(user, password)
    db_sql(pg, dbname, f'GRANT USAGE ON SCHEMA public TO "{user}"')
    master = master_secret(harness, pg)
    arn = harness.create_secret(pg.secret(user, password, masterarn=master, dbname=dbname))
    harness.rotate(arn)  # current: the clone
    clone = user + "_clone"
    db_sql(pg, dbname, f'GRANT CREATE ON SCHEMA public TO "{clone}"')
    failure = rotate_fails_in_set_secret(harness, arn)
    message = str(failure.error)
    assert "CREATE on schema public" in message, message
    assert f"owner of database '{dbname}'" in message and f"'{owner}'" in message, message
    assert "REASSIGN OWNED" not in message, message
    db_sql(pg, dbname, f'GRANT CREATE ON SCHEMA public TO "{user}"')  # the database owner grants it
    token = harness.aws.invocations[-1].token
    for step in ("setSecret", "testSecret", "finishSecret"):
        harness.invoke(arn, token, step)
    current = harness.value(arn)
    assert current["username"] == user
    run_as(pg, current, f'CREATE TABLE public."p_{user}" (id int)', dbname=dbname)


# -- a per-database owner role -----------------------------------------------------------------------
def table_owner(pg: Db, dbname: str, table: str) -> str:
    return str(db_sql(pg, dbname, f"SELECT tableowner FROM pg_tables WHERE tablename = '{table}'")[0][0])


def test_per_database_owner_role_is_followed_by_the_clone(harness: Harness, pg: Db) -> None:
    """``ALTER ROLE app IN DATABASE x SET role = app_owner``: what the clone creates in x is
    owned by app_owner, as what app creates there; elsewhere both act as app."""
    user, password = unique_user(), new_password()
    owner = user + "_owner"
    pg.make_user(user, password)
    super_sql(
        pg,
        by_master(pg.server, f'CREATE ROLE "{owner}" NOLOGIN'),
        by_master(pg.server, f'GRANT "{owner}" TO "{user}"'),
    )
    dbname = new_database(pg)
    db_sql(pg, dbname, f'CREATE SCHEMA app AUTHORIZATION "{owner}"')
    super_sql(pg, by_master(pg.server, f'ALTER ROLE "{user}" IN DATABASE "{dbname}" SET role = "{owner}"'))
    master = master_secret(harness, pg)
    arn = harness.create_secret(pg.secret(user, password, masterarn=master, dbname=dbname))
    run_as(pg, harness.value(arn), "CREATE TABLE app.by_app (id int)", dbname=dbname)
    for n in range(2):
        harness.rotate(arn)
        current = harness.value(arn)
        run_as(pg, current, f"CREATE TABLE app.t{n} (id int)", dbname=dbname)
        assert table_owner(pg, dbname, f"t{n}") == owner, current["username"]
        assert run_as(pg, current, "SELECT current_user", dbname=dbname) == [(owner,)]
        assert run_as(pg, current, "SELECT current_user") == [(user,)]  # elsewhere: the primary
    assert table_owner(pg, dbname, "by_app") == owner


# -- a database the master cannot connect to ----------------------------------------------------------
def test_database_the_master_cannot_connect_to_matters_only_for_a_handover(harness: Harness, pg: Db) -> None:
    """The clone holds a privilege in a database whose CONNECT the master lacks. Rotations to the
    clone go on (it keeps what it has there). The rotation back to the primary, which would lose
    that privilege, fails before changing anything, naming the grant; after it the retry completes."""
    arn, user, _ = make_app(harness, pg)
    clone = user + "_clone"
    closed = new_database(pg)
    admin = pg.server.admin_user
    super_sql(
        pg,
        f'REVOKE CONNECT ON DATABASE "{closed}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{closed}" TO "{user}"',
    )
    harness.rotate(arn)  # current: the clone
    harness.rotate(arn)  # current: the primary, the clone follows it
    db_sql(
        pg,
        closed,
        "CREATE TABLE public.shared (id int)",
        f'ALTER TABLE public.shared OWNER TO "{admin}"',  # a table the DBA made as the master
        f'GRANT SELECT ON public.shared TO "{clone}"',
    )
    harness.rotate(arn)  # to the clone: nothing needs to move
    current = harness.value(arn)
    assert current["username"] == clone
    failure = rotate_fails_in_set_secret(harness, arn)  # back to the primary: SELECT must move
    message = str(failure.error)
    assert f"GRANT CONNECT ON DATABASE {closed} TO {admin}" in message, message
    grantees = (
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants WHERE table_name = 'shared'"
        f" AND grantee <> '{admin}'"
    )
    assert db_sql(pg, closed, grantees) == [(clone,)]  # nothing changed
    super_sql(pg, f'GRANT CONNECT ON DATABASE "{closed}" TO "{admin}"')
    token = harness.aws.invocations[-1].token
    for step in ("setSecret", "testSecret", "finishSecret"):
        harness.invoke(arn, token, step)
    current = harness.value(arn)
    assert current["username"] == user
    assert run_as(pg, current, "SELECT count(*) FROM public.shared", dbname=closed) == [(0,)]
