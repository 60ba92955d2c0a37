"""PostgreSQL user administration for alternating-user rotation: the interface the strategy uses.

Mechanism: one *primary* role holds the privileges and owns the objects; the other login is its
*follower*, an inheriting member of the primary that acts as it (``ALTER ROLE follower SET role =
primary``), so whatever either login creates is owned by the primary and usable by both. Which
login is the primary does not depend on the secret's direction: a follower is recognised by its
membership in the other role. When the alternate user does not exist yet, the current user is the
primary (normally the base name ``app``, the user the DBA created: it stays the primary when the
secret alternates back to it).

Where each part lives:

* ``pg_session.py``: the master's transactions, bounded by ``lock_timeout`` /
  ``statement_timeout`` (``DB_LOCK_TIMEOUT``, ``DB_STATEMENT_TIMEOUT``); a lock held by the
  application ends the step with a "lock not available, will retry" error.
* ``pg_roles.py``: reading the two roles, the master's rights over them (ADMIN OPTION on
  PostgreSQL 16+), making one the follower of the other, copying attributes, memberships and
  per-database ``SET role`` settings.
* ``pg_adoption.py``: when an existing alternate role is taken over (our marker, AWS's clone shape
  with nothing the current user lacks, or this secret's history), and the refusal naming every
  problem otherwise.
* ``pg_ownership.py``: handing the follower's objects and privileges to the primary, in the
  secret's database and then in every other database where it has any.
* ``pg_privileges.py``: the catalog queries of privileges, the statements that move them, the
  comparable picture of one user's privileges and testSecret's comparison of the two logins.

The main transaction (roles, password, handover in the secret's database) is atomic; the other
databases follow, each idempotent, so a retry converges. The password is sent as a SCRAM-SHA-256
verifier, never in plain text.
"""

from __future__ import annotations

from typing import Any

from psycopg2 import sql

from ..errors import DatabaseError
from . import pg_privileges
from .base import Engine
from .pg_adoption import accept_existing
from .pg_ownership import hand_over, refuse_closed
from .pg_roles import (
    check_master,
    copy_attributes,
    make_follower,
    mark,
    primary_and_follower,
    read_roles,
    require_admin,
    share_memberships,
)
from .pg_session import MasterSession
from .postgres import scram_verifier
from .users import Connector, UserAdmin, Vouch, pair_marker


class PostgresUserAdmin(UserAdmin):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.tx = MasterSession(engine)

    @staticmethod
    def name_length(username: str) -> int:
        return len(username.encode("utf-8"))  # NAMEDATALEN - 1 bytes; longer names are truncated

    # -- setSecret ------------------------------------------------------------------------------
    def ensure_clone(
        self,
        conn: Any,
        current_user: str,
        clone_user: str,
        password: str,
        connect: Connector | None = None,
        vouched: Vouch | None = None,
    ) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        self.tx.begin(conn)
        try:
            check_master(self.tx, conn)
            roles = read_roles(self.tx, conn, (current_user, clone_user))
            if current_user not in roles:
                raise DatabaseError(f"the current user {current_user!r} does not exist")
            require_admin(self.tx, conn, [current_user], "make one login a copy of the other")
            marker = pair_marker(current_user)
            verifier = sql.Literal(scram_verifier(password))
            created = clone_user not in roles
            if created:
                self.tx.exec(
                    conn,
                    "create role",
                    sql.SQL("CREATE ROLE {} WITH LOGIN INHERIT PASSWORD {}").format(
                        sql.Identifier(clone_user), verifier
                    ),
                    secrets=(password,),
                )
                mark(self.tx, conn, clone_user, marker)
                roles = read_roles(self.tx, conn, (current_user, clone_user))
                primary, follower = current_user, clone_user  # a new clone follows the current user
            else:
                facts["alternate_login"] = "marked as ours"
                if roles[clone_user]["comment"] != marker:
                    facts["alternate_login"] = accept_existing(
                        self.tx, conn, roles[current_user], roles[clone_user], vouched
                    )
                require_admin(self.tx, conn, [clone_user], "make one login a copy of the other")
                if roles[clone_user]["comment"] is None:
                    mark(self.tx, conn, clone_user, marker)  # adopted (e.g. a clone AWS's function made)
                primary, follower = primary_and_follower(roles, current_user, clone_user)
            facts["primary_role"] = primary
            p, f = roles[primary], roles[follower]
            changes = make_follower(self.tx, conn, p, f)
            changes += copy_attributes(self.tx, conn, roles[current_user], roles[clone_user], f)
            changes += share_memberships(self.tx, conn, p, f)
            if not created:
                self.tx.exec(
                    conn,
                    "alter role password",
                    sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                        sql.Identifier(clone_user), verifier
                    ),
                    secrets=(password,),
                )
            moved, others, closed = hand_over(self.tx, conn, p, f, clone_user, shared=True)
            if closed:
                facts["databases_not_handed_over"] = closed
                if clone_user == primary:
                    refuse_closed(self.tx, conn, p, f, closed)
            self.tx.exec(conn, "commit", "COMMIT")
        except Exception:
            self.tx.rollback(conn)
            raise
        if connect is not None:
            for dbname in others:
                other = connect(dbname)
                try:
                    self.tx.begin(other)
                    try:
                        moved += hand_over(self.tx, other, p, f, clone_user, shared=False)[0]
                        self.tx.exec(other, "commit", "COMMIT")
                    except Exception:
                        self.tx.rollback(other)
                        raise
                finally:
                    self.engine.close(other)
                facts.setdefault("other_databases", []).append(dbname)
        if moved:
            facts["objects_handed_over"] = moved
        facts["outcome"] = ("user created" if created else "password set") + (
            f", {changes} change(s) to privileges" if changes else ""
        )
        return facts

    # -- comparison -----------------------------------------------------------------------------
    def privileges(self, conn: Any, user: str) -> dict[str, Any]:
        """Attributes, effective role memberships and effective privileges in this database."""
        return pg_privileges.privileges(self.engine, conn, user)

    # -- testSecret -----------------------------------------------------------------------------
    def verify_pending(self, conn: Any, pending_user: str, other_user: str) -> dict[str, Any]:
        return pg_privileges.verify_pending(self.engine, conn, pending_user, other_user)
