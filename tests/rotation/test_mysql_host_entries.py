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


# -- a retry that logs in through another host entry -------------------------------------------------
ELSEWHERE = "127.0.0.2"  # a second source address on loopback: another Lambda ENI, another subnet


@pytest.fixture
def entries_by_address(maria_server: MariaDBServer) -> Iterator[tuple[str, str]]:
    """``'app'@'127.0.0.1'`` and ``'app'@'127.0.0.2'``, each allowed to see and change both."""
    user, password = unique_user(), new_password()
    for host in ("127.0.0.1", ELSEWHERE):
        maria_server.sql(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
        maria_server.sql(f"GRANT SELECT ON mysql.user TO '{user}'@'{host}'")
        maria_server.sql(f"GRANT CREATE USER ON *.* TO '{user}'@'{host}'")
    try:
        yield user, password
    finally:
        for host in ("127.0.0.1", ELSEWHERE):
            maria_server.sql(f"DROP USER IF EXISTS '{user}'@'{host}'")


def logs_in_from(server: MariaDBServer, source: str, user: str, password: str) -> bool:
    """A login from ``source``: with ``--skip-name-resolve`` the server matches the entry by address."""
    return maria_login(server, user, password, source)


def connect_from(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """The rotation function's connections leave from ``source`` (the server sees that address)."""
    import pymysql

    from rotation_handlers.engines import mysql as engine_module

    real = pymysql.connect
    monkeypatch.setattr(engine_module.pymysql, "connect", lambda **kw: real(**{"bind_address": source, **kw}))


def test_retry_through_another_entry_after_a_partial_change_sets_every_entry(
    harness: Harness,
    maria_server: MariaDBServer,
    entries_by_address: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """setSecret from 127.0.0.1 changes the other entry and dies before its own; Secrets Manager's
    retry runs in a container whose address matches the changed entry: the pending password logs
    in there, and the entry the first attempt left behind must still get it."""
    from rotation_handlers.engines.base import Engine

    from .test_crash_recovery import SimulatedCrash
    from .test_deploy_probe import start_rotation_without_running_it

    user, password = entries_by_address
    arn = harness.create_secret(maria_server.secret(user, password))
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")

    def crash_after_the_other_entry(phase: str, label: str) -> None:
        if (phase, label) == ("after", "alter other host entry"):
            raise SimulatedCrash(label)

    Engine.statement_hook = crash_after_the_other_entry
    try:
        with pytest.raises(SimulatedCrash):
            harness.invoke(arn, token, "setSecret")
    finally:
        Engine.statement_hook = None
    new = harness.value(arn, "AWSPENDING")["password"]
    assert logs_in_from(maria_server, ELSEWHERE, user, new)
    assert logs_in_from(maria_server, "127.0.0.1", user, password)

    connect_from(monkeypatch, ELSEWHERE)
    for step in ("setSecret", "testSecret", "finishSecret"):
        harness.invoke(arn, token, step)
    assert harness.value(arn)["password"] == new
    assert logs_in_from(maria_server, ELSEWHERE, user, new)
    assert logs_in_from(maria_server, "127.0.0.1", user, new), "AWSCURRENT fails through 127.0.0.1"


def test_test_secret_finds_an_entry_with_another_password(
    harness: Harness, maria_server: MariaDBServer, entries_by_address: tuple[str, str]
) -> None:
    """After setSecret, one entry is given another password (by hand, or a concurrent change):
    testSecret, logging in through the other entry, refuses, naming the entry; AWSCURRENT stays."""
    from .test_deploy_probe import start_rotation_without_running_it

    user, password = entries_by_address
    arn = harness.create_secret(maria_server.secret(user, password))
    token = start_rotation_without_running_it(harness, arn)
    for step in ("createSecret", "setSecret"):
        harness.invoke(arn, token, step)
    maria_server.sql(f"ALTER USER '{user}'@'{ELSEWHERE}' IDENTIFIED BY 'Someone-else-{token[:8]}'")
    with pytest.raises(DatabaseError) as failure:
        harness.invoke(arn, token, "testSecret")
    assert f"'{user}'@'{ELSEWHERE}'" in str(failure.value), failure.value
    assert harness.value(arn)["password"] == password
