"""The application's own statements wait for a lock at most DB_LOCK_TIMEOUT (and run at most
DB_STATEMENT_TIMEOUT).

Single-user setSecret changes the password (PostgreSQL ``ALTER ROLE``, MariaDB ``SET PASSWORD``)
and alternating testSecret reads one of the application's tables. Another session holding a
conflicting lock (an open transaction altering the same role, ``LOCK TABLE`` / ``LOCK TABLES``)
must make the step fail with an error that names the limit, the statement cancelled by the
server, AWSCURRENT unchanged; the retry after the lock is gone finishes the rotation.

The holding session ends itself after a while (``idle_in_transaction_session_timeout`` /
``wait_timeout``), so a statement with no limit waits for it and then succeeds: the test fails
instead of hanging. Nothing here measures time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from rotation_handlers.errors import DatabaseError

from .conftest import Db, Harness, new_password, unique_user
from .test_alternating import make_app
from .test_deploy_probe import start_rotation_without_running_it

HOLDER_GIVES_UP_SECONDS = 20


@contextmanager
def holding(db: Db, *statements: str) -> Iterator[None]:
    """A superuser session that runs ``statements`` and keeps their locks until the block ends."""
    conn = db.server.connect_super()
    try:
        with conn.cursor() as cur:
            if db.name == "postgres":
                cur.execute(f"SET idle_in_transaction_session_timeout = '{HOLDER_GIVES_UP_SECONDS}s'")
                cur.execute("BEGIN")
            else:
                cur.execute(f"SET SESSION wait_timeout = {HOLDER_GIVES_UP_SECONDS}")
            for statement in statements:
                cur.execute(statement)
        yield
    finally:
        conn.close()  # rolls back (PostgreSQL) or unlocks the tables (MariaDB)


# What each server says when it cancels a statement at a session limit.
SERVER_WORDS = {
    ("postgres", "lock"): "canceling statement due to lock timeout",
    ("mariadb", "lock"): "lock wait timeout exceeded",
    ("mariadb", "statement"): "max_statement_time exceeded",
}


def assert_cancelled_at_a_limit(error: BaseException, db: Db, kind: str, label: str) -> None:
    assert isinstance(error, DatabaseError), error
    message = str(error)
    if kind == "lock":
        expected = (
            "cancelled after waiting longer than DB_LOCK_TIMEOUT (1 s) for a lock another session holds"
        )
    else:
        expected = "cancelled after running longer than DB_STATEMENT_TIMEOUT (2 s)"
    assert message.startswith(f"{label} failed: {expected}"), message
    # The server's own words: the statement was cancelled, not the connection lost.
    assert SERVER_WORDS[(db.name, kind)] in error.detail.lower(), error.detail


def test_single_user_password_change_gives_up_on_a_held_lock(
    harness: Harness, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_LOCK_TIMEOUT", "1")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT", "2")
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    if db.name == "postgres":
        # An open transaction that changed the same role: ALTER ROLE waits for it to end.
        blocker, kind, label = f'ALTER ROLE "{user}" CONNECTION LIMIT 50', "lock", "alter role"
    else:
        # The grant table SET PASSWORD writes is locked by another session. MariaDB opens grant
        # tables ignoring lock_wait_timeout, so the statement limit is what cancels the wait.
        blocker, kind, label = "LOCK TABLES mysql.global_priv WRITE", "statement", "set password"
    with holding(db, blocker), pytest.raises(DatabaseError) as failure:
        harness.invoke(arn, token, "setSecret")
    assert_cancelled_at_a_limit(failure.value, db, kind, label)
    assert harness.value(arn)["password"] == password
    assert db.login(user, password)
    for step in ("setSecret", "testSecret", "finishSecret"):
        harness.invoke(arn, token, step)
    assert db.login(user, harness.value(arn)["password"])


def test_alternating_test_secret_gives_up_on_a_locked_table(
    harness: Harness, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_LOCK_TIMEOUT", "1")
    arn, user, place = make_app(harness, db)
    before = harness.value(arn)
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    harness.invoke(arn, token, "setSecret")
    if db.name == "postgres":
        lock = f'LOCK TABLE "{place}".owned IN ACCESS EXCLUSIVE MODE'
    else:
        lock = f"LOCK TABLES `{place}`.t WRITE"
    with holding(db, lock), pytest.raises(DatabaseError) as failure:
        harness.invoke(arn, token, "testSecret")
    assert_cancelled_at_a_limit(failure.value, db, "lock", "read a table")
    assert harness.value(arn) == before
    for step in ("testSecret", "finishSecret"):
        harness.invoke(arn, token, step)
    assert harness.value(arn)["username"] == user + "_clone"
