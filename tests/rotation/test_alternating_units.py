"""Alternating users without a server: names, and parsing MySQL/MariaDB grants (both dialects)."""

from __future__ import annotations

import pytest

from rotation_handlers.engines.mysql_users import Account, MySQLUserAdmin
from rotation_handlers.engines.users import alternate_name


@pytest.mark.parametrize(
    ("name", "other"),
    [("app", "app_clone"), ("app_clone", "app"), ("a_clone_clone", "a_clone"), ("_clone", "_clone_clone")],
)
def test_alternate_name(name: str, other: str) -> None:
    assert alternate_name(name) == other


def account(*grants: str, create: str = "CREATE USER `u`@`%`") -> Account:
    result = Account()
    for line in grants:
        result.add_grant_line(line)
    result.set_create_user(create)
    return result


def test_mariadb_lines() -> None:
    acc = account(
        "GRANT `r1` TO `app`@`10.0.%` WITH ADMIN OPTION",
        "GRANT RELOAD, PROCESS ON *.* TO `app`@`10.0.%` IDENTIFIED BY PASSWORD '*0DB55B5CA3F2' REQUIRE SSL "
        "WITH MAX_QUERIES_PER_HOUR 7",
        "GRANT SELECT, INSERT ON `d1`.* TO `app`@`10.0.%` WITH GRANT OPTION",
        "GRANT ALL PRIVILEGES ON `d1\\_%`.* TO `app`@`10.0.%`",
        "GRANT SELECT (`b c`, `a`), UPDATE (`a`) ON `d1`.`t` TO `app`@`10.0.%`",
        "GRANT EXECUTE ON PROCEDURE `d1`.`p` TO `app`@`10.0.%`",
        "SET DEFAULT ROLE `r1` FOR `app`@`10.0.%`",
        create="CREATE USER `app`@`10.0.%` IDENTIFIED BY PASSWORD '*0DB55B5CA3F2' REQUIRE ISSUER '/CN=y' "
        "SUBJECT '/CN=x' WITH MAX_QUERIES_PER_HOUR 7 MAX_STATEMENT_TIME 1.500000",
    )
    assert acc.objects == {
        "*.*": (frozenset({("RELOAD", None), ("PROCESS", None)}), False),
        "`d1`.*": (frozenset({("SELECT", None), ("INSERT", None)}), True),
        "`d1\\_%`.*": (frozenset({("ALL PRIVILEGES", None)}), False),
        "`d1`.`t`": (frozenset({("SELECT", "`b c`"), ("SELECT", "`a`"), ("UPDATE", "`a`")}), False),
        "PROCEDURE `d1`.`p`": (frozenset({("EXECUTE", None)}), False),
    }
    assert acc.roles == {"`r1`": True}
    assert acc.default_role == "`r1`"
    assert acc.require == "ISSUER '/CN=y' SUBJECT '/CN=x'"
    assert acc.limits == {"MAX_QUERIES_PER_HOUR": "7", "MAX_STATEMENT_TIME": "1.500000"}
    assert "0DB55B5CA3F2" not in repr(acc)  # the hash is never kept


def test_mysql8_lines() -> None:
    acc = account(
        "GRANT USAGE ON *.* TO `app`@`%`",
        "GRANT BACKUP_ADMIN,CONNECTION_ADMIN ON *.* TO `app`@`%` WITH GRANT OPTION",
        "GRANT `r1`@`%` TO `app`@`%`",
        create="CREATE USER `app`@`%` IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$x\\'y TO ON' "
        "REQUIRE SSL PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK PASSWORD HISTORY DEFAULT PASSWORD REUSE INTERVAL "
        "DEFAULT PASSWORD REQUIRE CURRENT DEFAULT",
    )
    assert acc.objects == {"*.*": (frozenset({("BACKUP_ADMIN", None), ("CONNECTION_ADMIN", None)}), True)}
    assert acc.roles == {"`r1`@`%`": False}
    assert acc.require == "SSL"
    assert acc.limits == {}
    none = account(create="CREATE USER `app`@`%` IDENTIFIED WITH 'x' AS 'y' REQUIRE NONE PASSWORD EXPIRE")
    assert none.require == "NONE" and none.objects == {}


def statements(want: Account, have: Account) -> list[str]:
    return [sql for _, sql in MySQLUserAdmin(None)._statements(want, have)]  # type: ignore[arg-type]


def test_statements_make_the_clone_equal() -> None:
    want = account(
        "GRANT SELECT, INSERT ON `d%1`.* TO `a`@`%` WITH GRANT OPTION",
        "GRANT SELECT (`a`) ON `d`.`t` TO `a`@`%`",
        "GRANT `r1` TO `a`@`%`",
        create="CREATE USER `a`@`%` REQUIRE SSL WITH MAX_USER_CONNECTIONS 3",
    )
    have = account(
        "GRANT ALL PRIVILEGES ON `d%1`.* TO `a`@`%`",
        "GRANT RELOAD ON *.* TO `a`@`%` WITH GRANT OPTION",
        "GRANT `r2` TO `a`@`%`",
        "SET DEFAULT ROLE `r2` FOR `a`@`%`",
        create="CREATE USER `a`@`%` WITH MAX_QUERIES_PER_HOUR 9",
    )
    assert statements(want, have) == [
        "REVOKE RELOAD ON *.* FROM %s@%s",
        "REVOKE GRANT OPTION ON *.* FROM %s@%s",
        "REVOKE ALL PRIVILEGES ON `d%%1`.* FROM %s@%s",
        "GRANT INSERT, SELECT ON `d%%1`.* TO %s@%s WITH GRANT OPTION",
        "GRANT SELECT (`a`) ON `d`.`t` TO %s@%s",
        "REVOKE `r2` FROM %s@%s",
        "GRANT `r1` TO %s@%s",
        "SET DEFAULT ROLE NONE FOR %s@%s",
        "ALTER USER %s@%s REQUIRE SSL",
        "ALTER USER %s@%s WITH MAX_QUERIES_PER_HOUR 0 MAX_USER_CONNECTIONS 3",
    ]
    assert statements(want, want) == []


# -- PostgreSQL: moving the follower's privileges onto the primary ----------------------------------
def _text(statement: object) -> str:
    """A composed statement as text, identifiers quoted as psycopg2 would (no connection needed)."""
    from psycopg2 import sql

    def part(item: object) -> str:
        if isinstance(item, sql.Composed):
            return "".join(part(p) for p in item.seq)
        if isinstance(item, sql.Identifier):
            return ".".join('"' + s.replace('"', '""') + '"' for s in item.strings)
        assert isinstance(item, sql.SQL)
        return item.string

    return part(statement)


def test_privilege_moves() -> None:
    from psycopg2 import sql

    from rotation_handlers.engines.pg_privileges import moves as _moves

    rows = [
        ("TABLE", "s.t", None, "SELECT", False, None, 10),
        ("TABLE", "s.t", None, "INSERT", False, None, 10),
        ("SEQUENCE", "s.q", None, "USAGE", True, None, 10),
        ("COLUMN", "s.t", "c", "UPDATE", False, None, 10),
        ("DEFAULT TO", "s", "own", "SELECT", False, "TABLES", 10),
        ("DEFAULT BY", None, "PUBLIC", "EXECUTE", False, "FUNCTIONS", 11),
    ]
    statements = [_text(s) for s in _moves(rows, sql.Identifier("app"), sql.Identifier("app_clone"))]
    assert statements == [
        'GRANT UPDATE (c) ON TABLE s.t TO "app"',
        'REVOKE UPDATE (c) ON TABLE s.t FROM "app_clone"',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "app" GRANT EXECUTE ON FUNCTIONS TO PUBLIC',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "app_clone" REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC',
        'ALTER DEFAULT PRIVILEGES FOR ROLE own IN SCHEMA s GRANT SELECT ON TABLES TO "app"',
        'ALTER DEFAULT PRIVILEGES FOR ROLE own IN SCHEMA s REVOKE SELECT ON TABLES FROM "app_clone"',
        # held WITH GRANT OPTION: granted the same way, never revoked from the follower
        'GRANT USAGE ON SEQUENCE s.q TO "app" WITH GRANT OPTION',
        'GRANT INSERT, SELECT ON TABLE s.t TO "app"',
        'REVOKE INSERT, SELECT ON TABLE s.t FROM "app_clone"',
    ]


def test_unexpected_privilege_name_is_refused() -> None:
    from psycopg2 import sql

    from rotation_handlers.engines.pg_privileges import moves as _moves
    from rotation_handlers.errors import DatabaseError

    with pytest.raises(DatabaseError, match="unexpected privilege name"):
        _moves(
            [("TABLE", "t", None, "SELECT; DROP", False, None, 1)], sql.Identifier("a"), sql.Identifier("b")
        )


@pytest.mark.parametrize(
    ("config", "role"),
    [([], None), (["search_path=x", "role=app_owner"], "app_owner"), (['role="Odd ""Name"""'], 'Odd "Name"')],
)
def test_role_setting(config: list[str], role: str | None) -> None:
    from rotation_handlers.engines.pg_roles import role_setting as _role_setting

    assert _role_setting(config) == role


def test_pair_marker_is_the_same_for_both_logins() -> None:
    from rotation_handlers.engines.users import pair_marker

    assert (
        pair_marker("app")
        == pair_marker("app_clone")
        == "secrets-rotation: alternating login pair app / app_clone"
    )


@pytest.mark.parametrize(
    ("value", "ok"), [("1", True), ("60", True), ("0", False), ("61", False), ("x", False)]
)
def test_lock_timeout_setting(monkeypatch: pytest.MonkeyPatch, value: str, ok: bool) -> None:
    from rotation_handlers.engines.users import lock_timeout
    from rotation_handlers.errors import ConfigurationError

    monkeypatch.setenv("DB_LOCK_TIMEOUT", value)
    if ok:
        assert lock_timeout() == int(value)
    else:
        with pytest.raises(ConfigurationError, match="DB_LOCK_TIMEOUT must be"):
            lock_timeout()
