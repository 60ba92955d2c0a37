"""The master's transactions on PostgreSQL, bounded by lock and statement timeouts.

Every statement of the alternating-user administration (``pg_roles``, ``pg_adoption``,
``pg_ownership``) runs through :meth:`MasterSession.exec`, which goes through the engine's
``execute`` (so the statement hook sees it) and reports a server-side lock or statement timeout
(``DB_LOCK_TIMEOUT``, ``DB_STATEMENT_TIMEOUT``) as a retryable wait: the transaction is rolled back,
AWSCURRENT is unchanged, and Secrets Manager's retry finishes the step once the application's
transaction ends.
"""

from __future__ import annotations

from typing import Any

from psycopg2 import sql

from ..errors import DatabaseError
from .base import Engine
from .users import LOCK_WAIT_PREFIX, lock_timeout, statement_timeout


class MasterSession:
    """Runs the master's statements through ``engine``; one per ``PostgresUserAdmin``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def begin(self, conn: Any) -> None:
        self.exec(
            conn,
            "begin",
            sql.SQL("BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}").format(
                sql.Literal(f"{lock_timeout()}s"), sql.Literal(f"{statement_timeout()}s")
            ),
        )

    def exec(
        self,
        conn: Any,
        label: str,
        statement: Any,
        params: Any = None,
        secrets: tuple[str, ...] = (),
    ) -> list[tuple[Any, ...]]:
        """``execute``, with a lock or statement timeout reported as a retryable wait."""
        try:
            return self.engine.execute(conn, label, statement, params, secrets=secrets)
        except DatabaseError as exc:
            lowered = exc.detail.lower()
            if "lock timeout" in lowered or "statement timeout" in lowered:
                limit = lock_timeout() if "lock timeout" in lowered else statement_timeout()
                raise DatabaseError(
                    f"{LOCK_WAIT_PREFIX}: {label} waited more than {limit} s, most likely "
                    f"for a lock another session holds on an object of the application ({exc.detail}); "
                    "the transaction was rolled back, AWSCURRENT is unchanged, and Secrets Manager's "
                    "retry of this step finishes the rotation once that transaction ends",
                    exc.detail,
                ) from None
            raise

    def rollback(self, conn: Any) -> None:
        try:
            self.engine.execute(conn, "rollback", "ROLLBACK")
        except Exception:  # noqa: S110 - the connection is closed next; the server rolls back anyway
            pass

    def database(self, conn: Any) -> str:
        return str(self.engine.execute(conn, "current database", "SELECT current_database()")[0][0])
