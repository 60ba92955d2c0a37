"""Reading PostgreSQL privileges from the catalog.

* :data:`FOLLOWER_PRIVILEGES`: every privilege granted directly to one role in the connected
  database (tables, columns, sequences, schemas, routines, types, languages, foreign servers
  and wrappers, databases, tablespaces) and the default privileges granted to it or defined by
  it, one row each; :func:`moves` turns such rows into the GRANT / REVOKE statements that move
  them to another role, and :func:`describe` names one for an error message.
* :func:`privileges`: a comparable picture of what one user may do (attributes, memberships,
  effective privileges), for the tests and the comparison of the two logins.
* :func:`verify_pending`: testSecret's check, on the pending login's own connection, that it can
  do what the other login can.
"""

from __future__ import annotations

import re
from typing import Any

from psycopg2 import sql

from ..errors import DatabaseError
from .base import Engine
from .users import alternate_name

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

SYSTEM_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"

RELATION_KINDS = "c.relkind IN ('r', 'p', 'v', 'm', 'f')"

# Every privilege granted directly to the follower in the connected database (``%(f)s`` is its
# oid), and the default privileges granted to it or defined by it: (kind, target, extra,
# privilege, grantable, object type of default privileges). Names come quoted by the server.
_GRANTS = [
    (
        "CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END",
        "format('%%I.%%I', n.nspname, c.relname)",
        "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
        "c.relacl",
        "c.relowner",
    ),
    ("'SCHEMA'", "format('%%I', n.nspname)", "pg_namespace n", "n.nspacl", "n.nspowner"),
    (
        "'ROUTINE'",
        "format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))",
        "pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace",
        "p.proacl",
        "p.proowner",
    ),
    (
        "'TYPE'",
        "format('%%I.%%I', n.nspname, t.typname)",
        "pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace",
        "t.typacl",
        "t.typowner",
    ),
    ("'LANGUAGE'", "format('%%I', l.lanname)", "pg_language l", "l.lanacl", "l.lanowner"),
    ("'FOREIGN SERVER'", "format('%%I', s.srvname)", "pg_foreign_server s", "s.srvacl", "s.srvowner"),
    (
        "'FOREIGN DATA WRAPPER'",
        "format('%%I', w.fdwname)",
        "pg_foreign_data_wrapper w",
        "w.fdwacl",
        "w.fdwowner",
    ),
    ("'DATABASE'", "format('%%I', d.datname)", "pg_database d", "d.datacl", "d.datdba"),
    ("'TABLESPACE'", "format('%%I', s.spcname)", "pg_tablespace s", "s.spcacl", "s.spcowner"),
]

_DEFAULT_TYPE = (
    "CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'"
    " WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' END"
)

_DEFAULTS_FROM = (
    " FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a"
)

FOLLOWER_PRIVILEGES = (
    "SELECT * FROM ("  # noqa: S608 - fixed catalog text, no outside input
    + " UNION ALL ".join(
        f"SELECT {kind} AS kind, {target} AS target, NULL::text AS extra, a.privilege_type AS privilege,"  # noqa: S608
        f" a.is_grantable AS grantable, NULL::text AS objtype, {owner} AS owner FROM {source},"
        f" aclexplode({acl}) a WHERE a.grantee = %(f)s"
        for kind, target, source, acl, owner in _GRANTS
    )
    + " UNION ALL SELECT 'COLUMN', format('%%I.%%I', n.nspname, c.relname), format('%%I', t.attname),"
    " a.privilege_type, a.is_grantable, NULL, c.relowner"
    " FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(t.attacl) a"
    " WHERE a.grantee = %(f)s AND NOT t.attisdropped"
    " UNION ALL SELECT 'DEFAULT TO', CASE WHEN d.defaclnamespace <> 0 THEN format('%%I', n.nspname) END,"
    " format('%%I', pg_get_userbyid(d.defaclrole)), a.privilege_type, a.is_grantable, "
    + _DEFAULT_TYPE
    + ", d.defaclrole"
    + _DEFAULTS_FROM
    + " WHERE a.grantee = %(f)s AND d.defaclrole <> %(f)s"
    " UNION ALL SELECT 'DEFAULT BY', CASE WHEN d.defaclnamespace <> 0 THEN format('%%I', n.nspname) END,"
    " CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE format('%%I', pg_get_userbyid(a.grantee)) END,"
    " a.privilege_type, a.is_grantable, "
    + _DEFAULT_TYPE
    + ", d.defaclrole"
    + _DEFAULTS_FROM
    + " WHERE d.defaclrole = %(f)s AND a.grantee <> %(f)s"
    ") g"
)

_PRIVILEGE_NAME = re.compile(r"^[A-Z][A-Z ]*$")


def describe(row: tuple[Any, ...]) -> str:
    kind, target, extra, privilege, _grantable, objtype, _owner = row
    if kind == "DEFAULT TO":
        return f"default {privilege} on new {str(objtype).lower()} of {extra}"
    if kind == "COLUMN":
        return f"{privilege} ({extra}) on table {target}"
    return f"{privilege} on {str(kind).lower()} {target}"


def moves(
    rows: list[tuple[Any, ...]], primary: sql.Identifier, follower: sql.Identifier
) -> list[sql.Composed]:
    """Statements granting the follower's privileges to the primary, then revoking them from the
    follower (not those it holds WITH GRANT OPTION: it may have passed them on)."""
    grouped: dict[tuple[str, str, str | None, bool, str | None], list[str]] = {}
    for kind, target, extra, privilege, grantable, objtype, _owner in rows:
        if not _PRIVILEGE_NAME.match(str(privilege)):
            raise DatabaseError(f"unexpected privilege name {privilege!r} in the catalog")
        grouped.setdefault((kind, target, extra, bool(grantable), objtype), []).append(str(privilege))
    out: list[sql.Composed] = []
    for (kind, target, extra, grantable, objtype), privileges in sorted(grouped.items(), key=str):
        privs = sql.SQL(", ".join(sorted(privileges)))
        option = sql.SQL(" WITH GRANT OPTION" if grantable else "")
        if kind in ("DEFAULT TO", "DEFAULT BY"):
            owner = sql.SQL(extra) if kind == "DEFAULT TO" else primary
            grantee = primary if kind == "DEFAULT TO" else sql.SQL(extra)
            scope = sql.SQL(" IN SCHEMA {}").format(sql.SQL(target)) if target else sql.SQL("")
            head = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} ").format(owner, scope)
            on = sql.SQL(objtype)
            out.append(head + sql.SQL("GRANT {} ON {} TO {}{}").format(privs, on, grantee, option))
            if kind == "DEFAULT TO" and not grantable:
                out.append(head + sql.SQL("REVOKE {} ON {} FROM {}").format(privs, on, follower))
            elif kind == "DEFAULT BY":
                old = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} ").format(follower, scope)
                out.append(old + sql.SQL("REVOKE {} ON {} FROM {}").format(privs, on, sql.SQL(extra)))
            continue
        if kind == "COLUMN":
            privs = sql.SQL(", ".join(f"{p} ({extra})" for p in sorted(privileges)))
            kind = "TABLE"
        on = sql.SQL("{} {}").format(sql.SQL(kind), sql.SQL(target))
        out.append(sql.SQL("GRANT {} ON {} TO {}{}").format(privs, on, primary, option))
        if not grantable:
            out.append(sql.SQL("REVOKE {} ON {} FROM {}").format(privs, on, follower))
    return out


def privileges(engine: Engine, conn: Any, user: str) -> dict[str, Any]:
    """Attributes, effective role memberships and effective privileges in this database."""
    pair = [user, alternate_name(user)]
    attrs = engine.execute(
        conn,
        "read attributes",
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconnlimit,"
        " rolcanlogin FROM pg_roles WHERE rolname = %s",
        (user,),
    )
    roles = engine.execute(
        conn,
        "read memberships",
        "SELECT rolname FROM pg_roles WHERE pg_has_role(%s, oid, 'USAGE') AND NOT rolname = ANY(%s)"
        " ORDER BY rolname",
        (user, pair),
    )
    database = engine.execute(
        conn,
        "read database privileges",
        "SELECT p FROM unnest(ARRAY['CONNECT', 'CREATE', 'TEMPORARY']) p"
        " WHERE has_database_privilege(%s, current_database(), p) ORDER BY p",
        (user,),
    )
    schemas = engine.execute(
        conn,
        "read schema privileges",
        "SELECT n.nspname, p FROM pg_namespace n, unnest(ARRAY['USAGE', 'CREATE']) p"  # noqa: S608
        f" WHERE {SYSTEM_SCHEMAS} AND has_schema_privilege(%s, n.oid, p) ORDER BY 1, 2",
        (user,),
    )
    tables = engine.execute(
        conn,
        "read table privileges",
        "SELECT n.nspname, c.relname, p FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,"  # noqa: S608
        f" unnest(%s) p WHERE {RELATION_KINDS} AND {SYSTEM_SCHEMAS}"
        " AND has_table_privilege(%s, c.oid, p) ORDER BY 1, 2, 3",
        (list(TABLE_PRIVILEGES), user),
    )
    return {
        "attributes": tuple(attrs[0]) if attrs else None,
        "roles": [r[0] for r in roles],
        "database": [r[0] for r in database],
        "schemas": [tuple(r) for r in schemas],
        "tables": [tuple(r) for r in tables],
    }


def verify_pending(engine: Engine, conn: Any, pending_user: str, other_user: str) -> dict[str, Any]:
    """testSecret, on the pending login's own connection: it acts as itself, the other login or a role
    it is a member of, and has every table, schema and database privilege here that ``other_user``
    has; then it reads a table it may read. Raises DatabaseError naming what is missing."""
    acting, member = engine.execute(
        conn,
        "select current_user",
        "SELECT current_user, pg_has_role(session_user, current_user, 'MEMBER')",
    )[0]
    if acting not in (pending_user, other_user) and not member:
        raise DatabaseError(
            f"{pending_user!r} logs in acting as {acting!r}, which is neither itself, {other_user!r} "
            "nor a role it is a member of"
        )
    checks = ", ".join(
        f"CASE WHEN has_table_privilege(%(other)s, c.oid, '{p}')"
        f" AND NOT has_table_privilege(%(pending)s, c.oid, '{p}') THEN '{p}' END"
        for p in TABLE_PRIVILEGES
    )
    rows = engine.execute(
        conn,
        "compare table privileges",
        "SELECT n.nspname, c.relname, array_remove(ARRAY[" + checks + "], NULL),"  # noqa: S608
        " has_table_privilege(current_user, c.oid, 'SELECT')"
        " AND has_schema_privilege(current_user, n.oid, 'USAGE')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE {RELATION_KINDS} AND {SYSTEM_SCHEMAS}"
        " AND has_schema_privilege(%(other)s, n.oid, 'USAGE')"
        " AND has_table_privilege(%(other)s, c.oid, 'SELECT, INSERT, UPDATE, DELETE')"
        " ORDER BY c.relkind <> 'r', n.nspname, c.relname",
        {"other": other_user, "pending": pending_user},  # type: ignore[arg-type]
    )
    missing = [f"{', '.join(privs)} on {schema}.{table}" for schema, table, privs, _ in rows if privs]
    others = engine.execute(
        conn,
        "compare schema and database privileges",
        "SELECT p || ' on schema ' || quote_ident(n.nspname) FROM pg_namespace n,"  # noqa: S608
        " unnest(ARRAY['USAGE', 'CREATE']) p"
        f" WHERE {SYSTEM_SCHEMAS} AND has_schema_privilege(%(other)s, n.oid, p)"
        " AND NOT has_schema_privilege(%(pending)s, n.oid, p)"
        " UNION ALL SELECT p || ' on database ' || quote_ident(current_database())"
        " FROM unnest(ARRAY['CONNECT', 'CREATE', 'TEMPORARY']) p"
        " WHERE has_database_privilege(%(other)s, current_database(), p)"
        " AND NOT has_database_privilege(%(pending)s, current_database(), p)",
        {"other": other_user, "pending": pending_user},  # type: ignore[arg-type]
    )
    missing += [str(r[0]) for r in others]
    if missing:
        shown = "; ".join(missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DatabaseError(f"{pending_user!r} lacks privileges that {other_user!r} has: {shown}{more}")
    facts: dict[str, Any] = {"acting_as": acting, "tables_compared": len(rows)}
    readable = next(((s, t) for s, t, _, ok in rows if ok), None)
    if readable is not None:
        engine.execute(
            conn, "read a table", sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(*readable))
        )
        facts["read_table"] = f"{readable[0]}.{readable[1]}"
    else:
        engine.execute(conn, "select 1", "SELECT 1")
    return facts
