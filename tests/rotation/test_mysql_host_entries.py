"""Single-user rotation of a MySQL/MariaDB user that has several host entries.

``'app'@'127.0.0.1'`` and ``'app'@'127.0.0.%'`` are two accounts with one name: a password
change through the login changes only the entry the server matched. The rotation changes every
entry it can see and may change, refuses (changing nothing) when it sees entries it may not
change, and says in its log line when it cannot see them at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from devtools.aws import StepFailed
from devtools.dbservers import MariaDBServer
from rotation_handlers.errors import DatabaseError

from .conftest import Harness, maria_login, new_password, unique_user

OTHER_HOST = "127.0.0.%"


@pytest.fixture
def two_entries(maria_server: MariaDBServer) -> Iterator[tuple[str, str]]:
    user, password = unique_user(), new_password()
    conn = maria_server.connect_super()
    try:
        with conn.cursor() as cur:
            for host in ("127.0.0.1", OTHER_HOST):
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, password))
        yield user, password
    finally:
        with conn.cursor() as cur:
            for host in ("127.0.0.1", OTHER_HOST):
                cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
        conn.close()


def grant(server: MariaDBServer, user: str, *privileges: str) -> None:
    for privilege in privileges:
        server.sql(f"GRANT {privilege} TO '{user}'@'127.0.0.1'")


def other_entry_logs_in(server: MariaDBServer, user: str, password: str) -> bool:
    """Drop the entry a TCP login from 127.0.0.1 matches first, then log in through the other one."""
    server.sql(f"DROP USER '{user}'@'127.0.0.1'")
    return maria_login(server, user, password)


def test_every_entry_the_user_may_change_is_changed(
    harness: Harness, maria_server: MariaDBServer, two_entries: tuple[str, str]
) -> None:
    user, password = two_entries
    grant(maria_server, user, "SELECT ON mysql.user", "CREATE USER ON *.*")
    arn = harness.create_secret(maria_server.secret(user, password))
    before = maria_server.stats()
    harness.rotate(arn)
    after = maria_server.stats()
    new = harness.value(arn)["password"]
    assert maria_login(maria_server, user, new)
    assert after["connections"] - before["connections"] == 2
    assert after["failed_logins"] - before["failed_logins"] == 0
    assert other_entry_logs_in(maria_server, user, new)


def test_entries_the_user_sees_but_may_not_change_stop_the_rotation(
    harness: Harness, maria_server: MariaDBServer, two_entries: tuple[str, str]
) -> None:
    user, password = two_entries
    grant(maria_server, user, "SELECT ON mysql.user")
    arn = harness.create_secret(maria_server.secret(user, password))
    with pytest.raises(StepFailed) as failure:
        harness.rotate(arn)
    assert failure.value.step == "setSecret"
    assert isinstance(failure.value.error, DatabaseError), failure.value.error
    message = str(failure.value.error)
    assert f"'{user}'@'{OTHER_HOST}'" in message, message
    assert "nothing was changed" in message, message
    assert harness.value(arn)["password"] == password
    assert maria_login(maria_server, user, password)
    assert other_entry_logs_in(maria_server, user, password)


def test_entries_the_user_cannot_see_are_named_in_the_log(
    harness: Harness,
    maria_server: MariaDBServer,
    two_entries: tuple[str, str],
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Without read access to mysql.user the other entries are invisible: the log line says so."""
    user, password = two_entries
    arn = harness.create_secret(maria_server.secret(user, password))
    harness.rotate(arn)
    out = capfd.readouterr().out
    print(out, end="")
    line = json.loads(next(line for line in out.splitlines() if '"setSecret ok"' in line))
    assert line["host_entries_changed"] == [f"'{user}'@'127.0.0.1'"]
    assert "cannot see other host entries" in line["host_entries_warning"], line


def test_crash_at_every_point_with_two_entries_then_retry(
    harness: Harness, maria_server: MariaDBServer
) -> None:
    """A crash before or after every call and statement, then the retry: both entries get the new password."""
    from .test_crash_recovery import crash_then_retry, record_points

    def entries(user: str, password: str) -> str:
        for host in ("127.0.0.1", OTHER_HOST):
            maria_server.sql(f"DROP USER IF EXISTS '{user}'@'{host}'")
            maria_server.sql(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
        grant(maria_server, user, "SELECT ON mysql.user", "CREATE USER ON *.*")
        return harness.create_secret(maria_server.secret(user, password))

    points = record_points(harness, entries(unique_user(), new_password()))
    assert "after alter other host entry" in points
    for at, name in enumerate(points):
        user = unique_user()
        arn = entries(user, new_password())
        crash_then_retry(harness, arn, at, False, lambda: None)
        new = harness.value(arn)["password"]
        assert maria_login(maria_server, user, new), name
        assert other_entry_logs_in(maria_server, user, new), name
        maria_server.sql(f"DROP USER IF EXISTS '{user}'@'{OTHER_HOST}'")
