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
  leaves it;
* the follower gets the primary's role attributes: ``SUPERUSER``, ``CREATEDB``,
  ``CREATEROLE``, ``REPLICATION``, ``BYPASSRLS`` and ``CONNECTION LIMIT`` (only the
  attributes that differ are altered, so a master without superuser rights can manage
  ordinary users). Always ``LOGIN``. ``VALID UNTIL`` is not copied (it is about a
  password, and each login has its own), nor are per-role settings (``ALTER ROLE ...
  SET``) other than ``role``;
* roles granted directly to the follower are granted to the primary too, so both
  logins end with the same role memberships whichever of them got the grant.

Which login is the primary does not depend on the secret's direction: a follower is
recognised by its membership in the other role. When the alternate user does not
exist yet, the current user is the primary (normally the base name ``app``, the user
the DBA created: it stays the primary when the secret alternates back to it). When
both exist without a membership either way (created by hand), the one without the
``_clone`` suffix becomes the primary.

Objects the follower owns anyway (created before this mechanism, e.g. by AWS's
functions, or after ``SET ROLE NONE``) are handed to the primary in the connected
database with ``REASSIGN OWNED``; if the master may not do that and the primary is
about to become current, setSecret fails with a clear error rather than switching
the application to a login that cannot use those objects.

Everything happens in one transaction on the master connection: a crash at any point
leaves either the previous state or the finished one. The password is sent as a
SCRAM-SHA-256 verifier, never in plain text.
"""

from __future__ import annotations

from typing import Any

from psycopg2 import sql

from ..errors import DatabaseError
from .postgres import scram_verifier
from .users import CLONE_SUFFIX, UserAdmin, alternate_name

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


class PostgresUserAdmin(UserAdmin):
    @staticmethod
    def name_length(username: str) -> int:
        return len(username.encode("utf-8"))  # NAMEDATALEN - 1 bytes; longer names are truncated

    def login_identity(self, conn: Any) -> str:
        return str(self.engine.execute(conn, "select session_user", "SELECT session_user")[0][0])

    # -- setSecret ------------------------------------------------------------------------------
    def ensure_clone(self, conn: Any, current_user: str, clone_user: str, password: str) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        self.engine.execute(conn, "begin", "BEGIN")
        try:
            self._check_master(conn)
            roles = self._roles(conn, (current_user, clone_user))
            if current_user not in roles:
                raise DatabaseError(f"the current user {current_user!r} does not exist")
            verifier = sql.Literal(scram_verifier(password))
            created = clone_user not in roles
            if created:
                self.engine.execute(
                    conn,
                    "create role",
                    sql.SQL("CREATE ROLE {} WITH LOGIN INHERIT PASSWORD {}").format(
                        sql.Identifier(clone_user), verifier
                    ),
                    secrets=(password,),
                )
                roles = self._roles(conn, (current_user, clone_user))
                primary, follower = current_user, clone_user  # a new clone follows the current user
            else:
                primary, follower = self._primary_and_follower(conn, roles, current_user, clone_user)
            facts["primary_role"] = primary
            changes = self._make_follower(conn, roles[primary], roles[follower])
            changes += self._share_memberships(conn, roles[primary], roles[follower])
            if not created:
                self.engine.execute(
                    conn,
                    "alter role password",
                    sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                        sql.Identifier(clone_user), verifier
                    ),
                    secrets=(password,),
                )
            reassigned = self._reassign_follower_objects(conn, roles[primary], roles[follower], clone_user)
            if reassigned:
                facts["objects_reassigned"] = reassigned
            self.engine.execute(conn, "commit", "COMMIT")
        except Exception:
            self._rollback(conn)
            raise
        facts["outcome"] = ("user created" if created else "password set") + (
            f", {changes} change(s) to privileges" if changes else ""
        )
        return facts

    def _rollback(self, conn: Any) -> None:
        try:
            self.engine.execute(conn, "rollback", "ROLLBACK")
        except Exception:  # noqa: S110 - the connection is closed next; the server rolls back anyway
            pass

    def _check_master(self, conn: Any) -> None:
        rows = self.engine.execute(
            conn,
            "check master",
            "SELECT current_user, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user",
        )
        name, is_super, can_create = rows[0]
        if not (is_super or can_create):
            raise DatabaseError(
                f"the master user {name!r} cannot create or alter roles (it needs CREATEROLE or SUPERUSER)"
            )

    def _roles(self, conn: Any, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        columns = ["oid", "rolname", "rolinherit", "rolcanlogin", "rolconnlimit"] + [f[0] for f in _FLAGS]
        rows = self.engine.execute(
            conn,
            "read roles",
            sql.SQL(
                "SELECT {}, coalesce((SELECT s.setconfig FROM pg_db_role_setting s"
                " WHERE s.setrole = r.oid AND s.setdatabase = 0), '{{}}')"
                " FROM pg_roles r WHERE r.rolname = ANY(%s)"
            ).format(sql.SQL(", ").join(sql.Identifier(c) for c in columns)),
            (list(names),),
        )
        result: dict[str, dict[str, Any]] = {}
        for row in rows:
            info = dict(zip(columns, row[:-1], strict=True))
            info["config"] = list(row[-1] or [])
            result[info["rolname"]] = info
        return result

    def _is_member(self, conn: Any, member: dict[str, Any], role: dict[str, Any]) -> bool:
        rows = self.engine.execute(
            conn,
            "read membership",
            "SELECT EXISTS (SELECT 1 FROM pg_auth_members WHERE roleid = %s AND member = %s)",
            (role["oid"], member["oid"]),
        )
        return bool(rows[0][0])

    def _primary_and_follower(
        self, conn: Any, roles: dict[str, dict[str, Any]], current_user: str, clone_user: str
    ) -> tuple[str, str]:
        if self._is_member(conn, roles[clone_user], roles[current_user]):
            return current_user, clone_user
        if self._is_member(conn, roles[current_user], roles[clone_user]):
            return clone_user, current_user
        # Neither is a member of the other: the name without the suffix is the primary.
        if current_user.endswith(CLONE_SUFFIX) and alternate_name(current_user) == clone_user:
            return clone_user, current_user
        return current_user, clone_user

    def _make_follower(self, conn: Any, primary: dict[str, Any], follower: dict[str, Any]) -> int:
        changes = 0
        p_ident, f_ident = sql.Identifier(primary["rolname"]), sql.Identifier(follower["rolname"])
        if not self._is_member(conn, follower, primary):
            self.engine.execute(conn, "grant membership", sql.SQL("GRANT {} TO {}").format(p_ident, f_ident))
            changes += 1
        options = (
            [sql.SQL("LOGIN INHERIT")] if not (follower["rolinherit"] and follower["rolcanlogin"]) else []
        )
        for column, yes, no in _FLAGS:
            if follower[column] != primary[column]:
                options.append(sql.SQL(yes if primary[column] else no))
        if follower["rolconnlimit"] != primary["rolconnlimit"]:
            options.append(sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(int(primary["rolconnlimit"]))))
        if options:
            self.engine.execute(
                conn,
                "alter role attributes",
                sql.SQL("ALTER ROLE {} WITH {}").format(f_ident, sql.SQL(" ").join(options)),
            )
            changes += 1
        if f"role={primary['rolname']}" not in follower["config"]:
            self.engine.execute(
                conn,
                "alter role set role",
                sql.SQL("ALTER ROLE {} SET role = {}").format(f_ident, sql.Literal(primary["rolname"])),
            )
            changes += 1
        if any(item.startswith("role=") for item in primary["config"]):
            # Left over from an earlier arrangement: the primary must act as itself.
            self.engine.execute(
                conn, "alter role reset role", sql.SQL("ALTER ROLE {} RESET role").format(p_ident)
            )
            changes += 1
        return changes

    def _share_memberships(self, conn: Any, primary: dict[str, Any], follower: dict[str, Any]) -> int:
        """Roles granted directly to the follower are granted to the primary too."""
        rows = self.engine.execute(
            conn,
            "read follower memberships",
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            " WHERE m.member = %s AND m.roleid <> %s AND NOT EXISTS (SELECT 1 FROM pg_auth_members p"
            " WHERE p.member = %s AND p.roleid = m.roleid) ORDER BY r.rolname",
            (follower["oid"], primary["oid"], primary["oid"]),
        )
        for (role,) in rows:
            self.engine.execute(
                conn,
                "grant membership to primary",
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(primary["rolname"])),
            )
        return len(rows)

    def _reassign_follower_objects(
        self, conn: Any, primary: dict[str, Any], follower: dict[str, Any], pending_user: str
    ) -> int:
        """Objects the follower owns in this database go to the primary (0 when there are none)."""
        rows = self.engine.execute(
            conn,
            "count follower objects",
            "SELECT count(*) FROM pg_shdepend WHERE refclassid = 'pg_authid'::regclass AND refobjid = %s"
            " AND deptype = 'o' AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (follower["oid"],),
        )
        owned = int(rows[0][0])
        if not owned:
            return 0
        self.engine.execute(conn, "savepoint", "SAVEPOINT reassign_owned")
        try:
            # REASSIGN OWNED needs the privileges of both roles: a CREATEROLE master grants
            # itself membership for the duration of the statement.
            granted: list[str] = []
            for role in (follower["rolname"], primary["rolname"]):
                member = self.engine.execute(
                    conn, "check own membership", "SELECT pg_has_role(current_user, %s, 'USAGE')", (role,)
                )
                if not member[0][0]:
                    self.engine.execute(
                        conn,
                        "grant membership to master",
                        sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)),
                    )
                    granted.append(role)
            self.engine.execute(
                conn,
                "reassign owned",
                sql.SQL("REASSIGN OWNED BY {} TO {}").format(
                    sql.Identifier(follower["rolname"]), sql.Identifier(primary["rolname"])
                ),
            )
            for role in granted:
                self.engine.execute(
                    conn,
                    "revoke membership from master",
                    sql.SQL("REVOKE {} FROM CURRENT_USER").format(sql.Identifier(role)),
                )
            self.engine.execute(conn, "release savepoint", "RELEASE SAVEPOINT reassign_owned")
        except DatabaseError as exc:
            self.engine.execute(conn, "rollback to savepoint", "ROLLBACK TO SAVEPOINT reassign_owned")
            if pending_user == primary["rolname"]:
                raise DatabaseError(
                    f"{follower['rolname']!r} owns {owned} object(s) in this database that "
                    f"{primary['rolname']!r} could not use after the switch, and the master user cannot "
                    f"hand them over ({exc.detail}); run REASSIGN OWNED BY {follower['rolname']} TO "
                    f"{primary['rolname']} as a superuser, or give the master membership in both roles",
                    exc.detail,
                ) from None
            return 0
        return owned

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
        acting = self.engine.execute(conn, "select current_user", "SELECT current_user")[0][0]
        if acting not in (pending_user, other_user):
            raise DatabaseError(
                f"{pending_user!r} logs in acting as {acting!r}, not as itself or {other_user!r}"
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
            " has_table_privilege(%(pending)s, c.oid, 'SELECT')"
            " AND has_schema_privilege(%(pending)s, n.oid, 'USAGE')"
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
