"""testSecret checks which account the pending credentials really logged in as.

On MariaDB an anonymous account ``''@'127.0.0.1'`` sorts before ``'app'@'%'`` (a more specific
host wins), so a client naming ``app`` from 127.0.0.1 is logged in as the anonymous account
whenever the password matches it. Credentials that "work" that way do not work for ``app``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pymysql
import pytest
from psycopg2 import sql

from devtools.dbservers import MariaDBServer, PostgresServer
from rotation_handlers.errors import DatabaseError

from .conftest import (
    Harness,
    create_pg_user,
    maria_db,
    maria_login,
    new_password,
    pg_db,
    pg_login,
    unique_user,
)
from .test_alternating import make_app
from .test_gate_and_input import start_rotation_without_running_it


@pytest.fixture
def anonymous(maria_server: MariaDBServer) -> Iterator[Callable[[str], None]]:
    """Creates the anonymous account ''@'127.0.0.1' with a given password; drops it afterwards.

    While it exists every '%' account is shadowed for clients on 127.0.0.1, so it never
    outlives the test.
    """

    def create(password: str) -> None:
        conn = maria_server.connect_super()
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE USER ''@'127.0.0.1' IDENTIFIED BY %s", (password,))
        finally:
            conn.close()

    try:
        yield create
    finally:
        maria_server.sql("DROP USER IF EXISTS ''@'127.0.0.1'")


def set_pending_then_open_the_anonymous_account(
    harness: Harness, arn: str, anonymous: Callable[[str], None]
) -> str:
    """createSecret and setSecret run; then the pending password also opens the anonymous account."""
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    harness.invoke(arn, token, "setSecret")
    anonymous(harness.value(arn, "AWSPENDING")["password"])
    return token


def test_single_user_pending_login_as_the_anonymous_account_fails(
    harness: Harness, maria_server: MariaDBServer, anonymous: Callable[[str], None]
) -> None:
    db = maria_db(maria_server)
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    token = set_pending_then_open_the_anonymous_account(harness, arn, anonymous)

    with pytest.raises(DatabaseError) as failure:
        harness.invoke(arn, token, "testSecret")

    assert str(failure.value) == (
        f"the pending credentials logged in to 127.0.0.1:{maria_server.port} as '', not as '{user}'"
    )
    assert harness.value(arn)["password"] == password  # AWSCURRENT untouched


def test_alternating_pending_login_as_the_anonymous_account_fails(
    harness: Harness, maria_server: MariaDBServer, anonymous: Callable[[str], None]
) -> None:
    db = maria_db(maria_server)
    arn, user, _ = make_app(harness, db)
    before = harness.value(arn)
    token = set_pending_then_open_the_anonymous_account(harness, arn, anonymous)

    with pytest.raises(DatabaseError) as failure:
        harness.invoke(arn, token, "testSecret")

    assert str(failure.value) == (
        f"the pending credentials logged in to 127.0.0.1:{maria_server.port} as '', not as '{user}_clone'"
    )
    assert harness.value(arn) == before


def test_postgres_role_default_does_not_redirect_the_password_change(
    harness: Harness, pg_server: PostgresServer
) -> None:
    """``app`` starts every session as ``other`` (a login of another application).

    Rotating ``app`` changes ``app``'s password (the role that logged in, which may change its own
    password once it stops acting as ``other``); the other application's password is never touched.
    """
    other, other_password = unique_user("other"), new_password()
    create_pg_user(pg_server, other, other_password)
    user, password = unique_user(), new_password()
    create_pg_user(pg_server, user, password)
    conn = pg_server.connect_super()
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(other), sql.Identifier(user)))
            cur.execute(
                sql.SQL("ALTER ROLE {} SET role = {}").format(sql.Identifier(user), sql.Literal(other))
            )
    finally:
        conn.close()
    arn = harness.create_secret(pg_db(pg_server).secret(user, password))

    harness.rotate(arn)

    assert harness.value(arn)["password"] != password
    assert pg_login(pg_server, user, harness.value(arn)["password"])
    assert pg_login(pg_server, other, other_password), "the other role's password was changed"


# -- a successful login as another, named account --------------------------------------------------
# The anonymous account above has an empty name, so "some user is logged in" would reject it too.
# These logins end as a different account with a non-empty name, through mappings the servers offer.

# MariaDB: a proxy user. In MariaDB 10.11 only authentication plugins that can hand over another
# identity honour PROXY; of the plugins shipped here that is ``pam`` (auth_pam): the PAM module
# ``pam_user_map`` maps the login name to another one, and the server then logs the client in as
# that account if the login's account holds ``GRANT PROXY ON`` it ("Authentication Plugin - PAM",
# "User and Group Mapping with PAM", https://mariadb.com/kb/en/authentication-plugin-pam/ and
# https://mariadb.com/kb/en/user-and-group-mapping-with-pam/). ``mysql_native_password`` and
# ``ed25519`` never change the identity. pymysql speaks PAM's cleartext variant only, so the server
# runs with ``pam_use_cleartext_plugin`` (over TLS here). PAM reads its service from /etc/pam.d and
# pam_user_map its map from /etc/security/user_map.conf (a fixed path): the fixture adds one service
# file and one map line and restores both files exactly afterwards.
USER_MAP = Path("/etc/security/user_map.conf")


@pytest.fixture(scope="session")
def maria_pam(tls_files: Any) -> Iterator[MariaDBServer]:
    with MariaDBServer(
        tls_files, settings={"plugin_load_add": "auth_pam", "pam_use_cleartext_plugin": "ON"}
    ) as server:
        yield server


@dataclass
class ProxyLogin:
    """Opens ``'<login>'@'127.0.0.1'``: PAM checks the password and maps the login to ``target``."""

    server: MariaDBServer
    directory: Path
    service: str
    opened: list[str] = field(default_factory=list)

    def open(self, login: str, password: str, target: str) -> None:
        digest = hashlib.sha256(password.encode()).hexdigest()  # the password itself is never written
        check = self.directory / f"check-{login}"
        check.write_text(
            "#!/bin/sh\n"
            "pw=$(cat | tr -d '\\000')\n"
            f'[ "$(printf %s "$pw" | sha256sum | cut -c1-64)" = "{digest}" ]\n'
        )
        check.chmod(0o755)
        Path("/etc/pam.d", self.service).write_text(
            f"auth required pam_exec.so expose_authtok quiet {check}\n"
            "auth required pam_user_map.so\n"
            "account required pam_permit.so\n"
        )
        with USER_MAP.open("a") as fh:
            fh.write(f"{login}: {target}\n")
        self.server.sql(f"CREATE USER '{login}'@'127.0.0.1' IDENTIFIED VIA pam USING '{self.service}'")
        self.server.sql(f"GRANT PROXY ON '{target}'@'%' TO '{login}'@'127.0.0.1'")
        self.opened.append(login)


@pytest.fixture
def proxy(maria_pam: MariaDBServer, tmp_path: Path) -> Iterator[ProxyLogin]:
    original = USER_MAP.read_bytes()
    service = "secrets-rotation-test-" + secrets.token_hex(4)
    tmp_path.chmod(0o755)
    login = ProxyLogin(maria_pam, tmp_path, service)
    try:
        yield login
    finally:
        USER_MAP.write_bytes(original)
        Path("/etc/pam.d", service).unlink(missing_ok=True)
        for name in login.opened:
            maria_pam.sql(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")


def test_maria_proxy_login_works_as_another_account(maria_pam: MariaDBServer, proxy: ProxyLogin) -> None:
    """The mapping itself: the password logs in, as the other account; another password does not."""
    target, login, password = unique_user("other"), unique_user(), new_password()
    maria_db(maria_pam).make_user(target, new_password())
    proxy.open(login, password, target)
    conn = pymysql.connect(
        host="127.0.0.1",
        port=maria_pam.port,
        user=login,
        password=password,
        ssl={"ca": str(maria_pam.tls.ca_cert)} if maria_pam.tls else None,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER(), USER()")
            assert cur.fetchone() == (f"{target}@%", f"{login}@127.0.0.1")
    finally:
        conn.close()
    assert not maria_login(maria_pam, login, new_password())


def assert_test_secret_refuses(
    harness: Harness, arn: str, token: str, port: int, logged_in_as: str, before: dict[str, Any]
) -> None:
    """testSecret names the account the pending login became; AWSCURRENT is unchanged."""
    pending = harness.value(arn, "AWSPENDING")["username"]
    with pytest.raises(DatabaseError) as failure:
        harness.invoke(arn, token, "testSecret")
    assert str(failure.value) == (
        f"the pending credentials logged in to 127.0.0.1:{port} as '{logged_in_as}', not as '{pending}'"
    )
    assert harness.value(arn) == before


@pytest.mark.parametrize("strategy", ["single", "alternating"])
def test_maria_pending_login_as_a_proxied_account_fails(
    harness: Harness, maria_pam: MariaDBServer, proxy: ProxyLogin, strategy: str
) -> None:
    db = maria_db(maria_pam)
    target = unique_user("other")
    db.make_user(target, new_password())
    if strategy == "single":
        user, password = unique_user(), new_password()
        db.make_user(user, password)
        arn = harness.create_secret(db.secret(user, password))
    else:
        arn, user, _ = make_app(harness, db)
    before = harness.value(arn)
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    harness.invoke(arn, token, "setSecret")
    pending = harness.value(arn, "AWSPENDING")
    # From 127.0.0.1 the pending user now matches the PAM entry (the more specific host): the
    # pending password logs in, as ``target``.
    proxy.open(pending["username"], pending["password"], target)

    assert_test_secret_refuses(harness, arn, token, maria_pam.port, target, before)


# PostgreSQL: with db_user_namespace=on (PostgreSQL 16 and older) the server appends "@<database>"
# to the name a client sends, or strips a trailing "@" ("Connections and Authentication",
# https://www.postgresql.org/docs/15/runtime-config-connection.html#GUC-DB-USER-NAMESPACE): a login
# as "app" to database "postgres" is the role "app@postgres". A dedicated server, since the
# setting changes every login on it.
@pytest.fixture(scope="session")
def pg_namespaced(tls_files: Any) -> Iterator[PostgresServer]:
    with PostgresServer(tls_files) as server:
        conn = server.connect_super()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version_num")
                version = int(cur.fetchone()[0])
                assert version < 170000, "db_user_namespace exists up to PostgreSQL 16"
                cur.execute("ALTER SYSTEM SET db_user_namespace = on")
                cur.execute("SELECT pg_reload_conf()")
        finally:
            conn.close()
        deadline = time.monotonic() + 10
        while not _namespaced(server):  # the reload reaches the postmaster asynchronously
            assert time.monotonic() < deadline, "db_user_namespace did not take effect"
            time.sleep(0.05)
        yield server


def _namespaced_super(server: PostgresServer) -> Any:
    """The superuser over the socket: its client name is "postgres@" once the namespace is on."""
    conn = psycopg2.connect(host=str(server.sockdir), port=server.port, user="postgres@", dbname="postgres")
    conn.autocommit = True
    return conn


def _namespaced(server: PostgresServer) -> bool:
    try:
        _namespaced_super(server).close()
    except psycopg2.OperationalError:
        return False
    return True


def namespaced_role(server: PostgresServer, role: str, password: str) -> None:
    conn = _namespaced_super(server)
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
    finally:
        conn.close()


@pytest.mark.parametrize("strategy", ["single", "alternating"])
def test_postgres_pending_login_mapped_to_another_role_fails(
    harness: Harness, pg_namespaced: PostgresServer, strategy: str
) -> None:
    """createSecret stores the pending version; the pending password then opens the role the server
    maps the pending name to ("<name>@postgres"): testSecret logs in, as that role, and refuses."""
    user = unique_user()
    extra: dict[str, Any] = {"dbname": "postgres"}
    if strategy == "alternating":
        master = harness.create_secret(
            pg_namespaced.secret(pg_namespaced.admin_user + "@", pg_namespaced.admin_password)
        )
        extra["masterarn"] = master
        # Roles that carry the two names themselves, so that everything else testSecret checks
        # passes and only the identity check can refuse.
        for name in (user, user + "_clone"):
            namespaced_role(pg_namespaced, name, new_password())
    arn = harness.create_secret(pg_namespaced.secret(user, new_password(), **extra))
    before = harness.value(arn)
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    pending = harness.value(arn, "AWSPENDING")
    mapped = f"{pending['username']}@postgres"
    namespaced_role(pg_namespaced, mapped, pending["password"])

    assert_test_secret_refuses(harness, arn, token, pg_namespaced.port, mapped, before)


def test_postgres_single_user_never_changes_the_password_of_a_mapped_role(
    harness: Harness, pg_namespaced: PostgresServer
) -> None:
    """The current login of "app" is the role "app@postgres": setSecret refuses before changing any
    password, so the role keeps the password AWSCURRENT holds."""
    user, password = unique_user(), new_password()
    namespaced_role(pg_namespaced, f"{user}@postgres", password)
    arn = harness.create_secret(pg_namespaced.secret(user, password, dbname="postgres"))
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    with pytest.raises(DatabaseError) as failure:
        harness.invoke(arn, token, "setSecret")
    assert str(failure.value) == (
        f"the current credentials logged in to 127.0.0.1:{pg_namespaced.port} as '{user}@postgres', "
        f"not as '{user}': no password is changed"
    )
    assert pg_login(pg_namespaced, user, password)  # the client name maps to the role again
