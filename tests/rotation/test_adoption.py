"""Taking over secrets that AWS's vended alternating-user functions have been rotating.

The state those functions leave is built here by running the statements they run (as
their public source shows: aws-samples/aws-secrets-manager-rotation-lambdas,
SecretsManagerRDSPostgreSQLRotationMultiUser and SecretsManagerRDSMySQLRotationMultiUser),
written out in the test: the master creates ``<user>_clone`` with a password and, on
PostgreSQL, grants it the base user (so whatever the clone creates is owned by the clone);
on MySQL it copies the ``SHOW GRANTS`` lines. While the clone was current it created tables
in the application's database and in a second one. Then our function rotates three times:
every rotation completes, and the current login can read and write every table.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from psycopg2 import sql

from .conftest import Db, Harness, by_master, maria_db, new_password, unique_user
from .test_alternating import master_secret, run_as, super_sql


# -- PostgreSQL -------------------------------------------------------------------------------------
def pg_run(db: Db, dbname: str, user: str, password: str, *statements: Any, params: Any = None) -> list[Any]:
    return run_as(db, {"username": user, "password": password}, *statements, dbname=dbname, params=params)


def aws_postgres_state(
    harness: Harness, pg: Db, clone_current: bool
) -> tuple[str, str, dict[str, list[str]]]:
    """(secret arn, base user, {database: [tables]}) as AWS's function leaves them."""
    user, password = unique_user(), new_password()
    clone = user + "_clone"
    pg.make_user(user, password)
    tag = secrets.token_hex(3)
    appdb, otherdb = f"appdb_{tag}", f"otherdb_{tag}"
    admin, admin_pw = pg.server.admin_user, pg.server.admin_password
    super_sql(pg, f'CREATE DATABASE "{appdb}"', f'CREATE DATABASE "{otherdb}"')
    for dbname in (appdb, otherdb):
        conn = pg.server.connect_super(dbname)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'GRANT ALL ON SCHEMA public TO "{user}"')
        conn.close()
    pg_run(pg, appdb, user, password, "CREATE TABLE public.by_app (id int)")

    # AWS's first rotation, setSecret as the master connected to the secret's database:
    # CREATE ROLE <clone> WITH LOGIN PASSWORD ..., then GRANT <user> TO <clone>.
    clone_password = new_password()
    harness.passwords.add(clone_password)
    pg_run(
        pg,
        appdb,
        admin,
        admin_pw,
        sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD %s").format(sql.Identifier(clone)),
        params=(clone_password,),
    )
    pg_run(
        pg,
        appdb,
        admin,
        admin_pw,
        sql.SQL("GRANT {} TO {}").format(sql.Identifier(user), sql.Identifier(clone)),
    )
    # The application, logged in as the clone, creates tables in both databases.
    pg_run(
        pg,
        appdb,
        clone,
        clone_password,
        "CREATE TABLE public.by_clone (id int)",
        "INSERT INTO by_clone VALUES (1)",
    )
    pg_run(pg, otherdb, clone, clone_password, "CREATE TABLE public.by_clone_other (id int)")
    # A DBA gave the clone (the login in use) access to another team's table.
    team = unique_user("team")
    super_sql(pg, by_master(pg.server, f'CREATE ROLE "{team}"'))
    conn = pg.server.connect_super(appdb)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            f'CREATE TABLE public.team_table (id int); ALTER TABLE public.team_table OWNER TO "{team}"'
        )
        cur.execute(f'GRANT SELECT, INSERT ON public.team_table TO "{clone}"')
    conn.close()
    # AWS's second rotation: ALTER USER <user> WITH PASSWORD ... (the base user is current again).
    user_password = new_password()
    pg_run(
        pg,
        appdb,
        admin,
        admin_pw,
        sql.SQL("ALTER USER {} WITH PASSWORD %s").format(sql.Identifier(user)),
        params=(user_password,),
    )
    # The secret as AWS's function leaves it: AWSPREVIOUS holds the login that is not current.
    master = master_secret(harness, pg, dbname="postgres")
    logins = [(user, user_password), (clone, clone_password)]
    earlier, current = logins if clone_current else logins[::-1]
    arn = harness.create_secret(pg.secret(*earlier, dbname=appdb, masterarn=master))
    value = pg.secret(*current, dbname=appdb, masterarn=master)
    harness.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(value))
    return arn, user, {appdb: ["by_app", "by_clone", "team_table"], otherdb: ["by_clone_other"]}


@pytest.mark.parametrize("clone_current", [False, True], ids=["base-current", "clone-current"])
def test_postgres_takeover_of_aws_alternating_state(harness: Harness, pg: Db, clone_current: bool) -> None:
    arn, user, tables = aws_postgres_state(harness, pg, clone_current)
    for n in range(3):
        harness.rotate(arn)
        for stage in ("AWSCURRENT", "AWSPREVIOUS"):
            login = harness.value(arn, stage)
            for dbname, names in tables.items():
                for table in names:
                    pg_run(
                        pg,
                        dbname,
                        login["username"],
                        login["password"],
                        f"INSERT INTO public.{table} VALUES ({n})",
                        f"SELECT count(*) FROM public.{table}",
                    )
    # Everything the clone owned is owned by the base user now, in both databases.
    for dbname, names in tables.items():
        names = [n for n in names if n != "team_table"]
        rows = pg_run(
            pg,
            dbname,
            pg.server.admin_user,
            pg.server.admin_password,
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname = ANY(%s)",
            params=(names,),
        )
        assert rows == [(user,)], (dbname, rows)


# -- MariaDB ----------------------------------------------------------------------------------------
def maria_run(db: Db, user: str, password: str, *statements: Any, params: Any = None) -> list[Any]:
    return run_as(db, {"username": user, "password": password}, *statements, params=params)


def aws_mysql_copy(db: Db, source: str, target: str, password: str) -> None:
    """What AWS's MySQL function runs as the master for a pending user: create it if missing,
    replay each ``SHOW GRANTS`` line of the current user up to `` TO ``, copy the TLS option,
    set the password."""
    admin, admin_pw = db.server.admin_user, db.server.admin_password
    if not maria_run(db, admin, admin_pw, "SELECT User FROM mysql.user WHERE User = %s", params=(target,)):
        maria_run(db, admin, admin_pw, "CREATE USER %s IDENTIFIED BY %s", params=(target, password))
    for (line,) in maria_run(db, admin, admin_pw, "SHOW GRANTS FOR %s", params=(source,)):
        head = str(line).split(" TO ")[0]
        maria_run(db, admin, admin_pw, head.replace("%", "%%") + " TO %s", params=(target,))
    maria_run(db, admin, admin_pw, "ALTER USER %s@'%%' REQUIRE NONE", params=(target,))
    maria_run(db, admin, admin_pw, "SET PASSWORD FOR %s = PASSWORD(%s)", params=(target, password))


@pytest.fixture
def maria(request: pytest.FixtureRequest) -> Db:
    return maria_db(request.getfixturevalue("maria_server"))


def test_mariadb_takeover_of_aws_alternating_state(harness: Harness, maria: Db) -> None:
    user, password = unique_user(), new_password()
    clone = user + "_clone"
    maria.make_user(user, password)
    tag = secrets.token_hex(3)
    appdb, otherdb = f"appdb_{tag}", f"otherdb_{tag}"
    super_sql(maria, f"CREATE DATABASE `{appdb}`", f"CREATE DATABASE `{otherdb}`")
    for dbname in (appdb, otherdb):
        super_sql(maria, f"GRANT ALL PRIVILEGES ON `{dbname}`.* TO %s@'%%'", params=(user,))
    clone_password, user_password = new_password(), new_password()
    harness.passwords.update((clone_password, user_password))
    aws_mysql_copy(maria, user, clone, clone_password)  # AWS's first rotation
    maria_run(maria, clone, clone_password, f"CREATE TABLE `{appdb}`.by_clone (id int)")
    maria_run(maria, clone, clone_password, f"CREATE TABLE `{otherdb}`.by_clone_other (id int)")
    aws_mysql_copy(maria, clone, user, user_password)  # AWS's second rotation
    master = master_secret(harness, maria)
    arn = harness.create_secret(maria.secret(user, user_password, dbname=appdb, masterarn=master))
    tables = [f"`{appdb}`.by_clone", f"`{otherdb}`.by_clone_other"]
    for n in range(3):
        harness.rotate(arn)
        for stage in ("AWSCURRENT", "AWSPREVIOUS"):
            login = harness.value(arn, stage)
            for table in tables:
                maria_run(
                    maria,
                    login["username"],
                    login["password"],
                    f"INSERT INTO {table} VALUES ({n})",
                    f"SELECT count(*) FROM {table}",
                )
    assert json.loads(json.dumps(harness.value(arn)))["username"] == clone


def test_postgres_crash_while_handing_over_in_the_second_database(harness: Harness, pg: Db) -> None:
    """The secret's database is done and committed, the second one is not: a crash there, then
    Secrets Manager's retry, still leaves every table usable by the new current login."""
    from .test_crash_recovery import crash_then_retry, record_points

    arn, _, tables = aws_postgres_state(harness, pg, clone_current=True)
    points = record_points(harness, arn)
    second_db = [i for i, p in enumerate(points) if p == "before connect"][2]  # current, master, other
    wanted = {"before connect", "before reassign owned", "before commit", "after commit"}
    chosen = [i for i, p in enumerate(points) if i >= second_db and p in wanted]
    last_commit = max(i for i in chosen if points[i] == "after commit")
    chosen = [*[i for i in chosen if points[i] != "after commit"][:3], last_commit]
    assert [points[i] for i in chosen] == [
        "before connect",
        "before reassign owned",
        "before commit",
        "after commit",
    ]
    for at in chosen:
        arn, _, tables = aws_postgres_state(harness, pg, clone_current=True)
        crash_then_retry(harness, arn, at, cold_retry=False, at_crash=lambda: None)
        login = harness.value(arn)
        for dbname, names in tables.items():
            for table in names:
                pg_run(
                    pg, dbname, login["username"], login["password"], f"INSERT INTO public.{table} VALUES (1)"
                )
