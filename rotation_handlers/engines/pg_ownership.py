"""Handing the follower's objects and privileges to the primary, database by database.

In the connected database (the rotated secret's ``dbname``) and then in every other database
where ``pg_shdepend`` shows the follower owning objects or holding privileges (one master
connection each): objects the follower owns go to the primary (``REASSIGN OWNED``); privileges
granted to the follower are granted to the primary and revoked from the follower (not those held
``WITH GRANT OPTION``); default privileges granted to it, or defined by it, move to the primary.
Grants that the master cannot make only warn in PostgreSQL, so the result is read back; if the
primary is about to become current and misses anything, setSecret fails naming it rather than
switching the application to a login that cannot use it.

A CREATEROLE master borrows membership in the roles involved for the transaction. Privileges on
objects owned by ``pg_database_owner`` (the ``public`` schema) move through the database's owner.
Databases the master may not CONNECT to are skipped when the follower becomes current (it keeps
what it has there) and refused, naming ``GRANT CONNECT``, when the primary does.
"""

from __future__ import annotations

from typing import Any

from psycopg2 import sql

from ..errors import DatabaseError
from .pg_privileges import FOLLOWER_PRIVILEGES, describe, moves
from .pg_roles import AdminOptionMissing, require_admin, sql_quote_ident
from .pg_session import MasterSession
from .users import LOCK_WAIT_PREFIX

CANNOT_GIVE = "the master user cannot give"


def dependencies(
    tx: MasterSession, conn: Any, follower: dict[str, Any], shared: bool
) -> tuple[int, int, list[str], list[str]]:
    """From ``pg_shdepend``: objects the follower owns in this database, privileges and default
    privileges that involve it here (and on shared objects when ``shared``), and the other
    databases where it owns objects or holds privileges: those the master may connect to, and
    those it lacks CONNECT on."""
    rows = tx.exec(
        conn,
        "read follower dependencies",
        "WITH here AS (SELECT oid FROM pg_database WHERE datname = current_database())"
        " SELECT count(*) FILTER (WHERE s.deptype = 'o' AND s.dbid = here.oid"
        "  AND s.classid <> 'pg_default_acl'::regclass),"
        " count(*) FILTER (WHERE (s.deptype = 'a' OR s.classid = 'pg_default_acl'::regclass)"
        "  AND (s.dbid = here.oid OR (s.dbid = 0 AND %s))),"
        " coalesce(array_agg(DISTINCT d.datname ORDER BY d.datname)"
        "  FILTER (WHERE d.oid IS NOT NULL AND d.oid <> here.oid AND d.datallowconn"
        "  AND has_database_privilege(current_user, d.oid, 'CONNECT')), '{}'),"
        " coalesce(array_agg(DISTINCT d.datname ORDER BY d.datname)"
        "  FILTER (WHERE d.oid IS NOT NULL AND d.oid <> here.oid AND d.datallowconn"
        "  AND NOT has_database_privilege(current_user, d.oid, 'CONNECT')), '{}')"
        " FROM here, pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid"
        " WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = %s AND s.deptype IN ('o', 'a')",
        (shared, follower["oid"]),
    )
    owned, acl, others, closed = rows[0]
    return int(owned), int(acl), [str(d) for d in others or []], [str(d) for d in closed or []]


def hand_over(
    tx: MasterSession,
    conn: Any,
    primary: dict[str, Any],
    follower: dict[str, Any],
    pending_user: str,
    shared: bool,
) -> tuple[int, list[str], list[str]]:
    """In the connected database: objects the follower owns go to the primary (``REASSIGN
    OWNED``), privileges and default privileges granted to it move to the primary, and
    default privileges it defined are defined for the primary too. 0 when there is nothing.

    Both logins can then use everything through the primary. If the master cannot do it and
    the primary is about to become current, the step fails rather than switching the
    application to a login that cannot use those objects; if the follower is about to become
    current, it keeps its own objects and privileges and the handover waits for a later run.
    """
    owned, acl, others, closed = dependencies(tx, conn, follower, shared)
    grants: list[tuple[Any, ...]] = []
    if acl:
        grants = tx.exec(
            conn,
            "read follower privileges",
            FOLLOWER_PRIVILEGES + ("" if shared else " WHERE kind NOT IN ('DATABASE', 'TABLESPACE')"),
            {"f": follower["oid"]},
        )
    if not owned and not grants:
        return 0, others, closed
    p_name, f_name = primary["rolname"], follower["rolname"]
    p_ident, f_ident = sql.Identifier(p_name), sql.Identifier(f_name)
    tx.exec(conn, "savepoint", "SAVEPOINT hand_over")
    try:
        owners = sorted({int(row[6]) for row in grants} - {follower["oid"], primary["oid"]})
        granted = borrow_membership(tx, conn, (f_name, p_name), owners)
        if owned:
            tx.exec(conn, "reassign owned", sql.SQL("REASSIGN OWNED BY {} TO {}").format(f_ident, p_ident))
        for statement in moves(grants, p_ident, f_ident):
            tx.exec(conn, "move privilege", statement)
        if grants:
            check_moved(tx, conn, grants, primary)
        for role in granted:
            tx.exec(
                conn,
                "revoke membership from master",
                sql.SQL("REVOKE {} FROM CURRENT_USER").format(sql.Identifier(role)),
            )
        tx.exec(conn, "release savepoint", "RELEASE SAVEPOINT hand_over")
    except DatabaseError as exc:
        tx.exec(conn, "rollback to savepoint", "ROLLBACK TO SAVEPOINT hand_over")
        if str(exc).startswith(LOCK_WAIT_PREFIX):
            if pending_user == p_name:
                raise
            return 0, others, closed
        if pending_user == p_name and (
            isinstance(exc, AdminOptionMissing) or str(exc).startswith(CANNOT_GIVE)
        ):
            raise
        if pending_user == p_name:
            raise DatabaseError(
                f"{f_name!r} owns {owned} object(s) in database {tx.database(conn)!r} that "
                f"{p_name!r} could not use after the switch, and the master user cannot hand them "
                f"over ({exc.detail}); run REASSIGN OWNED BY {f_name} TO "
                f"{p_name} there as a superuser, or give the master membership in both roles",
                exc.detail,
            ) from None
        return 0, others, closed
    return owned + len(grants), others, closed


def refuse_closed(
    tx: MasterSession, conn: Any, primary: dict[str, Any], follower: dict[str, Any], closed: list[str]
) -> None:
    """The primary is about to become current and the follower has objects or privileges in
    databases the master cannot connect to: fail (the transaction is rolled back) naming the
    grant. When the follower becomes current instead, it keeps them and nothing is needed."""
    master = str(tx.exec(conn, "current user", "SELECT current_user")[0][0])
    grants = "; ".join(
        f"GRANT CONNECT ON DATABASE {sql_quote_ident(db)} TO {sql_quote_ident(master)}" for db in closed
    )
    raise DatabaseError(
        f"{follower['rolname']!r} owns objects or holds privileges in database(s) "
        f"{', '.join(repr(db) for db in closed)} that {primary['rolname']!r} needs once it is "
        f"current, and the master user {master!r} cannot connect there to hand them over (it "
        f"lacks CONNECT). Nothing was changed; a DBA runs {grants}, then the rotation's retry "
        "completes"
    )


def check_moved(tx: MasterSession, conn: Any, grants: list[tuple[Any, ...]], primary: dict[str, Any]) -> None:
    """GRANT by a role that may not grant only warns: check the primary got every privilege."""
    rows = tx.exec(conn, "read primary privileges", FOLLOWER_PRIVILEGES, {"f": primary["oid"]})
    have = {tuple(row[:4]) for row in rows}
    missing = [row for row in grants if row[0] != "DEFAULT BY" and tuple(row[:4]) not in have]
    if missing:
        shown = "; ".join(describe(row) for row in missing[:5])
        owners = tx.exec(
            conn,
            "read owners",
            "SELECT CASE WHEN r.oid = to_regrole('pg_database_owner')"
            " THEN format('the owner of database %%L, %%L', d.datname, pg_get_userbyid(d.datdba))"
            " ELSE quote_literal(r.rolname) END FROM pg_roles r, pg_database d"
            " WHERE d.datname = current_database() AND r.oid = ANY(%s) ORDER BY 1",
            (sorted({int(row[6]) for row in missing[:5]}),),
        )
        raise DatabaseError(
            f"{CANNOT_GIVE} {primary['rolname']!r} {len(missing)} privilege(s) its "
            f"alternate login holds ({shown}): it must own those objects, be able to act as their "
            "owner, or hold the privileges WITH GRANT OPTION. Their owner grants them to "
            f"{primary['rolname']!r} (owned by {', '.join(str(r[0]) for r in owners)}), or gives the "
            "master these privileges WITH GRANT OPTION; then the rotation's retry completes"
        )


def borrow_membership(
    tx: MasterSession, conn: Any, roles: tuple[str, ...], owners: list[int] | None = None
) -> list[str]:
    """REASSIGN OWNED and GRANT need the privileges of both roles (and of the owners of objects
    whose privileges move): a CREATEROLE master grants itself membership for the duration of
    the transaction (revoked before it commits). Superuser-owned objects are left to the check."""
    if owners:
        # pg_database_owner (the owner of ``public`` since PostgreSQL 15) cannot be granted: its
        # only member is the database's owner, whose role is borrowed instead.
        rows = tx.exec(
            conn,
            "read owners",
            "SELECT DISTINCT r.rolname FROM pg_roles r WHERE NOT r.rolsuper AND r.oid IN (SELECT CASE"
            " WHEN o = to_regrole('pg_database_owner') THEN (SELECT datdba FROM pg_database"
            " WHERE datname = current_database()) ELSE o END FROM unnest(%s::oid[]) o) ORDER BY 1",
            (owners,),
        )
        roles = roles + tuple(str(r[0]) for r in rows)
    needed = [
        role
        for role in roles
        if not tx.exec(
            conn, "check own membership", "SELECT pg_has_role(current_user, %s, 'USAGE')", (role,)
        )[0][0]
    ]
    require_admin(tx, conn, needed, "act as them while it hands objects and privileges over")
    granted: list[str] = []
    for role in needed:
        tx.exec(
            conn,
            "grant membership to master",
            sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)),
        )
        granted.append(role)
    return granted
