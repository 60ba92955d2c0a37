"""PostgreSQL user administration for alternating-user rotation.

Mechanism: one *primary* role holds the privileges and owns the objects; the other
login is its *follower*:

* the follower is a member of the primary and has ``INHERIT``, so every privilege
  the primary has (including privileges granted to it later, and the owner's rights
  on everything the primary owns) is effective for the follower;
* ``ALTER ROLE follower SET role = primary``: a follower session runs as the primary
  from the first statement, so whatever the application creates while it logs in as
  the follower is owned by the primary, and usable (read, written, altered, dropped)
  by both logins, across any number of rotations. ``RESET ROLE`` and ``DISCARD ALL``
  (connection poolers) return to this default; only an explicit ``SET ROLE NONE``
  leaves it. When the primary itself acts as an owner role (``ALTER ROLE app SET role
  = app_owner``, the owner-role pattern), the follower acts as that role too and the
  primary's setting is kept; per-database settings (``ALTER ROLE app IN DATABASE x SET
  role = app_owner``) are copied database by database;
* role attributes (``SUPERUSER``, ``CREATEDB``, ``CREATEROLE``, ``REPLICATION``,
  ``BYPASSRLS``, ``CONNECTION LIMIT``) are copied from the *current* login to the
  other one, whichever is the primary (only the attributes that differ are altered).
  Always ``LOGIN``. ``VALID UNTIL`` and other per-role settings are not copied;
* roles granted directly to the follower are granted to the primary too.

Which login is the primary does not depend on the secret's direction: a follower is
recognised by its membership in the other role. When the alternate user does not
exist yet, the current user is the primary (normally the base name ``app``, the user
the DBA created: it stays the primary when the secret alternates back to it).

Handover, in the connected database (the rotated secret's ``dbname``) and then in every
other database where ``pg_shdepend`` shows the follower owning objects or holding
privileges (one master connection each): objects the follower owns go to the primary
(``REASSIGN OWNED``); privileges granted to the follower are granted to the primary and
revoked from the follower (not those held ``WITH GRANT OPTION``); default privileges
granted to it, or defined by it, move to the primary. Grants that the master cannot make
only warn in PostgreSQL, so the result is read back; if the primary is about to become
current and misses anything, setSecret fails naming it rather than switching the
application to a login that cannot use it.

An existing alternate role is taken over only when it carries this function's comment
(:func:`~.users.pair_marker`), or this secret's history names it (``vouched``: AWSPREVIOUS or
another labelled version holds that username), or it has the shape AWS's alternating function
leaves (aws-samples/aws-secrets-manager-rotation-lambdas, ``SecretsManagerRDSPostgreSQLRotation
MultiUser``: ``CREATE ROLE <user>_clone WITH LOGIN``, then ``GRANT <user> TO <user>_clone``) with
nothing the current user lacks: LOGIN; ``<user>_clone`` a member of ``<user>`` and never the
other way round; no members; no memberships or powers the current user lacks; and, unless the
current user inherits it, no objects it owns, no default privileges it defines and no privilege
granted to it that the current user does not hold too. Anything else is refused, every problem
named, in the transaction that would have changed it (so nothing changes).

On PostgreSQL 16 and later CREATEROLE covers only the roles the master holds ADMIN OPTION on
(it gets it on roles it creates); the roles involved are checked first and a missing right fails
the step, nothing changed, naming the ``GRANT ... WITH ADMIN OPTION`` a DBA gives. Privileges on
objects owned by ``pg_database_owner`` (the ``public`` schema) move through the database's owner.
Databases the master may not CONNECT to are skipped when the follower becomes current (it keeps
what it has there) and refused, naming ``GRANT CONNECT``, when the primary does.

Each transaction has ``lock_timeout`` / ``statement_timeout`` (``DB_LOCK_TIMEOUT``,
``DB_STATEMENT_TIMEOUT``): a lock held by the application ends the step with a
"lock not available, will retry" error instead of queueing every query behind it.
The main transaction (roles, password, handover in the secret's database) is atomic; the
other databases follow, each idempotent, so a retry converges. The password is sent as a
SCRAM-SHA-256 verifier, never in plain text.
"""

from __future__ import annotations

import re
from typing import Any

from psycopg2 import sql

from ..errors import DatabaseError
from .postgres import scram_verifier
from .users import (
    CLONE_SUFFIX,
    LOCK_WAIT_PREFIX,
    Connector,
    UserAdmin,
    Vouch,
    alternate_name,
    lock_timeout,
    pair_marker,
    statement_timeout,
)

# (pg_roles column, keyword when true, keyword when false)
_FLAGS = (
    ("rolsuper", "SUPERUSER", "NOSUPERUSER"),
    ("rolcreatedb", "CREATEDB", "NOCREATEDB"),
    ("rolcreaterole", "CREATEROLE", "NOCREATEROLE"),
    ("rolreplication", "REPLICATION", "NOREPLICATION"),
    ("rolbypassrls", "BYPASSRLS", "NOBYPASSRLS"),
)
_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
_SYSTEM_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"
_RELATION_KINDS = "c.relkind IN ('r', 'p', 'v', 'm', 'f')"

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
_FOLLOWER_PRIVILEGES = (
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
_CANNOT_GIVE = "the master user cannot give"
#: From PostgreSQL 16, CREATEROLE lets a role grant, alter, comment on or drop only the roles it
#: holds ADMIN OPTION on (it gets it on the roles it creates); before 16 CREATEROLE covered every
#: non-superuser role (https://www.postgresql.org/docs/16/release-16.html, "Restrict the
#: privileges of CREATEROLE and its ability to modify other roles").
_ADMIN_OPTION_VERSION = 160000
_PRIVILEGE_NAME = re.compile(r"^[A-Z][A-Z ]*$")


class AdminOptionMissing(DatabaseError):
    """The master needs ADMIN OPTION on roles it lacks it on (PostgreSQL 16+); names the GRANT."""


def sql_quote_ident(name: str) -> str:
    """``name`` as PostgreSQL's quote_ident writes it, for statements shown to a DBA."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _role_setting(config: list[str]) -> str | None:
    """The role a login acts as from its per-role ``SET role`` (None when it has none)."""
    for item in config:
        if item.startswith("role="):
            value = item[len("role=") :]
            return value[1:-1].replace('""', '"') if value.startswith('"') and value.endswith('"') else value
    return None


def _describe(row: tuple[Any, ...]) -> str:
    kind, target, extra, privilege, _grantable, objtype, _owner = row
    if kind == "DEFAULT TO":
        return f"default {privilege} on new {str(objtype).lower()} of {extra}"
    if kind == "COLUMN":
        return f"{privilege} ({extra}) on table {target}"
    return f"{privilege} on {str(kind).lower()} {target}"


def _moves(
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


class PostgresUserAdmin(UserAdmin):
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
        self._begin(conn)
        try:
            self._check_master(conn)
            roles = self._roles(conn, (current_user, clone_user))
            if current_user not in roles:
                raise DatabaseError(f"the current user {current_user!r} does not exist")
            self._require_admin(conn, [current_user], "make one login a copy of the other")
            marker = pair_marker(current_user)
            verifier = sql.Literal(scram_verifier(password))
            created = clone_user not in roles
            if created:
                self._exec(
                    conn,
                    "create role",
                    sql.SQL("CREATE ROLE {} WITH LOGIN INHERIT PASSWORD {}").format(
                        sql.Identifier(clone_user), verifier
                    ),
                    secrets=(password,),
                )
                self._mark(conn, clone_user, marker)
                roles = self._roles(conn, (current_user, clone_user))
                primary, follower = current_user, clone_user  # a new clone follows the current user
            else:
                facts["alternate_login"] = "marked as ours"
                if roles[clone_user]["comment"] != marker:
                    facts["alternate_login"] = self._accept_existing(
                        conn, roles[current_user], roles[clone_user], vouched
                    )
                self._require_admin(conn, [clone_user], "make one login a copy of the other")
                if roles[clone_user]["comment"] is None:
                    self._mark(conn, clone_user, marker)  # adopted (e.g. a clone AWS's function made)
                primary, follower = self._primary_and_follower(conn, roles, current_user, clone_user)
            facts["primary_role"] = primary
            p, f = roles[primary], roles[follower]
            changes = self._make_follower(conn, p, f)
            changes += self._copy_attributes(conn, roles[current_user], roles[clone_user], f)
            changes += self._share_memberships(conn, p, f)
            if not created:
                self._exec(
                    conn,
                    "alter role password",
                    sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                        sql.Identifier(clone_user), verifier
                    ),
                    secrets=(password,),
                )
            moved, others, closed = self._hand_over(conn, p, f, clone_user, shared=True)
            if closed:
                facts["databases_not_handed_over"] = closed
                if clone_user == primary:
                    self._refuse_closed(conn, p, f, closed)
            self._exec(conn, "commit", "COMMIT")
        except Exception:
            self._rollback(conn)
            raise
        if connect is not None:
            for dbname in others:
                other = connect(dbname)
                try:
                    self._begin(other)
                    try:
                        moved += self._hand_over(other, p, f, clone_user, shared=False)[0]
                        self._exec(other, "commit", "COMMIT")
                    except Exception:
                        self._rollback(other)
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

    # -- transactions bounded by lock and statement timeouts ----------------------------------------
    def _begin(self, conn: Any) -> None:
        self._exec(
            conn,
            "begin",
            sql.SQL("BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}").format(
                sql.Literal(f"{lock_timeout()}s"), sql.Literal(f"{statement_timeout()}s")
            ),
        )

    def _exec(
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

    def _rollback(self, conn: Any) -> None:
        try:
            self.engine.execute(conn, "rollback", "ROLLBACK")
        except Exception:  # noqa: S110 - the connection is closed next; the server rolls back anyway
            pass

    def _check_master(self, conn: Any) -> None:
        rows = self._exec(
            conn,
            "check master",
            "SELECT current_user, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user",
        )
        name, is_super, can_create = rows[0]
        if not (is_super or can_create):
            raise DatabaseError(
                f"the master user {name!r} cannot create or alter roles (it needs CREATEROLE or SUPERUSER)"
            )

    def _require_admin(self, conn: Any, roles: list[str], why: str) -> None:
        """On PostgreSQL 16+, fail before changing anything unless the master holds ADMIN OPTION on
        every role in ``roles``, naming the GRANT a DBA runs (before 16, CREATEROLE is enough)."""
        if not roles or int(getattr(conn, "server_version", 0)) < _ADMIN_OPTION_VERSION:
            return
        rows = self._exec(
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

    def _roles(self, conn: Any, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        columns = ["oid", "rolname", "rolinherit", "rolcanlogin", "rolconnlimit"] + [f[0] for f in _FLAGS]
        rows = self._exec(
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

    def _mark(self, conn: Any, role: str, marker: str) -> None:
        self._exec(
            conn,
            "comment on role",
            sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(role), sql.Literal(marker)),
        )

    @staticmethod
    def _is_member(member: dict[str, Any], role: dict[str, Any]) -> bool:
        """A direct membership, as read with the roles."""
        return role["oid"] in member["member_of"]

    def _accept_existing(
        self, conn: Any, current: dict[str, Any], other: dict[str, Any], vouched: Vouch | None
    ) -> str:
        """How an existing alternate role not marked as ours is recognised as the application's
        other login (for the log line): shaped like a clone with nothing the current user lacks,
        or named by this secret's history (asked only when the shape does not hold). Otherwise
        refuse, naming every problem; the caller's transaction is rolled back, nothing changed."""
        name, cur = other["rolname"], current["rolname"]
        problems = self._link_problems(conn, current, other)
        if not other["rolcanlogin"]:
            problems.append("it is NOLOGIN (a group role, not a login)")
        powers = [yes for column, yes, _ in _FLAGS if other[column] and not current[column]]
        powers = [p for p in powers if p != "CREATEDB"]
        if powers:
            problems.append(f"it has {', '.join(powers)}, which {cur!r} has not")
        members = self._exec(
            conn,
            "read members",
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
            " WHERE m.roleid = %s AND m.member <> %s AND r.rolname <> current_user ORDER BY 1",
            (other["oid"], current["oid"]),
        )
        if members:
            shown = ", ".join(repr(m[0]) for m in members[:5])
            problems.append(f"it has members ({shown}) who would gain the application's privileges")
        extra = self._exec(
            conn,
            "read memberships",
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            " WHERE m.member = %s AND m.roleid <> %s AND NOT pg_has_role(%s, m.roleid, 'MEMBER') ORDER BY 1",
            (other["oid"], current["oid"], current["oid"]),
        )
        if extra:
            shown = ", ".join(repr(m[0]) for m in extra[:5])
            problems.append(f"it is a member of roles {cur!r} is not ({shown})")
        problems += self._holdings_beyond(conn, current, other)
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

    def _link_problems(self, conn: Any, current: dict[str, Any], other: dict[str, Any]) -> list[str]:
        """AWS's pair: ``<user>_clone`` is a member of ``<user>``, and ``<user>`` is in no way a
        member of ``<user>_clone`` (that would hand the application's login and objects to a role
        that only lends it privileges)."""
        cur = current["rolname"]
        base, clone = (current, other) if other["rolname"] == cur + CLONE_SUFFIX else (other, current)
        if not (self._is_member(other, current) or self._is_member(current, other)):
            return [f"neither it nor {cur!r} is a member of the other"]
        reverse = self._exec(
            conn,
            "check pair direction",
            "SELECT pg_has_role(%s, %s, 'MEMBER')",
            (base["oid"], clone["oid"]),
        )[0][0]
        if not reverse and self._is_member(clone, base):
            return []
        if base is current:
            return [f"{cur!r} is a member of it (a clone is a member of the user it copies, not the reverse)"]
        return [f"it is a member of {cur!r} (the base login of a pair is not a member of its clone)"]

    def _holdings_beyond(self, conn: Any, current: dict[str, Any], other: dict[str, Any]) -> list[str]:
        """What ``other`` owns or was granted that ``current`` lacks. Nothing when ``current``
        inherits ``other`` (then it has all of it); in this database and on shared objects each
        privilege is compared, in other databases anything it owns or holds counts."""
        inherits = self._exec(
            conn, "check inheritance", "SELECT pg_has_role(%s, %s, 'USAGE')", (current["oid"], other["oid"])
        )[0][0]
        if inherits:
            return []
        problems: list[str] = []
        rows = self._exec(
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
        theirs = self._exec(conn, "read privileges", _FOLLOWER_PRIVILEGES, {"f": other["oid"]})
        mine = {
            tuple(row[:4]): bool(row[4])
            for row in self._exec(conn, "read privileges", _FOLLOWER_PRIVILEGES, {"f": current["oid"]})
        }
        missing = [
            row
            for row in theirs
            if row[0] != "DEFAULT BY"
            and row[6] != current["oid"]
            and (tuple(row[:4]) not in mine or (row[4] and not mine[tuple(row[:4])]))
        ]
        if missing:
            shown = "; ".join(_describe(row) for row in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            problems.append(f"it holds privileges {current['rolname']!r} lacks ({shown}{more})")
        return problems

    def _primary_and_follower(
        self, conn: Any, roles: dict[str, dict[str, Any]], current_user: str, clone_user: str
    ) -> tuple[str, str]:
        if self._is_member(roles[clone_user], roles[current_user]):
            return current_user, clone_user
        if self._is_member(roles[current_user], roles[clone_user]):
            return clone_user, current_user
        # Neither is a member of the other (a marked pair): the name without the suffix is the primary.
        if current_user.endswith(CLONE_SUFFIX) and alternate_name(current_user) == clone_user:
            return clone_user, current_user
        return current_user, clone_user

    def _make_follower(self, conn: Any, primary: dict[str, Any], follower: dict[str, Any]) -> int:
        """The follower is an inheriting member of the primary and acts as the role the primary
        acts as: the primary itself, or the owner role its own ``SET role`` names."""
        changes = 0
        p_ident, f_ident = sql.Identifier(primary["rolname"]), sql.Identifier(follower["rolname"])
        if not self._is_member(follower, primary):
            self._exec(conn, "grant membership", sql.SQL("GRANT {} TO {}").format(p_ident, f_ident))
            changes += 1
        acting = _role_setting(primary["config"])
        if acting == follower["rolname"]:
            # The primary acting as its own follower would be a loop: it acts as itself.
            self._exec(conn, "alter role reset role", sql.SQL("ALTER ROLE {} RESET role").format(p_ident))
            acting = None
            changes += 1
        acting = acting or primary["rolname"]
        if _role_setting(follower["config"]) != acting:
            self._exec(
                conn,
                "alter role set role",
                sql.SQL("ALTER ROLE {} SET role = {}").format(f_ident, sql.Literal(acting)),
            )
            changes += 1
        return changes + self._follow_database_roles(conn, primary, follower)

    def _follow_database_roles(self, conn: Any, primary: dict[str, Any], follower: dict[str, Any]) -> int:
        """Per-database owner roles (``ALTER ROLE app IN DATABASE x SET role = app_owner``) take
        precedence over the per-role setting: the follower gets the primary's in every database,
        and loses any the primary does not have."""
        rows = self._exec(
            conn,
            "read per-database roles",
            "SELECT d.datname, s.setrole = %s, x FROM pg_db_role_setting s"
            " JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) x"
            " WHERE s.setrole IN (%s, %s) AND x LIKE 'role=%%' ORDER BY 1",
            (primary["oid"], primary["oid"], follower["oid"]),
        )
        wanted = {str(db): _role_setting([str(x)]) for db, mine, x in rows if mine}
        have = {str(db): _role_setting([str(x)]) for db, mine, x in rows if not mine}
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
                self._exec(conn, "alter role reset role in database", scope + sql.SQL("RESET role"))
            else:
                statement = scope + sql.SQL("SET role = {}").format(sql.Literal(acting))
                self._exec(conn, "alter role set role in database", statement)
            changes += 1
        return changes

    def _copy_attributes(
        self, conn: Any, source: dict[str, Any], target: dict[str, Any], follower: dict[str, Any]
    ) -> int:
        """The current login's attributes are copied to the other one (whichever is the primary);
        both stay LOGIN, and the follower INHERIT."""
        options = []
        if not target["rolcanlogin"]:
            options.append(sql.SQL("LOGIN"))
        if target["oid"] == follower["oid"] and not target["rolinherit"]:
            options.append(sql.SQL("INHERIT"))
        for column, yes, no in _FLAGS:
            if target[column] != source[column]:
                options.append(sql.SQL(yes if source[column] else no))
        if target["rolconnlimit"] != source["rolconnlimit"]:
            options.append(sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(int(source["rolconnlimit"]))))
        if not options:
            return 0
        self._exec(
            conn,
            "alter role attributes",
            sql.SQL("ALTER ROLE {} WITH {}").format(
                sql.Identifier(target["rolname"]), sql.SQL(" ").join(options)
            ),
        )
        return 1

    def _share_memberships(self, conn: Any, primary: dict[str, Any], follower: dict[str, Any]) -> int:
        """Roles granted directly to the follower are granted to the primary too."""
        rows = self._exec(
            conn,
            "read follower memberships",
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            " WHERE m.member = %s AND m.roleid <> %s AND NOT EXISTS (SELECT 1 FROM pg_auth_members p"
            " WHERE p.member = %s AND p.roleid = m.roleid) ORDER BY r.rolname",
            (follower["oid"], primary["oid"], primary["oid"]),
        )
        why = f"grant them to {primary['rolname']!r} as its alternate login has them"
        self._require_admin(conn, [str(r[0]) for r in rows], why)
        for (role,) in rows:
            self._exec(
                conn,
                "grant membership to primary",
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(primary["rolname"])),
            )
        return len(rows)

    # -- handing the follower's objects and privileges to the primary, database by database ----------
    def _dependencies(
        self, conn: Any, follower: dict[str, Any], shared: bool
    ) -> tuple[int, int, list[str], list[str]]:
        """From ``pg_shdepend``: objects the follower owns in this database, privileges and default
        privileges that involve it here (and on shared objects when ``shared``), and the other
        databases where it owns objects or holds privileges: those the master may connect to, and
        those it lacks CONNECT on."""
        rows = self._exec(
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

    def _hand_over(
        self, conn: Any, primary: dict[str, Any], follower: dict[str, Any], pending_user: str, shared: bool
    ) -> tuple[int, list[str], list[str]]:
        """In the connected database: objects the follower owns go to the primary (``REASSIGN
        OWNED``), privileges and default privileges granted to it move to the primary, and
        default privileges it defined are defined for the primary too. 0 when there is nothing.

        Both logins can then use everything through the primary. If the master cannot do it and
        the primary is about to become current, the step fails rather than switching the
        application to a login that cannot use those objects; if the follower is about to become
        current, it keeps its own objects and privileges and the handover waits for a later run.
        """
        owned, acl, others, closed = self._dependencies(conn, follower, shared)
        grants: list[tuple[Any, ...]] = []
        if acl:
            grants = self._exec(
                conn,
                "read follower privileges",
                _FOLLOWER_PRIVILEGES + ("" if shared else " WHERE kind NOT IN ('DATABASE', 'TABLESPACE')"),
                {"f": follower["oid"]},
            )
        if not owned and not grants:
            return 0, others, closed
        p_name, f_name = primary["rolname"], follower["rolname"]
        p_ident, f_ident = sql.Identifier(p_name), sql.Identifier(f_name)
        self._exec(conn, "savepoint", "SAVEPOINT hand_over")
        try:
            owners = sorted({int(row[6]) for row in grants} - {follower["oid"], primary["oid"]})
            granted = self._borrow_membership(conn, (f_name, p_name), owners)
            if owned:
                self._exec(
                    conn, "reassign owned", sql.SQL("REASSIGN OWNED BY {} TO {}").format(f_ident, p_ident)
                )
            for statement in _moves(grants, p_ident, f_ident):
                self._exec(conn, "move privilege", statement)
            if grants:
                self._check_moved(conn, grants, primary)
            for role in granted:
                self._exec(
                    conn,
                    "revoke membership from master",
                    sql.SQL("REVOKE {} FROM CURRENT_USER").format(sql.Identifier(role)),
                )
            self._exec(conn, "release savepoint", "RELEASE SAVEPOINT hand_over")
        except DatabaseError as exc:
            self._exec(conn, "rollback to savepoint", "ROLLBACK TO SAVEPOINT hand_over")
            if str(exc).startswith(LOCK_WAIT_PREFIX):
                if pending_user == p_name:
                    raise
                return 0, others, closed
            if pending_user == p_name and (
                isinstance(exc, AdminOptionMissing) or str(exc).startswith(_CANNOT_GIVE)
            ):
                raise
            if pending_user == p_name:
                raise DatabaseError(
                    f"{f_name!r} owns {owned} object(s) in database {self._database(conn)!r} that "
                    f"{p_name!r} could not use after the switch, and the master user cannot hand them "
                    f"over ({exc.detail}); run REASSIGN OWNED BY {f_name} TO "
                    f"{p_name} there as a superuser, or give the master membership in both roles",
                    exc.detail,
                ) from None
            return 0, others, closed
        return owned + len(grants), others, closed

    def _refuse_closed(
        self, conn: Any, primary: dict[str, Any], follower: dict[str, Any], closed: list[str]
    ) -> None:
        """The primary is about to become current and the follower has objects or privileges in
        databases the master cannot connect to: fail (the transaction is rolled back) naming the
        grant. When the follower becomes current instead, it keeps them and nothing is needed."""
        master = str(self._exec(conn, "current user", "SELECT current_user")[0][0])
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

    def _database(self, conn: Any) -> str:
        return str(self.engine.execute(conn, "current database", "SELECT current_database()")[0][0])

    def _check_moved(self, conn: Any, grants: list[tuple[Any, ...]], primary: dict[str, Any]) -> None:
        """GRANT by a role that may not grant only warns: check the primary got every privilege."""
        rows = self._exec(conn, "read primary privileges", _FOLLOWER_PRIVILEGES, {"f": primary["oid"]})
        have = {tuple(row[:4]) for row in rows}
        missing = [row for row in grants if row[0] != "DEFAULT BY" and tuple(row[:4]) not in have]
        if missing:
            shown = "; ".join(_describe(row) for row in missing[:5])
            owners = self._exec(
                conn,
                "read owners",
                "SELECT CASE WHEN r.oid = to_regrole('pg_database_owner')"
                " THEN format('the owner of database %%L, %%L', d.datname, pg_get_userbyid(d.datdba))"
                " ELSE quote_literal(r.rolname) END FROM pg_roles r, pg_database d"
                " WHERE d.datname = current_database() AND r.oid = ANY(%s) ORDER BY 1",
                (sorted({int(row[6]) for row in missing[:5]}),),
            )
            raise DatabaseError(
                f"{_CANNOT_GIVE} {primary['rolname']!r} {len(missing)} privilege(s) its "
                f"alternate login holds ({shown}): it must own those objects, be able to act as their "
                "owner, or hold the privileges WITH GRANT OPTION. Their owner grants them to "
                f"{primary['rolname']!r} (owned by {', '.join(str(r[0]) for r in owners)}), or gives the "
                "master these privileges WITH GRANT OPTION; then the rotation's retry completes"
            )

    def _borrow_membership(
        self, conn: Any, roles: tuple[str, ...], owners: list[int] | None = None
    ) -> list[str]:
        """REASSIGN OWNED and GRANT need the privileges of both roles (and of the owners of objects
        whose privileges move): a CREATEROLE master grants itself membership for the duration of
        the transaction (revoked before it commits). Superuser-owned objects are left to the check."""
        if owners:
            # pg_database_owner (the owner of ``public`` since PostgreSQL 15) cannot be granted: its
            # only member is the database's owner, whose role is borrowed instead.
            rows = self._exec(
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
            if not self._exec(
                conn, "check own membership", "SELECT pg_has_role(current_user, %s, 'USAGE')", (role,)
            )[0][0]
        ]
        self._require_admin(conn, needed, "act as them while it hands objects and privileges over")
        granted: list[str] = []
        for role in needed:
            self._exec(
                conn,
                "grant membership to master",
                sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)),
            )
            granted.append(role)
        return granted

    # -- comparison -----------------------------------------------------------------------------
    def privileges(self, conn: Any, user: str) -> dict[str, Any]:
        """Attributes, effective role memberships and effective privileges in this database."""
        pair = [user, alternate_name(user)]
        attrs = self.engine.execute(
            conn,
            "read attributes",
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconnlimit,"
            " rolcanlogin FROM pg_roles WHERE rolname = %s",
            (user,),
        )
        roles = self.engine.execute(
            conn,
            "read memberships",
            "SELECT rolname FROM pg_roles WHERE pg_has_role(%s, oid, 'USAGE') AND NOT rolname = ANY(%s)"
            " ORDER BY rolname",
            (user, pair),
        )
        database = self.engine.execute(
            conn,
            "read database privileges",
            "SELECT p FROM unnest(ARRAY['CONNECT', 'CREATE', 'TEMPORARY']) p"
            " WHERE has_database_privilege(%s, current_database(), p) ORDER BY p",
            (user,),
        )
        schemas = self.engine.execute(
            conn,
            "read schema privileges",
            "SELECT n.nspname, p FROM pg_namespace n, unnest(ARRAY['USAGE', 'CREATE']) p"  # noqa: S608
            f" WHERE {_SYSTEM_SCHEMAS} AND has_schema_privilege(%s, n.oid, p) ORDER BY 1, 2",
            (user,),
        )
        tables = self.engine.execute(
            conn,
            "read table privileges",
            "SELECT n.nspname, c.relname, p FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,"  # noqa: S608
            f" unnest(%s) p WHERE {_RELATION_KINDS} AND {_SYSTEM_SCHEMAS}"
            " AND has_table_privilege(%s, c.oid, p) ORDER BY 1, 2, 3",
            (list(_TABLE_PRIVILEGES), user),
        )
        return {
            "attributes": tuple(attrs[0]) if attrs else None,
            "roles": [r[0] for r in roles],
            "database": [r[0] for r in database],
            "schemas": [tuple(r) for r in schemas],
            "tables": [tuple(r) for r in tables],
        }

    # -- testSecret -----------------------------------------------------------------------------
    def verify_pending(self, conn: Any, pending_user: str, other_user: str) -> dict[str, Any]:
        acting, member = self.engine.execute(
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
            for p in _TABLE_PRIVILEGES
        )
        rows = self.engine.execute(
            conn,
            "compare table privileges",
            "SELECT n.nspname, c.relname, array_remove(ARRAY[" + checks + "], NULL),"  # noqa: S608
            " has_table_privilege(current_user, c.oid, 'SELECT')"
            " AND has_schema_privilege(current_user, n.oid, 'USAGE')"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            f" WHERE {_RELATION_KINDS} AND {_SYSTEM_SCHEMAS}"
            " AND has_schema_privilege(%(other)s, n.oid, 'USAGE')"
            " AND has_table_privilege(%(other)s, c.oid, 'SELECT, INSERT, UPDATE, DELETE')"
            " ORDER BY c.relkind <> 'r', n.nspname, c.relname",
            {"other": other_user, "pending": pending_user},  # type: ignore[arg-type]
        )
        missing = [f"{', '.join(privs)} on {schema}.{table}" for schema, table, privs, _ in rows if privs]
        others = self.engine.execute(
            conn,
            "compare schema and database privileges",
            "SELECT p || ' on schema ' || quote_ident(n.nspname) FROM pg_namespace n,"  # noqa: S608
            " unnest(ARRAY['USAGE', 'CREATE']) p"
            f" WHERE {_SYSTEM_SCHEMAS} AND has_schema_privilege(%(other)s, n.oid, p)"
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
            self.engine.execute(
                conn, "read a table", sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(*readable))
            )
            facts["read_table"] = f"{readable[0]}.{readable[1]}"
        else:
            self.engine.execute(conn, "select 1", "SELECT 1")
        return facts
