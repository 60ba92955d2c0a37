"""MySQL/MariaDB user administration for alternating-user rotation.

Mechanism: the pending user is made an account-by-account copy of the current one.

* Which existing account is taken over: an existing pending user is used only when this
  secret's history names it (``vouched``: AWSPREVIOUS or another labelled version holds that
  username), or when it has the shape of the copy this function and AWS's alternating
  functions make (``CREATE USER`` plus the current user's ``SHOW GRANTS`` lines replayed,
  aws-samples/aws-secrets-manager-rotation-lambdas ``SecretsManagerRDSMySQLRotationMultiUser``):
  every host entry it has, the current user has too, and on each it holds no privilege, grant
  option or role the current user's entry lacks. MariaDB has no account comment to carry a
  marker; an account this function made is such a copy, so the shape recognises it. Anything
  else is refused before any change, every problem named.
* Host specifications: the pending user gets exactly the current user's host entries
  (``'%'``, ``'10.0.%'``, ``'127.0.0.1'``...), never a hard-coded ``'%'``: missing ones are
  created, entries the current user does not have are dropped (they would keep privileges
  of their own and accept the pending password from other addresses).
* Privileges: for each host, ``SHOW GRANTS`` of both accounts is parsed into
  ``object -> (privileges, grant option)`` plus granted roles (with ``ADMIN OPTION``)
  and the default role (MariaDB). The clone's grants are then made *equal* to the
  current user's: missing privileges granted (``WITH GRANT OPTION`` where the current
  user has it), extra ones revoked, so a privilege added to the current user since
  the last rotation is carried over, and one the clone should no longer have is
  removed. Column, routine and proxy privileges are handled like the others. Only
  the privilege part of a ``SHOW GRANTS`` line is used: the ``IDENTIFIED BY PASSWORD``
  hash MariaDB prints there is never read or copied.
* Account options: the TLS requirement (``REQUIRE SSL``/``X509``/``ISSUER``/``SUBJECT``/
  ``CIPHER``) and the resource limits (``MAX_*``) are read from ``SHOW CREATE USER``
  and copied (again without the password part).
* After the changes, the clone's grants and options are read again and compared: a
  difference fails setSecret rather than letting a half-privileged user become current.

User DDL is not transactional in MySQL; each statement is idempotent given the state
it is computed from, so a retry after a crash recomputes the differences and converges.
Identifiers in generated statements come from the server's own ``SHOW GRANTS`` output
(already quoted); user names and hosts are always sent as bound string literals, so
quotes, ``%``, spaces and upper case need no special care.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import DatabaseError
from .users import Connector, UserAdmin, Vouch, lock_timeout

_WORD = re.compile(r"[A-Za-z0-9_$]+")
_SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
# Words that end the REQUIRE clause of SHOW CREATE USER.
_AFTER_REQUIRE = {"WITH", "PASSWORD", "ACCOUNT", "DEFAULT", "COMMENT", "ATTRIBUTE", "FAILED_LOGIN_ATTEMPTS"}

Token = tuple[int, int, str, int]  # start, end, text, parenthesis depth
Privilege = tuple[str, str | None]  # (privilege name, column or None)


def _scan(text: str) -> list[Token]:
    """Tokens of a statement as the server prints it: quoted names/strings, words, punctuation."""
    tokens: list[Token] = []
    i, depth, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "`'\"":
            j = i + 1
            while j < n:
                if text[j] == "\\" and ch != "`":
                    j += 2
                    continue
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            tokens.append((i, j + 1, text[i : j + 1], depth))
            i = j + 1
            continue
        match = _WORD.match(text, i)
        if match:
            tokens.append((i, match.end(), match.group(), depth))
            i = match.end()
            continue
        if ch == ")":
            depth -= 1
        tokens.append((i, i + 1, ch, depth))
        if ch == "(":
            depth += 1
        i += 1
    return tokens


def _is_word(token: Token, word: str) -> bool:
    return token[2].upper() == word and token[3] == 0


def _find(tokens: list[Token], word: str, start: int = 0) -> int | None:
    return next((i for i in range(start, len(tokens)) if _is_word(tokens[i], word)), None)


def _split(text: str) -> list[str]:
    """``text`` cut at commas outside parentheses and quotes."""
    parts, last = [], 0
    for start, _, tok, depth in _scan(text):
        if tok == "," and depth == 0:
            parts.append(text[last:start].strip())
            last = start + 1
    parts.append(text[last:].strip())
    return [p for p in parts if p]


def _privileges(text: str) -> set[Privilege]:
    """``SELECT (`a`, `b`), INSERT`` -> {("SELECT", "`a`"), ("SELECT", "`b`"), ("INSERT", None)}."""
    items: set[Privilege] = set()
    for part in _split(text):
        paren = next((t for t in _scan(part) if t[2] == "(" and t[3] == 0), None)
        if paren is None:
            items.add((" ".join(part.split()).upper(), None))
            continue
        name = " ".join(part[: paren[0]].split()).upper()
        inner = part[paren[1] : part.rindex(")")]
        items.update((name, column) for column in _split(inner))
    items.discard(("USAGE", None))
    return items


def _privilege_list(items: set[Privilege] | frozenset[Privilege]) -> str:
    names: dict[str, list[str | None]] = {}
    for name, column in sorted(items, key=lambda i: (i[0], i[1] or "")):
        names.setdefault(name, []).append(column)
    parts = []
    for name, columns in names.items():
        if None in columns:
            parts.append(name)
        cols = [c for c in columns if c is not None]
        if cols:
            parts.append(f"{name} ({', '.join(cols)})")
    return ", ".join(parts) or "USAGE"


@dataclass
class Account:
    """What one ``user@host`` may do, independent of its name (no password material)."""

    objects: dict[str, tuple[frozenset[Privilege], bool]] = field(default_factory=dict)
    roles: dict[str, bool] = field(default_factory=dict)  # role -> WITH ADMIN OPTION
    default_role: str | None = None
    require: str = "NONE"
    limits: dict[str, str] = field(default_factory=dict)

    def add_grant_line(self, line: str) -> None:
        tokens = _scan(line)
        if not tokens:
            return
        if [t[2].upper() for t in tokens[:3]] == ["SET", "DEFAULT", "ROLE"]:
            end = _find(tokens, "FOR", 3)
            if end is not None:
                self.default_role = line[tokens[3][0] : tokens[end][0]].strip()
            return
        if tokens[0][2].upper() != "GRANT":
            return
        on = _find(tokens, "ON", 1)
        to = _find(tokens, "TO", (on or 0) + 1)
        if to is None:
            raise DatabaseError(
                f"cannot parse a SHOW GRANTS line starting with {tokens[0][2][:20]!r} (no TO)"
            )
        rest = [t[2].upper() for t in tokens[to + 1 :] if t[3] == 0]
        option = any(rest[i : i + 2] in (["GRANT", "OPTION"], ["ADMIN", "OPTION"]) for i in range(len(rest)))
        head_end = tokens[on if on is not None and on < to else to][0]
        head = line[tokens[0][1] : head_end]
        if on is None or on > to:
            for role in _split(head):
                self.roles[role] = self.roles.get(role, False) or option
            return
        target = line[tokens[on][1] : tokens[to][0]].strip()
        items, had_option = self.objects.get(target, (frozenset(), False))
        items, option = items | _privileges(head), had_option or option
        if items or option:  # a bare USAGE line grants nothing
            self.objects[target] = (items, option)

    def set_create_user(self, statement: str) -> None:
        tokens = _scan(statement)
        require = next(
            (
                i
                for i in range(len(tokens))
                if _is_word(tokens[i], "REQUIRE") and (i == 0 or tokens[i - 1][2].upper() != "PASSWORD")
            ),
            None,
        )
        if require is not None:
            end = next(
                (i for i in range(require + 1, len(tokens)) if tokens[i][2].upper() in _AFTER_REQUIRE),
                len(tokens),
            )
            if end > require + 1:
                clause = statement[tokens[require + 1][0] : tokens[end - 1][1]]
                self.require = " ".join(clause.split())
        with_at = next(
            (
                i
                for i in range(len(tokens) - 1)
                if _is_word(tokens[i], "WITH") and tokens[i + 1][2].upper().startswith("MAX_")
            ),
            None,
        )
        if with_at is not None:
            keys = [
                i
                for i in range(with_at + 1, len(tokens))
                if tokens[i][3] == 0 and _WORD.fullmatch(tokens[i][2]) and tokens[i][2][0].isalpha()
            ]
            for k, i in enumerate(keys):
                if not tokens[i][2].upper().startswith("MAX_"):
                    break
                end = tokens[keys[k + 1]][0] if k + 1 < len(keys) else len(statement)
                value = statement[tokens[i][1] : end].strip()
                if value.replace(".", "").isdigit() and float(value) != 0:
                    self.limits[tokens[i][2].upper()] = value

    def extras(self, other: Account) -> list[str]:
        """What ``other`` holds beyond this account: privileges, grant options, roles, admin options."""
        found = []
        for target, (items, option) in sorted(other.objects.items()):
            mine, my_option = self.objects.get(target, (frozenset(), False))
            extra = set() if ("ALL PRIVILEGES", None) in mine else set(items - mine)
            parts = [_privilege_list(extra)] if extra else []
            if option and not my_option:
                parts.append("GRANT OPTION")
            if parts:
                found.append(f"{', '.join(parts)} on {target}")
        for role, admin in sorted(other.roles.items()):
            if role not in self.roles:
                found.append(f"role {role}")
            elif admin and not self.roles[role]:
                found.append(f"ADMIN OPTION on role {role}")
        return found

    def differences(self, other: Account) -> list[str]:
        """What ``other`` has differently from this account (for error messages)."""
        found = []
        for target in sorted(set(self.objects) | set(other.objects)):
            if self.objects.get(target, (frozenset(), False)) != other.objects.get(
                target, (frozenset(), False)
            ):
                found.append(f"privileges on {target}")
        if self.roles != other.roles:
            found.append("roles")
        if self.default_role != other.default_role:
            found.append("default role")
        if self.require != other.require:
            found.append("TLS requirement")
        if self.limits != other.limits:
            found.append("resource limits")
        return found


def _escape(text: str) -> str:
    """Server-printed text placed in a statement run with bound parameters."""
    return text.replace("%", "%%")


class MySQLUserAdmin(UserAdmin):
    def _current_account(self, conn: Any) -> tuple[str, str]:
        value = str(self.engine.execute(conn, "select current_user", "SELECT CURRENT_USER()")[0][0])
        user, _, host = value.rpartition("@")
        return user, host

    def _hosts(self, conn: Any, users: tuple[str, ...]) -> dict[str, list[str]]:
        marks = ", ".join(["%s"] * len(users))
        try:
            rows = self.engine.execute(
                conn,
                "read accounts",
                f"SELECT User, Host FROM mysql.user WHERE User IN ({marks}) AND Host <> '' ORDER BY Host",  # noqa: S608
                users,
            )
        except DatabaseError as exc:
            raise DatabaseError(
                f"{exc} (the master user needs SELECT on mysql.*, CREATE USER, and the privileges it "
                "copies WITH GRANT OPTION)",
                exc.detail,
            ) from None
        found: dict[str, list[str]] = {u: [] for u in users}
        for user, host in rows:
            user = user.decode() if isinstance(user, bytes) else str(user)
            host = host.decode() if isinstance(host, bytes) else str(host)
            if user in found:
                found[user].append(host)
        return found

    def account(self, conn: Any, user: str, host: str) -> Account:
        account = Account()
        for (line,) in self.engine.execute(conn, "show grants", "SHOW GRANTS FOR %s@%s", (user, host)):
            account.add_grant_line(str(line))
        rows = self.engine.execute(conn, "show create user", "SHOW CREATE USER %s@%s", (user, host))
        account.set_create_user(str(rows[0][0]))
        return account

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
        # Grant-table changes wait at most DB_LOCK_TIMEOUT for a metadata lock another session holds.
        self.engine.execute(
            conn, "set lock wait timeout", "SET SESSION lock_wait_timeout = %s", (lock_timeout(),)
        )
        hosts = self._hosts(conn, (current_user, clone_user))
        if not hosts[current_user]:
            raise DatabaseError(f"the current user {current_user!r} has no account in mysql.user")
        facts: dict[str, Any] = {"hosts": len(hosts[current_user])}
        accounts: dict[tuple[str, str], Account] = {}
        if hosts[clone_user]:
            facts["alternate_login"] = self._accept_existing(
                conn, current_user, clone_user, hosts, accounts, vouched
            )
        created, changes = 0, 0
        for host in hosts[current_user]:
            host_changes = 0
            if host not in hosts[clone_user]:
                self.engine.execute(
                    conn,
                    "create user",
                    "CREATE USER %s@%s IDENTIFIED BY %s",
                    (clone_user, host, password),
                    secrets=(password,),
                )
                created += 1
            want = accounts.get((current_user, host)) or self.account(conn, current_user, host)
            have = accounts.get((clone_user, host)) or self.account(conn, clone_user, host)
            for label, statement in self._statements(want, have):
                self.engine.execute(conn, label, statement, (clone_user, host))
                host_changes += 1
            changes += host_changes
            if host_changes:
                now = self.account(conn, clone_user, host)
                differences = want.differences(now)
                if differences:
                    raise DatabaseError(
                        f"could not make {clone_user!r}@{host!r} equal to {current_user!r}@{host!r}: "
                        + ", ".join(differences)
                        + " still differ"
                    )
        # Host entries the current user does not have go: the pending user gets exactly its entries.
        extra_hosts = [h for h in hosts[clone_user] if h not in hosts[current_user]]
        for host in extra_hosts:
            self.engine.execute(conn, "drop extra host entry", "DROP USER %s@%s", (clone_user, host))
        if extra_hosts:
            facts["host_entries_dropped"] = len(extra_hosts)
        for host in hosts[current_user]:
            self.engine.execute(
                conn,
                "alter user password",
                "ALTER USER %s@%s IDENTIFIED BY %s",
                (clone_user, host, password),
                secrets=(password,),
            )
        changes += len(extra_hosts)
        what = "user created" if created else "password set"
        facts["outcome"] = what + (f", {changes} change(s) to privileges" if changes else "")
        return facts

    def _accept_existing(
        self,
        conn: Any,
        current_user: str,
        clone_user: str,
        hosts: dict[str, list[str]],
        accounts: dict[tuple[str, str], Account],
        vouched: Vouch | None,
    ) -> str:
        """How an existing pending user is recognised as the application's other login (for the
        log line); refuses, naming every problem and changing nothing, when it is not."""
        problems = []
        for host in hosts[clone_user]:
            if host not in hosts[current_user]:
                problems.append(f"{_display(clone_user, host)} is a host entry {current_user!r} lacks")
                continue
            want = accounts[(current_user, host)] = self.account(conn, current_user, host)
            have = accounts[(clone_user, host)] = self.account(conn, clone_user, host)
            extras = want.extras(have)
            if extras:
                problems.append(
                    f"{_display(clone_user, host)} holds privileges {_display(current_user, host)} "
                    f"lacks ({'; '.join(extras)})"
                )
        if not problems:
            return "shaped like a clone"
        label = vouched() if vouched is not None else None
        if label:
            return f"named by {label}"
        raise DatabaseError(
            f"the account {clone_user!r} exists and is not an alternate login of {current_user!r}: no "
            "earlier version of this secret names it, and it is not shaped like the copy this function "
            f"or AWS's rotation functions make (host entries and privileges within {current_user!r}'s): "
            + "; ".join(problems)
            + f". Nothing was changed: drop or rename {clone_user!r}, or, if it is meant to be the "
            f"alternate login, revoke what it holds beyond {current_user!r} and drop its other host "
            "entries; the rotation's retry then takes it over"
        )

    def _statements(self, want: Account, have: Account) -> list[tuple[str, str]]:
        """(label, SQL naming the account as ``%s@%s``) turning ``have`` into ``want``."""
        out: list[tuple[str, str]] = []
        empty: tuple[frozenset[Privilege], bool] = (frozenset(), False)
        for target in sorted(set(want.objects) | set(have.objects)):
            want_items, want_option = want.objects.get(target, empty)
            have_items, have_option = have.objects.get(target, empty)
            if (want_items, want_option) == (have_items, have_option):
                continue
            on = _escape(target)
            if want_items != have_items and ("ALL PRIVILEGES", None) in want_items | have_items:
                if have_items:
                    out.append(("revoke", f"REVOKE ALL PRIVILEGES ON {on} FROM %s@%s"))
                have_items = frozenset()
            extra = have_items - want_items
            if extra:
                out.append(("revoke", f"REVOKE {_escape(_privilege_list(extra))} ON {on} FROM %s@%s"))
            if have_option and not want_option:
                out.append(("revoke", f"REVOKE GRANT OPTION ON {on} FROM %s@%s"))
            missing = want_items - have_items
            if want_option and not have_option:
                missing = want_items
            if missing or (want_option and not have_option):
                option = " WITH GRANT OPTION" if want_option else ""
                privileges = _escape(_privilege_list(missing))
                out.append(("grant", f"GRANT {privileges} ON {on} TO %s@%s{option}"))
        for role in sorted(set(have.roles) - set(want.roles)):
            out.append(("revoke role", f"REVOKE {_escape(role)} FROM %s@%s"))
        for role in sorted(want.roles):
            if role in have.roles and have.roles[role] == want.roles[role]:
                continue
            if role in have.roles:
                out.append(("revoke role", f"REVOKE {_escape(role)} FROM %s@%s"))
            option = " WITH ADMIN OPTION" if want.roles[role] else ""
            out.append(("grant role", f"GRANT {_escape(role)} TO %s@%s{option}"))
        if want.default_role != have.default_role:
            role = _escape(want.default_role or "NONE")
            out.append(("set default role", f"SET DEFAULT ROLE {role} FOR %s@%s"))
        if want.require != have.require:
            out.append(("alter user require", f"ALTER USER %s@%s REQUIRE {_escape(want.require)}"))
        if want.limits != have.limits:
            limits = " ".join(
                f"{k} {want.limits.get(k, '0')}" for k in sorted(set(want.limits) | set(have.limits))
            )
            out.append(("alter user limits", f"ALTER USER %s@%s WITH {limits}"))
        return out

    # -- comparison -----------------------------------------------------------------------------
    def privileges(self, conn: Any, user: str) -> dict[str, Account]:
        return {host: self.account(conn, user, host) for host in self._hosts(conn, (user,))[user]}

    # -- testSecret -----------------------------------------------------------------------------
    def verify_pending(self, conn: Any, pending_user: str, other_user: str) -> dict[str, Any]:
        user, host = self._current_account(conn)
        grantee = "'" + user + "'@'" + host + "'"
        marks = ", ".join(["%s"] * len(_SYSTEM_SCHEMAS))
        rows = self.engine.execute(
            conn,
            "find a readable table",
            "SELECT t.TABLE_SCHEMA, t.TABLE_NAME FROM information_schema.TABLES t"  # noqa: S608
            f" WHERE t.TABLE_SCHEMA NOT IN ({marks}) AND ("
            " EXISTS (SELECT 1 FROM information_schema.USER_PRIVILEGES p"
            "  WHERE p.GRANTEE = %s AND p.PRIVILEGE_TYPE = 'SELECT')"
            " OR EXISTS (SELECT 1 FROM information_schema.SCHEMA_PRIVILEGES p"
            "  WHERE p.GRANTEE = %s AND p.PRIVILEGE_TYPE = 'SELECT' AND p.TABLE_SCHEMA = t.TABLE_SCHEMA)"
            " OR EXISTS (SELECT 1 FROM information_schema.TABLE_PRIVILEGES p"
            "  WHERE p.GRANTEE = %s AND p.PRIVILEGE_TYPE = 'SELECT' AND p.TABLE_SCHEMA = t.TABLE_SCHEMA"
            "  AND p.TABLE_NAME = t.TABLE_NAME))"
            " ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME LIMIT 1",
            (*_SYSTEM_SCHEMAS, grantee, grantee, grantee),
        )
        facts: dict[str, Any] = {"login_host": host}
        if rows:
            schema, table = (str(v) for v in rows[0])
            statement = f"SELECT 1 FROM {_quote(schema)}.{_quote(table)} LIMIT 1"  # noqa: S608 - quoted names
            self.engine.execute(conn, "read a table", statement)
            facts["read_table"] = f"{schema}.{table}"
        else:
            self.engine.execute(conn, "select 1", "SELECT 1")
        return facts


def _display(user: str, host: str) -> str:
    """An account as an operator reads it in an error message (not SQL)."""
    return f"'{user}'@'{host}'"


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"
