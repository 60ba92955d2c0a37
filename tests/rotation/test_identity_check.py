"""testSecret checks which account the pending credentials really logged in as.

On MariaDB an anonymous account ``''@'127.0.0.1'`` sorts before ``'app'@'%'`` (a more specific
host wins), so a client naming ``app`` from 127.0.0.1 is logged in as the anonymous account
whenever the password matches it. Credentials that "work" that way do not work for ``app``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from psycopg2 import sql

from devtools.dbservers import MariaDBServer, PostgresServer
from rotation_handlers.errors import DatabaseError

from .conftest import Harness, create_pg_user, maria_db, new_password, pg_db, pg_login, unique_user
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
