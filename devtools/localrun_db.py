"""The local run's databases: an application schema and users, and login checks.

Everything is done as the admin user over TCP with TLS (what a master secret holds), so the
admin owns the application table and the users, exactly as on a managed database.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from devtools.dbservers import MariaDBServer, PostgresServer

DBNAME = "appdb"
TABLE = "orders"


def new_password() -> str:
    return "Init-" + secrets.token_urlsafe(18)


@dataclass
class DemoDb:
    """One server with the application database, table and users."""

    label: str  # "PostgreSQL" / "MariaDB"
    key: str  # "pg" / "mysql" (secret names)
    engine: str  # the secret's "engine"
    server: PostgresServer | MariaDBServer

    @property
    def is_pg(self) -> bool:
        return isinstance(self.server, PostgresServer)

    # -- connections -------------------------------------------------------------------------
    def _connect(self, user: str, password: str, dbname: str | None) -> Any:
        tls = self.server.tls
        assert tls is not None
        if self.is_pg:
            import psycopg2

            conn = psycopg2.connect(
                host="127.0.0.1",
                port=self.server.port,
                user=user,
                password=password,
                dbname=dbname or "postgres",
                sslmode="verify-full",
                sslrootcert=str(tls.ca_cert),
                connect_timeout=5,
            )
            conn.autocommit = True
            return conn
        import pymysql

        return pymysql.connect(
            host="127.0.0.1",
            port=self.server.port,
            user=user,
            password=password,
            database=dbname,
            ssl={"ca": str(tls.ca_cert)},
            connect_timeout=5,
            autocommit=True,
        )

    def _admin(self, dbname: str | None = None) -> Any:
        return self._connect(self.server.admin_user, self.server.admin_password, dbname)

    # -- setup -------------------------------------------------------------------------------
    def create_schema(self) -> None:
        """The application database and table, owned by the admin user."""
        create_table = (
            f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, item VARCHAR(40) NOT NULL, qty INTEGER NOT NULL)"
        )
        rows = [(1, "coffee", 2), (2, "tea", 1), (3, "cake", 3)]
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {DBNAME}")
        finally:
            conn.close()
        conn = self._admin(DBNAME)
        try:
            with conn.cursor() as cur:
                cur.execute(create_table)
                cur.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s)", rows)  # noqa: S608
        finally:
            conn.close()

    def create_user(self, username: str, password: str) -> None:
        """A login user that may read and write the application table (and nothing else)."""
        conn = self._admin(DBNAME)
        try:
            with conn.cursor() as cur:
                if self.is_pg:
                    from psycopg2 import sql

                    ident = sql.Identifier(username)
                    cur.execute(
                        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password))
                    )
                    cur.execute(
                        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(DBNAME), ident)
                    )
                    cur.execute(
                        sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(
                            sql.Identifier(TABLE), ident
                        )
                    )
                else:
                    cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (username, password))
                    cur.execute(f"GRANT SELECT, INSERT, UPDATE ON {DBNAME}.{TABLE} TO %s@'%%'", (username,))
        finally:
            conn.close()

    def secret(self, username: str, password: str, **extra: Any) -> dict[str, Any]:
        return self.server.secret(username, password, dbname=DBNAME, **extra)

    # -- checks ------------------------------------------------------------------------------
    def login(self, username: str, password: str) -> str:
        """``"yes"`` if the credentials log in over TLS and read the table, else why not."""
        try:
            conn = self._connect(username, password, DBNAME)
        except Exception:
            return "no"
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {TABLE}")  # noqa: S608
                cur.fetchall()
        except Exception:
            return "no table"
        finally:
            conn.close()
        return "yes"

    def stats(self) -> dict[str, int]:
        return self.server.stats()
