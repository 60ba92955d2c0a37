"""setSecret tries the AWSPREVIOUS password only after a rejected login, never after a network error.

Another password cannot help against a closed port or a server that never answers; trying
one would read AWSPREVIOUS for nothing and double the time to fail against a silent server.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from devtools.dbservers import PostgresServer, free_port
from rotation_handlers import secrets_manager
from rotation_handlers.engines import postgres as postgres_engine
from rotation_handlers.engines.base import Engine
from rotation_handlers.errors import ConnectError, LoginRejected

from .conftest import Db, Harness, create_pg_user, new_password, pg_login, unique_user
from .test_connections import rotate_fails_in_set_secret, silent_server  # noqa: F401 - a fixture


@pytest.mark.parametrize("target", ["closed port", "silent server"])
def test_network_failure_makes_one_attempt_and_never_reads_previous(
    harness: Harness, db: Db, target: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    harness.rotate(arn)  # now there is an AWSPREVIOUS version with a password that once worked
    port = free_port() if target == "closed port" else request.getfixturevalue("silent_server")
    harness.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(dict(harness.value(arn), port=port)))
    assert "AWSPREVIOUS" in str(harness.versions(arn))

    # Every step in a fresh container, so a read of AWSPREVIOUS cannot hide in the version cache.
    harness.aws.cold_containers = True
    stages: Counter[str] = Counter()

    def count_read(params: dict[str, Any], **_: Any) -> None:
        stages[params.get("VersionStage", "by version id only")] += 1

    secrets_manager.client(harness.aws.region).meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", count_read
    )
    connects: list[str] = []

    def count_connect(phase: str, label: str) -> None:
        if phase == "before" and label == "connect":
            connects.append(label)

    Engine.statement_hook = count_connect

    failure = rotate_fails_in_set_secret(harness, arn)

    assert isinstance(failure.error, ConnectError), failure.error
    message = str(failure.error)
    assert message.startswith(f"cannot connect to 127.0.0.1:{port} as {user}: "), message
    expected = ("refused",) if target == "closed port" else ("timed out", "timeout")
    assert any(word in message.lower() for word in expected), message
    assert connects == ["connect"]  # one attempt: the current password, nothing after it
    assert stages["AWSPREVIOUS"] == 0, stages
    assert harness.value(arn)["port"] == port  # AWSCURRENT untouched


def test_previous_password_on_another_server_is_not_used(
    harness: Harness, pg_server: PostgresServer, pg_plain: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWSCURRENT now points at another server (same host, other port) where its password is wrong.

    The AWSPREVIOUS version still points at the old server, where its password works: the fallback
    tries that password on the server AWSCURRENT names only, and never logs in to the old server
    (the secret no longer names it), so the old server's password is not changed.
    """
    user, password = unique_user(), new_password()
    create_pg_user(pg_server, user, password)
    arn = harness.create_secret(pg_server.secret(user, password))
    harness.rotate(arn)
    old_server_password = harness.value(arn)["password"]
    new_server_password = new_password()
    create_pg_user(pg_plain, user, new_server_password)  # the new server has another password
    moved = dict(harness.value(arn), port=pg_plain.port, ssl=False, password=new_password())
    harness.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(moved))
    previous = harness.sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")["SecretString"]
    assert json.loads(previous)["port"] == pg_server.port  # AWSPREVIOUS names the old server
    assert json.loads(previous)["password"] == old_server_password

    ports: list[int] = []
    real_connect = postgres_engine.psycopg2.connect

    def record_port(**kwargs: Any) -> Any:  # the real driver on the real server, port noted
        ports.append(kwargs["port"])
        return real_connect(**kwargs)

    monkeypatch.setattr(postgres_engine.psycopg2, "connect", record_port)

    failure = rotate_fails_in_set_secret(harness, arn)

    assert isinstance(failure.error, LoginRejected), failure.error
    message = str(failure.error)
    assert f"127.0.0.1:{pg_plain.port}" in message
    assert "current, pending or previous password" in message, message  # the fallback ran
    assert ports == [pg_plain.port] * 3, ports  # current, pending, previous: all on the new server
    assert pg_login(pg_server, user, old_server_password)  # the old server was left alone
    assert pg_login(pg_plain, user, new_server_password, tls=False)
