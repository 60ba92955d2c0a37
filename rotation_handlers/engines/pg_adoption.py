"""Taking over an existing alternate login on PostgreSQL.

An existing alternate role is taken over only when it carries this function's comment
(:func:`~.users.pair_marker`; checked by the caller), or it has the shape AWS's alternating
function leaves (aws-samples/aws-secrets-manager-rotation-lambdas, ``SecretsManagerRDSPostgreSQL
RotationMultiUser``: ``CREATE ROLE <user>_clone WITH LOGIN``, then ``GRANT <user> TO
<user>_clone``) with nothing the current user lacks: LOGIN; ``<user>_clone`` a member of
``<user>`` and never the other way round; no members; no memberships or powers the current user
lacks; and, unless the current user inherits it, no objects it owns, no default privileges it
defines and no privilege granted to it that the current user does not hold too; or, only when the
shape does not hold, this secret's history names it (``vouched``: AWSPREVIOUS or another labelled
version holds that username). Anything else is refused, every problem named, in the transaction
that would have changed it (so nothing changes).
"""

from __future__ import annotations

from typing import Any

from ..errors import DatabaseError
from .pg_privileges import FOLLOWER_PRIVILEGES, describe
from .pg_roles import FLAGS, is_member
from .pg_session import MasterSession
from .users import CLONE_SUFFIX, Vouch, pair_marker


def accept_existing(
    tx: MasterSession, conn: Any, current: dict[str, Any], other: dict[str, Any], vouched: Vouch | None
) -> str:
    """How an existing alternate role not marked as ours is recognised as the application's
    other login (for the log line): shaped like a clone with nothing the current user lacks,
    or named by this secret's history (asked only when the shape does not hold). Otherwise
    refuse, naming every problem; the caller's transaction is rolled back, nothing changed."""
    name, cur = other["rolname"], current["rolname"]
    problems = link_problems(tx, conn, current, other)
    if not other["rolcanlogin"]:
        problems.append("it is NOLOGIN (a group role, not a login)")
    powers = [yes for column, yes, _ in FLAGS if other[column] and not current[column]]
    powers = [p for p in powers if p != "CREATEDB"]
    if powers:
        problems.append(f"it has {', '.join(powers)}, which {cur!r} has not")
    members = tx.exec(
        conn,
        "read members",
        "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
        " WHERE m.roleid = %s AND m.member <> %s AND r.rolname <> current_user ORDER BY 1",
        (other["oid"], current["oid"]),
    )
    if members:
        shown = ", ".join(repr(m[0]) for m in members[:5])
        problems.append(f"it has members ({shown}) who would gain the application's privileges")
    extra = tx.exec(
        conn,
        "read memberships",
        "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " WHERE m.member = %s AND m.roleid <> %s AND NOT pg_has_role(%s, m.roleid, 'MEMBER') ORDER BY 1",
        (other["oid"], current["oid"], current["oid"]),
    )
    if extra:
        shown = ", ".join(repr(m[0]) for m in extra[:5])
        problems.append(f"it is a member of roles {cur!r} is not ({shown})")
    problems += holdings_beyond(tx, conn, current, other)
    if not problems:
        return "shaped like a clone"
    label = vouched() if vouched is not None else None
    if label:
        return f"named by {label}"
    raise DatabaseError(
        f"the role {name!r} exists and is not an alternate login of {cur!r} made by this function "
        f"or by AWS's rotation functions, and no earlier version of this secret names it: "
        f"{'; '.join(problems)}. Nothing was changed: rename or drop {name!r}, or, if it is meant to "
        f"be the alternate login, fix the above or mark it with COMMENT ON ROLE ... IS "
        f"'{pair_marker(cur)}'"
    )


def link_problems(tx: MasterSession, conn: Any, current: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """AWS's pair: ``<user>_clone`` is a member of ``<user>``, and ``<user>`` is in no way a
    member of ``<user>_clone`` (that would hand the application's login and objects to a role
    that only lends it privileges)."""
    cur = current["rolname"]
    base, clone = (current, other) if other["rolname"] == cur + CLONE_SUFFIX else (other, current)
    if not (is_member(other, current) or is_member(current, other)):
        return [f"neither it nor {cur!r} is a member of the other"]
    reverse = tx.exec(
        conn,
        "check pair direction",
        "SELECT pg_has_role(%s, %s, 'MEMBER')",
        (base["oid"], clone["oid"]),
    )[0][0]
    if not reverse and is_member(clone, base):
        return []
    if base is current:
        return [f"{cur!r} is a member of it (a clone is a member of the user it copies, not the reverse)"]
    return [f"it is a member of {cur!r} (the base login of a pair is not a member of its clone)"]


def holdings_beyond(
    tx: MasterSession, conn: Any, current: dict[str, Any], other: dict[str, Any]
) -> list[str]:
    """What ``other`` owns or was granted that ``current`` lacks. Nothing when ``current``
    inherits ``other`` (then it has all of it); in this database and on shared objects each
    privilege is compared, in other databases anything it owns or holds counts."""
    inherits = tx.exec(
        conn, "check inheritance", "SELECT pg_has_role(%s, %s, 'USAGE')", (current["oid"], other["oid"])
    )[0][0]
    if inherits:
        return []
    problems: list[str] = []
    rows = tx.exec(
        conn,
        "read dependencies by database",
        "SELECT coalesce(d.datname, ''), d.datname = current_database(),"
        " count(*) FILTER (WHERE s.deptype = 'o' AND s.classid <> 'pg_default_acl'::regclass),"
        " count(*) FILTER (WHERE s.deptype = 'o' AND s.classid = 'pg_default_acl'::regclass),"
        " count(*) FILTER (WHERE s.deptype = 'a')"
        " FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid"
        " WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = %s AND s.deptype IN ('o', 'a')"
        " GROUP BY 1, 2 ORDER BY 2 DESC, 1",
        (other["oid"],),
    )
    for dbname, here, owned, defaults, granted in rows:
        where = f"in database {dbname!r}" if dbname else "among shared objects (databases, tablespaces)"
        if owned:
            problems.append(f"it owns {owned} object(s) {where}")
        if defaults:
            problems.append(f"it defines default privileges {where}")
        if granted and dbname and not here:
            problems.append(f"it holds {granted} privilege(s) {where}, which are not compared from here")
    theirs = tx.exec(conn, "read privileges", FOLLOWER_PRIVILEGES, {"f": other["oid"]})
    mine = {
        tuple(row[:4]): bool(row[4])
        for row in tx.exec(conn, "read privileges", FOLLOWER_PRIVILEGES, {"f": current["oid"]})
    }
    missing = [
        row
        for row in theirs
        if row[0] != "DEFAULT BY"
        and row[6] != current["oid"]
        and (tuple(row[:4]) not in mine or (row[4] and not mine[tuple(row[:4])]))
    ]
    if missing:
        shown = "; ".join(describe(row) for row in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        problems.append(f"it holds privileges {current['rolname']!r} lacks ({shown}{more})")
    return problems
