"""MySQL-compatible engines (MySQL, MariaDB, Aurora MySQL) through pymysql."""

from __future__ import annotations

from typing import Any

import pymysql
import pymysql.err

from ..errors import ConnectError, DatabaseError, LoginRejected
from ..passwords import DEFAULT_EXCLUDE_CHARACTERS
from .base import Credentials, Engine, ca_bundle, connect_timeout, describe_driver_error, tls_context

# Server errors that mean "these credentials were refused" (another password may work).
_REJECTED = {
    1045,  # ER_ACCESS_DENIED_ERROR
    1044,  # ER_DBACCESS_DENIED_ERROR
    1698,  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    1862,  # ER_MUST_CHANGE_PASSWORD_LOGIN
    4151,  # MariaDB ER_ACCOUNT_HAS_BEEN_LOCKED
    3118,  # MySQL ER_ACCOUNT_HAS_BEEN_LOCKED
}

# Server errors that mean "a statement was cancelled at a session limit".
_WAIT_LIMITS = {
    1205: "lock",  # ER_LOCK_WAIT_TIMEOUT (metadata and InnoDB row locks)
    1969: "statement",  # MariaDB ER_STATEMENT_TIMEOUT (max_statement_time)
    3024: "statement",  # MySQL ER_QUERY_TIMEOUT (max_execution_time)
}

# Which other host entries ``_entries`` lists (fixed SQL text, compared by the server).
_ENTRY_FILTERS = {
    "all": "",
    "differing": " AND NOT (u.plugin <=> me.plugin AND u.authentication_string <=> me.authentication_string)",
    # Unsalted hashes only: equal passwords give equal hashes (mysql_native_password, ed25519).
    "stale": " AND me.plugin IN ('mysql_native_password', 'ed25519') AND u.plugin = me.plugin"
    " AND NOT u.authentication_string <=> me.authentication_string",
}

#: Seconds a statement may wait for the server once logged in (the login itself is bounded by
#: DB_CONNECT_TIMEOUT).
STATEMENT_TIMEOUT = 30


def is_mariadb(conn: Any) -> bool:
    return "mariadb" in str(getattr(conn, "server_version", "")).lower()


class MySQLEngine(Engine):
    family = "mysql"
    default_port = 3306
    max_username_length = 32  # MySQL 5.7+/8.0; MariaDB allows 80 (see MariaDBEngine)
    default_exclude_characters = DEFAULT_EXCLUDE_CHARACTERS["mysql"]
    driver_error = pymysql.err.MySQLError

    def _connect(self, creds: Credentials) -> Any:
        timeout = connect_timeout()
        kwargs: dict[str, Any] = {
            "host": creds.host,
            "port": creds.port,
            "user": creds.username,
            # pymysql would encode a str password as latin-1 ('€' could never log in, and the
            # UnicodeEncodeError quoted the character): send the UTF-8 bytes, the encoding of the
            # utf8mb4 connections through which passwords are set (ours included).
            "password": creds.password.encode("utf-8"),
            "database": creds.dbname or None,
            # pymysql's connect_timeout bounds only the TCP connect; the greeting, the TLS handshake
            # and authentication wait on its read/write timeouts. They get the connect timeout too,
            # so a server that accepts and never answers fails within DB_CONNECT_TIMEOUT.
            "connect_timeout": timeout,
            "read_timeout": timeout,
            "write_timeout": timeout,
            "autocommit": True,
            "charset": "utf8mb4",
        }
        if creds.tls:
            # An SSLContext makes pymysql refuse a server without TLS before it sends credentials.
            kwargs["ssl"] = tls_context(ca_bundle())
        else:
            kwargs["ssl_disabled"] = False  # opted out: TLS when offered, plaintext allowed
        self._hook("before", "connect")
        try:
            conn = pymysql.connect(**kwargs)
        except pymysql.err.OperationalError as exc:
            detail = describe_driver_error(exc, creds.password)
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            if code in _REJECTED:
                raise LoginRejected(
                    f"cannot log in to {creds.where} as {creds.username}: {detail}", detail
                ) from None
            raise ConnectError(
                f"cannot connect to {creds.where} as {creds.username}: {detail}", detail
            ) from None
        except pymysql.err.MySQLError as exc:
            detail = describe_driver_error(exc, creds.password)
            raise ConnectError(
                f"cannot connect to {creds.where} as {creds.username}: {detail}", detail
            ) from None
        except Exception as exc:  # ssl.SSLError, socket errors raised before pymysql wraps them
            detail = describe_driver_error(exc, creds.password)
            raise ConnectError(
                f"cannot connect to {creds.where} as {creds.username}: {detail}", detail
            ) from None
        # Logged in: statements get their own timeouts. pymysql has no public setter; its
        # Connection applies these attributes before each read and write (pymysql 1.2).
        conn._read_timeout = STATEMENT_TIMEOUT
        conn._write_timeout = STATEMENT_TIMEOUT
        self._hook("after", "connect")
        return conn

    def _limit_statement(self, conn: Any, lock_seconds: int, statement_seconds: int) -> tuple[Any, Any]:
        # lock_wait_timeout bounds metadata locks (LOCK TABLES, DDL, the grant tables),
        # innodb_lock_wait_timeout row locks; the statement limit is MariaDB's max_statement_time
        # (seconds) or MySQL's max_execution_time (milliseconds, read-only SELECTs).
        if is_mariadb(conn):
            limit, value = "max_statement_time", statement_seconds
        else:
            limit, value = "max_execution_time", statement_seconds * 1000
        return (
            "SET SESSION lock_wait_timeout = %s, innodb_lock_wait_timeout = %s, " + limit + " = %s",
            (lock_seconds, lock_seconds, value),
        )

    def wait_limit_kind(self, exc: BaseException) -> str | None:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        return _WAIT_LIMITS.get(code) if code is not None else None

    def login_identity(self, conn: Any) -> str:
        rows = self.execute(conn, "select current_user", "SELECT CURRENT_USER()")
        return str(rows[0][0]).rsplit("@", 1)[0]

    # -- host entries --------------------------------------------------------------------------
    # ``'app'@'10.0.1.%'`` and ``'app'@'10.0.2.%'`` are separate accounts with one name; the server
    # matches one of them per connection, by the client's address. Each step may run in a Lambda
    # container with another address, so every step looks at every entry, not the one it matched.
    # Other entries are found through ``mysql.user`` (when the user may read it) and changed with
    # ``ALTER USER`` (which needs CREATE USER). Without read access to ``mysql.user`` a user cannot
    # see its other entries (nor can AWS's function): the log line then says so.

    def _entries(self, conn: Any, which: str) -> tuple[str, str, list[str] | None]:
        """(user, matched host, other hosts or None when invisible). ``which``: "all" other entries,
        "differing" (stored password not provably the matched entry's), or "stale" (provably another
        password: same unsalted plugin, another hash; salted hashes cannot be compared)."""
        # information_schema.TABLES lists only tables the user has a privilege on, so this asks
        # "may I read mysql.user?" without an access-denied error (the server counts those).
        rows = self.execute(
            conn,
            "select current_user",
            "SELECT CURRENT_USER(), (SELECT COUNT(*) FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'user')",
        )
        user, host = str(rows[0][0]).rsplit("@", 1)
        if not rows[0][1]:
            return user, host, None
        # The hashes are compared by the server; none is ever read by this function.
        found = self.execute(
            conn,
            "list host entries",
            "SELECT u.Host FROM mysql.user u JOIN mysql.user me ON me.User = u.User AND me.Host = %s"  # noqa: S608 - fixed filters
            " WHERE u.User = %s AND u.Host <> me.Host" + _ENTRY_FILTERS[which] + " ORDER BY u.Host",
            (host, user),
        )
        return user, host, [str(row[0]) for row in found]

    @staticmethod
    def _invisible(user: str) -> dict[str, Any]:
        return {
            "host_entries_warning": f"cannot see other host entries of {user!r} (no read access to "
            "mysql.user): any other entry keeps its old password"
        }

    def _change_others(
        self, conn: Any, user: str, host: str, others: list[str], password: str, secrets: tuple[str, ...]
    ) -> list[str]:
        changed: list[str] = []
        for other in others:
            try:
                self.execute(
                    conn,
                    "alter other host entry",
                    "ALTER USER %s@%s IDENTIFIED BY %s",
                    (user, other, password),
                    secrets,
                )
            except DatabaseError as exc:
                done = f"; already changed: {', '.join(changed)}" if changed else "; nothing was changed"
                entries = ", ".join(account(user, h) for h in others)
                raise DatabaseError(
                    f"{account(user, host)} has other host entries ({entries}) that it may not change "
                    f"({exc.detail}){done}. Give it the CREATE USER privilege, drop the extra entries, "
                    "or rotate with alternating users (masterarn)",
                    exc.detail,
                ) from None
            changed.append(account(user, other))
        return changed

    def set_own_password(self, conn: Any, creds: Credentials, new_password: str) -> dict[str, Any]:
        """Change the password of every host entry of the logged-in user that it may change:
        the other entries first (if one may not be changed, nothing is), its own entry last."""
        secrets = (new_password, creds.password)
        user, host, others = self._entries(conn, "all")
        facts = self._invisible(user) if others is None else {}
        changed = self._change_others(conn, user, host, others or [], new_password, secrets)
        # The own entry last: the statement names no account, the server changes the one it matched.
        # MariaDB lets a user without CREATE USER change its own password only through SET PASSWORD.
        if is_mariadb(conn):
            statement, label = "SET PASSWORD = PASSWORD(%s)", "set password"
        else:
            statement, label = "ALTER USER CURRENT_USER() IDENTIFIED BY %s", "alter user"
        self.execute(conn, label, statement, (new_password,), secrets=secrets)
        facts["host_entries_changed"] = [*changed, account(user, host)]
        return facts

    def complete_own_password(self, conn: Any, creds: Credentials) -> dict[str, Any]:
        """The pending password logged in through one entry (an earlier attempt set it there):
        every other entry whose stored password is not provably the same gets it too."""
        user, host, others = self._entries(conn, "differing")
        if others is None:
            return self._invisible(user)
        changed = self._change_others(conn, user, host, others, creds.password, (creds.password,))
        return {"host_entries_changed": changed} if changed else {}

    def check_own_entries(self, conn: Any) -> dict[str, Any]:
        """testSecret: no other entry of the logged-in user provably has another password."""
        user, host, others = self._entries(conn, "stale")
        if others is None:
            return self._invisible(user)
        if others:
            names = ", ".join(account(user, h) for h in others)
            raise DatabaseError(
                f"the pending credentials log in through {account(user, host)}, but {names} "
                "has another password: a client whose address matches it could not log in"
            )
        return {}


def account(user: str, host: str) -> str:
    """``'user'@'host'`` as MySQL writes an account (names are not secret)."""
    return "'{}'@'{}'".format(user.replace("'", "''"), host.replace("'", "''"))


class MariaDBEngine(MySQLEngine):
    family = "mariadb"
    max_username_length = 80
