"""Rotation test fixtures: emulated AWS with RotateSecret routed to our handler, DB users, leak guard."""

from __future__ import annotations

import json
import logging
import secrets as _secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from devtools.aws import ApiCounter, LocalAws, local_aws, secret_versions
from devtools.dbservers import MariaDBServer, PostgresServer
from rotation_handlers import logs
from rotation_handlers.engines.base import Engine
from tests.conftest import PgServers, pg_test_versions

AWKWARD_PASSWORD = "p'w\"d\\ @:/$%x;Z9"


class RawRecords(logging.Handler):
    """Every record our code logs, before any redaction: message plus structured fields."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", {})
        text = record.getMessage() + " " + json.dumps(fields, default=str)
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + str(record.exc_info[1])
        self.lines.append(text)


@dataclass
class Harness:
    """One test's emulated AWS plus helpers to make secrets and drive rotations."""

    aws: LocalAws
    sm: Any
    counter: ApiCounter
    passwords: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def create_secret(self, value: dict[str, Any], name: str | None = None) -> str:
        name = name or "db-" + _secrets.token_hex(4)
        arn = self.sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
        self.remember(value)
        return arn

    def remember(self, value: Any) -> None:
        if isinstance(value, dict) and isinstance(value.get("password"), str):
            self.passwords.add(value["password"])

    def rotate(self, secret_id: str, token: str | None = None) -> str:
        """RotateSecret with our function, as a scheduler or a user would call it."""
        kwargs: dict[str, Any] = {
            "SecretId": secret_id,
            "RotationLambdaARN": self.aws.function_arn,
            "RotationRules": {"AutomaticallyAfterDays": 30},
        }
        if token:
            kwargs["ClientRequestToken"] = token
        try:
            return self.sm.rotate_secret(**kwargs)["VersionId"]
        finally:
            self._collect()

    def invoke(self, secret_id: str, token: str, step: str) -> Any:
        """One step, as Secrets Manager invokes it (for retries after a failure)."""
        assert self.aws.handler is not None
        try:
            return self.aws.handler({"SecretId": secret_id, "ClientRequestToken": token, "Step": step}, None)
        except BaseException as exc:
            self.errors.append(str(exc))
            raise
        finally:
            self._collect()

    def value(self, secret_id: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
        value = json.loads(self.sm.get_secret_value(SecretId=secret_id, VersionStage=stage)["SecretString"])
        self.remember(value)
        return value

    def versions(self, secret_id: str) -> dict[str, list[str]]:
        return secret_versions(self.sm, secret_id)

    def _collect(self) -> None:
        for inv in self.aws.invocations:
            if inv.error is not None:
                self.errors.append(str(inv.error))
        from moto.secretsmanager.models import secretsmanager_backends

        for account in secretsmanager_backends.values():
            for backend in account.values():
                for secret in backend.secrets.values():
                    for version in secret.versions.values():
                        raw = version.get("secret_string")
                        if raw:
                            try:
                                self.remember(json.loads(raw))
                            except ValueError:
                                pass


@pytest.fixture
def harness(capfd: pytest.CaptureFixture[str]) -> Iterator[Harness]:
    raw = RawRecords()
    root = logging.getLogger("rotation_handlers")
    root.addHandler(raw)
    logs.get_logger("tests")  # make sure the JSON handler is configured
    try:
        with local_aws() as aws:
            sm = aws.client("secretsmanager")
            from rotation_handlers import secrets_manager

            counter = ApiCounter().attach(secrets_manager.client(aws.region))
            h = Harness(aws=aws, sm=sm, counter=counter)
            h.passwords.add(AWKWARD_PASSWORD)
            yield h
            h._collect()
    finally:
        root.removeHandler(raw)
        Engine.statement_hook = None
    out, err = capfd.readouterr()
    leaks = [
        where
        for where, text in (
            ("log record", "\n".join(raw.lines)),
            ("stdout", out),
            ("stderr", err),
            ("error", "\n".join(h.errors)),
        )
        for pw in h.passwords
        if pw and pw in text
    ]
    assert not leaks, f"a password appeared in: {sorted(set(leaks))}"
    # Show what was logged (already checked) so failures stay debuggable.
    print(out, end="")


# -- database users ------------------------------------------------------------------------------
def new_password() -> str:
    return "Init-" + _secrets.token_urlsafe(18)


def create_pg_user(server: PostgresServer, username: str, password: str, *extra: str) -> None:
    """A login role created by the master user, as a DBA on RDS creates one (on PostgreSQL 16+
    the master then holds ADMIN OPTION on it; a role the superuser creates lacks that)."""
    conn = server.connect_super()
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(server.admin_user)))
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(username)))
            cur.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} " + " ".join(extra)).format(
                    sql.Identifier(username), sql.Literal(password)
                )
            )
    finally:
        conn.close()


def by_master(server: PostgresServer, statement: str) -> str:
    """``statement`` run as the master user, as a DBA on RDS runs it (on PostgreSQL 16+ the
    master then holds ADMIN OPTION on the roles it creates)."""
    return f'SET ROLE "{server.admin_user}"; {statement}; RESET ROLE'


def create_maria_user(
    server: MariaDBServer, username: str, password: str, host: str = "%", require_ssl: bool = False
) -> None:
    conn = server.connect_super()
    try:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@%s", (username, host))
            cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (username, host, password))
            if require_ssl:
                cur.execute("ALTER USER %s@%s REQUIRE SSL", (username, host))
    finally:
        conn.close()


def pg_login(server: PostgresServer, username: str, password: str, tls: bool = True) -> bool:
    try:
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=server.port,
            user=username,
            password=password,
            dbname="postgres",
            sslmode="require" if tls else "disable",
            connect_timeout=5,
        )
    except psycopg2.OperationalError:
        return False
    conn.close()
    return True


def maria_login(server: MariaDBServer, username: str, password: str, source: str | None = None) -> bool:
    """True when the login works (from ``source``, a loopback address, when given)."""
    import pymysql

    try:
        conn = pymysql.connect(
            host="127.0.0.1",
            port=server.port,
            user=username,
            password=password,
            bind_address=source,
            ssl={"ca": str(server.tls.ca_cert)} if server.tls else None,
            connect_timeout=5,
        )
    except pymysql.err.OperationalError:
        return False
    conn.close()
    return True


@dataclass
class Db:
    """One engine under test: its server, how to make a user, how to check a login."""

    name: str
    server: Any
    make_user: Callable[[str, str], None]
    login: Callable[[str, str], bool]

    def secret(self, username: str, password: str, **extra: Any) -> dict[str, Any]:
        return self.server.secret(username, password, **extra)


def pg_db(server: PostgresServer) -> Db:
    return Db(
        "postgres", server, lambda u, p: create_pg_user(server, u, p), lambda u, p: pg_login(server, u, p)
    )


def maria_db(server: MariaDBServer) -> Db:
    return Db(
        "mariadb",
        server,
        lambda u, p: create_maria_user(server, u, p),
        lambda u, p: maria_login(server, u, p),
    )


# The PostgreSQL rotation tests run once per version in PG_VERSIONS (default: 17).
PG_PARAMS = [pytest.param(v, id=f"pg{v}") for v in pg_test_versions()]


@pytest.fixture(params=PG_PARAMS)
def pg_server(request: pytest.FixtureRequest, pg_servers: PgServers) -> PostgresServer:
    return pg_servers.get(request.param)


@pytest.fixture
def pg(pg_server: PostgresServer) -> Db:
    return pg_db(pg_server)


@pytest.fixture(params=[*PG_PARAMS, pytest.param("mariadb", id="mariadb")])
def db(request: pytest.FixtureRequest, pg_servers: PgServers) -> Db:
    if request.param == "mariadb":
        return maria_db(request.getfixturevalue("maria_server"))
    return pg_db(pg_servers.get(request.param))


def unique_user(prefix: str = "app") -> str:
    return f"{prefix}_{_secrets.token_hex(3)}"


# -- a second server of each kind: someone else's server (the master must never act there) --------
@pytest.fixture(scope="session")
def pg_other(tls_files: Any) -> Iterator[PostgresServer]:
    with PostgresServer(tls_files) as server:
        yield server


@pytest.fixture(scope="session")
def maria_other(tls_files: Any) -> Iterator[MariaDBServer]:
    with MariaDBServer(tls_files) as server:
        yield server
