"""PostgreSQL roles of an alternating login pair: reading them, the master's rights over them,
and making one login the *follower* of the other (the *primary*).

* the follower is a member of the primary and has ``INHERIT``, so every privilege the primary
  has (including privileges granted to it later, and the owner's rights on everything the
  primary owns) is effective for the follower;
* ``ALTER ROLE follower SET role = primary``: a follower session runs as the primary from the
  first statement, so whatever the application creates while it logs in as the follower is
  owned by the primary. When the primary itself acts as an owner role (``ALTER ROLE app SET
  role = app_owner``), the follower acts as that role too; per-database settings (``ALTER ROLE
  app IN DATABASE x SET role = app_owner``) are copied database by database;
* role attributes (``SUPERUSER``, ``CREATEDB``, ``CREATEROLE``, ``REPLICATION``, ``BYPASSRLS``,
  ``CONNECTION LIMIT``) are copied from the *current* login to the other one; always ``LOGIN``;
* roles granted directly to the follower are granted to the primary too.

On PostgreSQL 16 and later CREATEROLE covers only the roles the master holds ADMIN OPTION on
(:func:`require_admin` names the ``GRANT ... WITH ADMIN OPTION`` a DBA gives).
"""

from __future__ import annotations

import re
from typing import Any

from psycopg2 import sql

from ..errors import DatabaseError
from .pg_session import MasterSession
from .users import CLONE_SUFFIX, alternate_name

# (pg_roles column, keyword when true, keyword when false)
FLAGS = (
    ("rolsuper", "SUPERUSER", "NOSUPERUSER"),
    ("rolcreatedb", "CREATEDB", "NOCREATEDB"),
    ("rolcreaterole", "CREATEROLE", "NOCREATEROLE"),
    ("rolreplication", "REPLICATION", "NOREPLICATION"),
    ("rolbypassrls", "BYPASSRLS", "NOBYPASSRLS"),
)
#: From PostgreSQL 16, CREATEROLE lets a role grant, alter, comment on or drop only the roles it
#: holds ADMIN OPTION on (it gets it on the roles it creates); before 16 CREATEROLE covered every
#: non-superuser role (https://www.postgresql.org/docs/16/release-16.html, "Restrict the
#: privileges of CREATEROLE and its ability to modify other roles").
_ADMIN_OPTION_VERSION = 160000


class AdminOptionMissing(DatabaseError):
    """The master needs ADMIN OPTION on roles it lacks it on (PostgreSQL 16+); names the GRANT."""


def sql_quote_ident(name: str) -> str:
    """``name`` as PostgreSQL's quote_ident writes it, for statements shown to a DBA."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def role_setting(config: list[str]) -> str | None:
    """The role a login acts as from its per-role ``SET role`` (None when it has none)."""
    for item in config:
        if item.startswith("role="):
            value = item[len("role=") :]
            return value[1:-1].replace('""', '"') if value.startswith('"') and value.endswith('"') else value
    return None


def is_member(member: dict[str, Any], role: dict[str, Any]) -> bool:
    """A direct membership, as read with the roles."""
    return role["oid"] in member["member_of"]


def check_master(tx: MasterSession, conn: Any) -> None:
    rows = tx.exec(
        conn,
        "check master",
        "SELECT current_user, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user",
    )
    name, is_super, can_create = rows[0]
    if not (is_super or can_create):
        raise DatabaseError(
            f"the master user {name!r} cannot create or alter roles (it needs CREATEROLE or SUPERUSER)"
        )


def require_admin(tx: MasterSession, conn: Any, roles: list[str], why: str) -> None:
    """On PostgreSQL 16+, fail before changing anything unless the master holds ADMIN OPTION on
    every role in ``roles``, naming the GRANT a DBA runs (before 16, CREATEROLE is enough)."""
    if not roles or int(getattr(conn, "server_version", 0)) < _ADMIN_OPTION_VERSION:
        return
    rows = tx.exec(
        conn,
        "check admin option",
        "SELECT current_user, array_agg(r.rolname ORDER BY r.rolname) FILTER (WHERE NOT"
        " pg_has_role(current_user, r.oid, 'MEMBER WITH ADMIN OPTION')) FROM pg_roles r"
        " WHERE r.rolname = ANY(%s)",
        (sorted(set(roles)),),
    )
    master, missing = rows[0]
    if missing:
        names = ", ".join(sql_quote_ident(str(r)) for r in missing)
        shown = ", ".join(repr(str(r)) for r in missing)
        raise AdminOptionMissing(
            f"the master user {master!r} lacks ADMIN OPTION on {shown}, which PostgreSQL 16 and "
            f"later require to {why} (CREATEROLE alone covers only the roles {master!r} created). "
            f"Nothing was changed; a DBA runs GRANT {names} TO {sql_quote_ident(str(master))} "
            "WITH ADMIN OPTION, then the rotation's retry completes"
        )


def read_roles(tx: MasterSession, conn: Any, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    columns = ["oid", "rolname", "rolinherit", "rolcanlogin", "rolconnlimit"] + [f[0] for f in FLAGS]
    rows = tx.exec(
        conn,
        "read roles",
        sql.SQL(
            "SELECT {}, ARRAY(SELECT m.roleid FROM pg_auth_members m WHERE m.member = r.oid),"
            " shobj_description(r.oid, 'pg_authid'), coalesce((SELECT s.setconfig"
            " FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0), '{{}}')"
            " FROM pg_roles r WHERE r.rolname = ANY(%s)"
        ).format(sql.SQL(", ").join(sql.Identifier(c) for c in columns)),
        (list(names),),
    )
    result: dict[str, dict[str, Any]] = {}
    for row in rows:
        info = dict(zip(columns, row[:-3], strict=True))
        info["member_of"] = list(row[-3] or [])
        info["comment"] = row[-2]
        info["config"] = list(row[-1] or [])
        result[info["rolname"]] = info
    return result


def mark(tx: MasterSession, conn: Any, role: str, marker: str) -> None:
    tx.exec(
        conn,
        "comment on role",
        sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(role), sql.Literal(marker)),
    )


def primary_and_follower(
    roles: dict[str, dict[str, Any]], current_user: str, clone_user: str
) -> tuple[str, str]:
    """(primary, follower): the login the other is a member of is the primary; in a marked pair
    where neither is a member of the other, the name without the suffix."""
    if is_member(roles[clone_user], roles[current_user]):
        return current_user, clone_user
    if is_member(roles[current_user], roles[clone_user]):
        return clone_user, current_user
    # Neither is a member of the other (a marked pair): the name without the suffix is the primary.
    if current_user.endswith(CLONE_SUFFIX) and alternate_name(current_user) == clone_user:
        return clone_user, current_user
    return current_user, clone_user


def make_follower(tx: MasterSession, conn: Any, primary: dict[str, Any], follower: dict[str, Any]) -> int:
    """The follower is an inheriting member of the primary and acts as the role the primary
    acts as: the primary itself, or the owner role its own ``SET role`` names."""
    changes = 0
    p_ident, f_ident = sql.Identifier(primary["rolname"]), sql.Identifier(follower["rolname"])
    if not is_member(follower, primary):
        tx.exec(conn, "grant membership", sql.SQL("GRANT {} TO {}").format(p_ident, f_ident))
        changes += 1
    acting = role_setting(primary["config"])
    if acting == follower["rolname"]:
        # The primary acting as its own follower would be a loop: it acts as itself.
        tx.exec(conn, "alter role reset role", sql.SQL("ALTER ROLE {} RESET role").format(p_ident))
        acting = None
        changes += 1
    acting = acting or primary["rolname"]
    if role_setting(follower["config"]) != acting:
        tx.exec(
            conn,
            "alter role set role",
            sql.SQL("ALTER ROLE {} SET role = {}").format(f_ident, sql.Literal(acting)),
        )
        changes += 1
    return changes + follow_database_roles(tx, conn, primary, follower)


def follow_database_roles(
    tx: MasterSession, conn: Any, primary: dict[str, Any], follower: dict[str, Any]
) -> int:
    """Per-database owner roles (``ALTER ROLE app IN DATABASE x SET role = app_owner``) take
    precedence over the per-role setting: the follower gets the primary's in every database,
    and loses any the primary does not have."""
    rows = tx.exec(
        conn,
        "read per-database roles",
        "SELECT d.datname, s.setrole = %s, x FROM pg_db_role_setting s"
        " JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) x"
        " WHERE s.setrole IN (%s, %s) AND x LIKE 'role=%%' ORDER BY 1",
        (primary["oid"], primary["oid"], follower["oid"]),
    )
    wanted = {str(db): role_setting([str(x)]) for db, mine, x in rows if mine}
    have = {str(db): role_setting([str(x)]) for db, mine, x in rows if not mine}
    changes = 0
    f_ident = sql.Identifier(follower["rolname"])
    for dbname in sorted(set(wanted) | set(have)):
        acting = wanted.get(dbname)
        if acting == follower["rolname"]:
            acting = primary["rolname"]  # the primary acting as its follower there: a loop
        if have.get(dbname) == acting:
            continue
        scope = sql.SQL("ALTER ROLE {} IN DATABASE {} ").format(f_ident, sql.Identifier(dbname))
        if acting is None:
            tx.exec(conn, "alter role reset role in database", scope + sql.SQL("RESET role"))
        else:
            statement = scope + sql.SQL("SET role = {}").format(sql.Literal(acting))
            tx.exec(conn, "alter role set role in database", statement)
        changes += 1
    return changes


def copy_attributes(
    tx: MasterSession, conn: Any, source: dict[str, Any], target: dict[str, Any], follower: dict[str, Any]
) -> int:
    """The current login's attributes are copied to the other one (whichever is the primary);
    both stay LOGIN, and the follower INHERIT."""
    options = []
    if not target["rolcanlogin"]:
        options.append(sql.SQL("LOGIN"))
    if target["oid"] == follower["oid"] and not target["rolinherit"]:
        options.append(sql.SQL("INHERIT"))
    for column, yes, no in FLAGS:
        if target[column] != source[column]:
            options.append(sql.SQL(yes if source[column] else no))
    if target["rolconnlimit"] != source["rolconnlimit"]:
        options.append(sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(int(source["rolconnlimit"]))))
    if not options:
        return 0
    tx.exec(
        conn,
        "alter role attributes",
        sql.SQL("ALTER ROLE {} WITH {}").format(
            sql.Identifier(target["rolname"]), sql.SQL(" ").join(options)
        ),
    )
    return 1


def share_memberships(tx: MasterSession, conn: Any, primary: dict[str, Any], follower: dict[str, Any]) -> int:
    """Roles granted directly to the follower are granted to the primary too."""
    rows = tx.exec(
        conn,
        "read follower memberships",
        "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " WHERE m.member = %s AND m.roleid <> %s AND NOT EXISTS (SELECT 1 FROM pg_auth_members p"
        " WHERE p.member = %s AND p.roleid = m.roleid) ORDER BY r.rolname",
        (follower["oid"], primary["oid"], primary["oid"]),
    )
    why = f"grant them to {primary['rolname']!r} as its alternate login has them"
    require_admin(tx, conn, [str(r[0]) for r in rows], why)
    for (role,) in rows:
        tx.exec(
            conn,
            "grant membership to primary",
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(primary["rolname"])),
        )
    return len(rows)
