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
