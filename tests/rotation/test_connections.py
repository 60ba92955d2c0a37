"""Connections: TLS required by default, certificate checks, awkward names, unreachable servers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from devtools.aws import StepFailed
from devtools.dbservers import MariaDBServer, PostgresServer, TLSFiles, free_port, make_base_dir
from rotation_handlers.errors import ConnectError, LoginRejected

from .conftest import (
    AWKWARD_PASSWORD,
    Db,
    Harness,
    create_maria_user,
    create_pg_user,
    maria_login,
    new_password,
    pg_login,
    unique_user,
)


def rotate_fails_in_set_secret(harness: Harness, arn: str) -> StepFailed:
    before = harness.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
    with pytest.raises(StepFailed) as failure:
        harness.rotate(arn)
    assert failure.value.step == "setSecret", failure.value
    assert harness.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"] == before
    return failure.value


@pytest.mark.parametrize(
    "username",
    ["App User", "o'brien", 'say"hi"', "100%_sure", "UPPER_lower", "semi;colon--"],
)
def test_awkward_user_names_and_passwords_rotate(harness: Harness, db: Db, username: str) -> None:
    db.make_user(username, AWKWARD_PASSWORD)
    arn = harness.create_secret(db.secret(username, AWKWARD_PASSWORD))
    for _ in range(2):
        harness.rotate(arn)
        assert db.login(username, harness.value(arn)["password"])
    assert not db.login(username, AWKWARD_PASSWORD)


def test_wrong_port_fails_fast_with_one_attempt(harness: Harness, db: Db) -> None:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    port = free_port()
    arn = harness.create_secret(dict(db.secret(user, password), port=port))
    failure = rotate_fails_in_set_secret(harness, arn)
    assert isinstance(failure.error, ConnectError)
    message = str(failure.error)
    assert message.startswith(f"cannot connect to 127.0.0.1:{port} as {user}: "), message
    assert "refused" in message.lower(), message
    # An unreachable server is not a wrong password: no other password was tried.
    assert harness.counter.calls.get("GetSecretValue", 0) <= 2


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a stuck or firewalled server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    sock.close()


def test_server_that_never_answers_hits_the_connect_timeout(
    harness: Harness, db: Db, silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    user, password = unique_user(), new_password()
    arn = harness.create_secret(dict(db.secret(user, password), port=silent_server))
    failure = rotate_fails_in_set_secret(harness, arn)
    assert isinstance(failure.error, ConnectError)
    assert "timed out" in str(failure.error).lower() or "timeout" in str(failure.error).lower(), failure.error


def test_wrong_password_everywhere_names_all_three(harness: Harness, db: Db) -> None:
    user = unique_user()
    db.make_user(user, new_password())
    arn = harness.create_secret(db.secret(user, "Wrong-" + new_password()))
    failure = rotate_fails_in_set_secret(harness, arn)
    assert isinstance(failure.error, LoginRejected)
    message = str(failure.error)
    assert f"as {user} with the current or pending password" in message, message
    assert "denied" in message.lower() or "authentication failed" in message.lower(), message


def test_previous_password_is_tried_last(harness: Harness, db: Db) -> None:
    """The database still has the AWSPREVIOUS password (e.g. restored from a backup): setSecret recovers."""
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    harness.rotate(arn)
    db.make_user(user, password)  # the database goes back to the old (now AWSPREVIOUS) password
    harness.rotate(arn)
    assert db.login(user, harness.value(arn)["password"])


@pytest.fixture(scope="module")
def maria_plain() -> Iterator[MariaDBServer]:
    with MariaDBServer(None) as server:
        yield server


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_server_without_tls_is_refused_unless_the_secret_opts_out(
    harness: Harness, request: pytest.FixtureRequest, engine: str
) -> None:
    server = request.getfixturevalue("pg_plain" if engine == "postgres" else "maria_plain")
    user, password = unique_user(), new_password()
    if engine == "postgres":
        create_pg_user(server, user, password)
    else:
        create_maria_user(server, user, password)
    arn = harness.create_secret(server.secret(user, password))
    failure = rotate_fails_in_set_secret(harness, arn)
    assert isinstance(failure.error, ConnectError), failure.error
    assert "ssl" in str(failure.error).lower(), failure.error
    # Refused before the password was sent: the server saw no failed login.
    assert server.stats()["failed_logins"] == 0

    for opt_out in (False, "false"):
        harness.sm.put_secret_value(
            SecretId=arn, SecretString=json.dumps(dict(harness.value(arn), ssl=opt_out))
        )
        harness.rotate(arn)
        assert harness.value(arn)["ssl"] == opt_out


def test_mariadb_user_that_requires_tls(harness: Harness, maria_server: MariaDBServer) -> None:
    user, password = unique_user(), new_password()
    create_maria_user(maria_server, user, password, require_ssl=True)
    arn = harness.create_secret(maria_server.secret(user, password, ssl=True))
    harness.rotate(arn)
    rows = maria_server.sql(f"SELECT ssl_type FROM mysql.user WHERE user = '{user}'")
    assert rows == [("ANY",)]


def test_ca_bundle_verifies_the_server(
    harness: Harness, db: Db, tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    monkeypatch.setenv("DB_CA_BUNDLE", str(tls_files.ca_cert))
    harness.rotate(arn)
    assert db.login(user, harness.value(arn)["password"])

    other_ca = TLSFiles.create(make_base_dir("rotation-other-ca-"))
    monkeypatch.setenv("DB_CA_BUNDLE", str(other_ca.ca_cert))
    failure = rotate_fails_in_set_secret(harness, arn)
    assert isinstance(failure.error, ConnectError), failure.error
    assert "certificate verify failed" in str(failure.error), failure.error


def test_fixture_tls_server_rejects_plaintext_logins(pg_server: PostgresServer) -> None:
    """A check of the test fixture, not of the handler: the TLS test server rejects plaintext logins
    (so the suite's TLS claims mean something)."""
    import psycopg2

    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(
            host="127.0.0.1",
            port=pg_server.port,
            user="admin",
            password=pg_server.admin_password,
            dbname="postgres",
            sslmode="disable",
        )


def test_unreachable_secrets_manager_endpoint_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VPC endpoint / NAT: the step fails quickly, naming the call, instead of at the Lambda timeout."""
    from devtools.aws import FAKE_ENV
    from rotation_handlers import rotate, secrets_manager
    from rotation_handlers.errors import RotationError

    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")
    secrets_manager.reset_clients()
    try:
        with pytest.raises(RotationError, match=r"DescribeSecret for db-x failed: .*Could not connect"):
            rotate.handler({"SecretId": "db-x", "ClientRequestToken": "t" * 36, "Step": "createSecret"}, None)
    finally:
        secrets_manager.reset_clients()


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_previous_version_lends_only_its_password(
    harness: Harness, request: pytest.FixtureRequest, engine: str
) -> None:
    """AWSPREVIOUS names another port without TLS: the fallback keeps AWSCURRENT's server and TLS."""
    pg = engine == "postgres"
    tls_server = request.getfixturevalue("pg_default" if pg else "maria_server")
    plain = request.getfixturevalue("pg_plain" if pg else "maria_plain")
    make = create_pg_user if pg else create_maria_user
    user, old = unique_user(), new_password()
    make(tls_server, user, old)
    make(plain, user, old)
    arn = harness.create_secret(plain.secret(user, old, ssl=False))
    # AWSCURRENT: the TLS server, with a password the database does not have (restored from a backup).
    current = tls_server.secret(user, "Wrong-" + new_password())
    harness.remember(current)
    harness.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(current))
    plain_before = plain.stats()
    harness.rotate(arn)
    # The server named only by AWSPREVIOUS was never contacted.
    assert plain.stats()["connections"] == plain_before["connections"]
    new = harness.value(arn)["password"]
    if pg:
        assert pg_login(tls_server, user, new)
        assert pg_login(plain, user, old, tls=False)
    else:
        assert maria_login(tls_server, user, new)
        assert maria_login(plain, user, old)


def test_too_many_connections_for_role_is_not_a_password_problem(
    harness: Harness, pg_server: PostgresServer
) -> None:
    """SQLSTATE 53300 stops at once: one attempt, no failed login, no other password tried."""
    import psycopg2

    user, password = unique_user(), new_password()
    create_pg_user(pg_server, user, password, "CONNECTION LIMIT 1")
    arn = harness.create_secret(pg_server.secret(user, password))
    hold = psycopg2.connect(
        host="127.0.0.1",
        port=pg_server.port,
        user=user,
        password=password,
        dbname="postgres",
        sslmode="require",
    )
    try:
        before = pg_server.stats()
        failure = rotate_fails_in_set_secret(harness, arn)
        after = pg_server.stats()
    finally:
        hold.close()
    assert isinstance(failure.error, ConnectError), failure.error
    message = str(failure.error)
    assert f'too many connections for role "{user}"' in message, message
    assert "pending" not in message and "previous" not in message, message
    assert after["connections"] - before["connections"] == 1
    assert after["failed_logins"] - before["failed_logins"] == 0
    assert pg_login(pg_server, user, password)
