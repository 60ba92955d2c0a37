"""PostgreSQL-compatible engines (PostgreSQL, Aurora PostgreSQL) through psycopg2."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from ..errors import ConnectError, LoginRejected
from ..passwords import DEFAULT_EXCLUDE_CHARACTERS
from .base import Credentials, Engine, ca_bundle, connect_timeout, describe_driver_error
from .pg_connect import connect_reporting_sqlstate

# Only these SQLSTATEs mean "these credentials were refused" (another password may work):
# 28P01 invalid_password, 28000 invalid_authorization_specification. Everything else
# (53300 too many connections, 57P03 starting up, 3D000 unknown database...) is not a
# password problem and ends the search at once.
REJECTED_SQLSTATES = frozenset({"28P01", "28000"})
# libpq reports a failed connection as text only (psycopg2's ``pgcode`` is None), in the
# server's language (``lc_messages``). Connections are therefore opened with libpq's error
# verbosity VERBOSE (see :mod:`.pg_connect`), which puts the SQLSTATE the server sent after the
# severity: ``FATAL:  28P01: <message in any language>``.
_VERBOSE_SQLSTATE = re.compile(r"(?:^|\n|failed: )[^:\n]{1,40}:  ([0-9A-Z]{5}): ")
# libpq's own errors (no server answer) carry no SQLSTATE; this one means no password was sent.
_NO_PASSWORD = re.compile(r"fe_sendauth: no password supplied")
# Used only where VERBOSE could not be set (see pg_connect): the server's English messages,
# PostgreSQL's default ``lc_messages``, anchored at the FATAL line so a user name cannot fake them.
_ENGLISH_SQLSTATES = (
    (re.compile(r'FATAL:\s+password authentication failed for user "'), "28P01"),
    (re.compile(r'FATAL:\s+role ".*" does not exist'), "28000"),
    (re.compile(r'FATAL:\s+role ".*" is not permitted to log in'), "28000"),
    (re.compile(r"FATAL:\s+no pg_hba\.conf entry for"), "28000"),
    (re.compile(r"FATAL:\s+pg_hba\.conf rejects connection"), "28000"),
    (re.compile(r"FATAL:\s+(SCRAM|MD5|Ident|Peer|LDAP|PAM|RADIUS|Kerberos) authentication failed"), "28000"),
)
# The source location VERBOSE adds after the message (whitespace already collapsed to one space).
_LOCATION = re.compile(r" ?LOCATION: [^\s,]+, [^\s:]+:\d+")
SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802 / 7677).

    Sending the verifier instead of the password keeps the password out of the
    statement text, so a server that logs DDL never records it.
    """
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error: psycopg2's own, else the one the server sent with a failed
    connection (present in the message whatever its language, see :mod:`.pg_connect`)."""
    code = getattr(exc, "pgcode", None)
    if code:
        return str(code)
    text = str(exc)
    found = _VERBOSE_SQLSTATE.search(text)
    if found:
        return found.group(1)
    if _NO_PASSWORD.search(text):
        return "28P01"
    return next((state for pattern, state in _ENGLISH_SQLSTATES if pattern.search(text)), None)


class PostgresEngine(Engine):
    family = "postgres"
    default_port = 5432
    max_username_length = 63
    default_exclude_characters = DEFAULT_EXCLUDE_CHARACTERS["postgres"]
    driver_error = psycopg2.Error

    def _connect(self, creds: Credentials) -> Any:
        kwargs: dict[str, Any] = {
            "host": creds.host,
            "port": creds.port,
            "user": creds.username,
            "password": creds.password,
            "dbname": creds.dbname or "postgres",
            "connect_timeout": connect_timeout(),
            "application_name": "secrets-rotation",
        }
        bundle = ca_bundle() if creds.tls else None
        if not creds.tls:
            kwargs["sslmode"] = "prefer"  # opted out: TLS when offered, plaintext allowed
        elif bundle:
            kwargs.update(sslmode="verify-full", sslrootcert=bundle)
        else:
            # Encrypted without verification; "require" would verify against ~/.postgresql/root.crt
            # if one happened to exist, so name a root cert that cannot exist.
            kwargs.update(sslmode="require", sslrootcert="/nonexistent/no-ca-configured")
        self._hook("before", "connect")
        try:
            conn = connect_reporting_sqlstate(kwargs)
        except psycopg2.Error as exc:
            detail = _LOCATION.sub("", describe_driver_error(exc, creds.password))
            if sqlstate(exc) in REJECTED_SQLSTATES:
                raise LoginRejected(
                    f"cannot log in to {creds.where} as {creds.username}: {detail}", detail
                ) from None
            raise ConnectError(
                f"cannot connect to {creds.where} as {creds.username}: {detail}", detail
            ) from None
        conn.autocommit = True
        self._hook("after", "connect")
        return conn

    def _limit_statement(self, conn: Any, lock_seconds: int, statement_seconds: int) -> tuple[Any, Any]:
        return (
            sql.SQL("SET lock_timeout = {}; SET statement_timeout = {}").format(
                sql.Literal(f"{lock_seconds}s"), sql.Literal(f"{statement_seconds}s")
            ),
            None,
        )

    def wait_limit_kind(self, exc: BaseException) -> str | None:
        # SQLSTATEs, whatever the server's message language: 55P03 lock_not_available (lock_timeout),
        # 57014 query_canceled (statement_timeout).
        return {"55P03": "lock", "57014": "statement"}.get(str(getattr(exc, "pgcode", None) or ""))

    def login_identity(self, conn: Any) -> str:
        # session_user, not current_user: a role default (ALTER ROLE app SET role = other) makes
        # every session of app act as other from its first statement, but app is who logged in.
        rows = self.execute(conn, "select session_user", "SELECT session_user")
        return str(rows[0][0])

    def set_own_password(self, conn: Any, creds: Credentials, new_password: str) -> None:
        # A role default (ALTER ROLE app SET role = other) makes the session act as another role,
        # and PostgreSQL lets a role change its own password only while it is the current user.
        # SET ROLE NONE returns to the login role (RESET ROLE would return to the role default:
        # https://www.postgresql.org/docs/current/sql-set-role.html), and SESSION_USER names
        # the role the server authenticated, whatever its spelling or case.
        self.execute(conn, "set role none", "SET ROLE NONE")
        statement = sql.SQL("ALTER ROLE SESSION_USER WITH PASSWORD {}").format(
            sql.Literal(scram_verifier(new_password))
        )
        self.execute(conn, "alter role", statement, secrets=(new_password, creds.password))
