"""DB_CA_BUNDLE verifies the server's host name, not only its CA, on both engines.

The servers here present a certificate from the trusted test CA whose only name is
``DNS:localhost`` while the secret says ``127.0.0.1``: a client that checks the chain but
not the name would accept it (and send the password to whoever holds such a certificate).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.dbservers import MariaDBServer, PostgresServer, TLSFiles, make_base_dir
from rotation_handlers.errors import ConnectError

from .conftest import Harness, create_maria_user, create_pg_user, new_password, unique_user
from .test_connections import rotate_fails_in_set_secret

# What each driver says when the certificate does not name the host it connected to.
MISMATCH = {
    "postgres": 'does not match host name "127.0.0.1"',
    "mariadb": "IP address mismatch, certificate is not valid for '127.0.0.1'",
}


@pytest.fixture(scope="module")
def localhost_only_tls(tls_files: TLSFiles) -> Iterator[TLSFiles]:
    base = make_base_dir("rotation-tls-localhost-")
    try:
        yield tls_files.reissue(base, "DNS:localhost")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module", params=["postgres", "mariadb"])
def misnamed_server(request: pytest.FixtureRequest, localhost_only_tls: TLSFiles) -> Iterator[Any]:
    """A server whose certificate (from the trusted CA) leaves out 127.0.0.1."""
    cls = PostgresServer if request.param == "postgres" else MariaDBServer
    with cls(localhost_only_tls) as server:
        yield server


def test_certificate_without_the_secrets_host_is_refused_before_the_password_is_sent(
    harness: Harness, misnamed_server: Any, tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = misnamed_server
    user, password = unique_user(), new_password()
    if isinstance(server, PostgresServer):
        create_pg_user(server, user, password)
    else:
        create_maria_user(server, user, password)
    # A wrong password: had it been sent, the server would count a rejected login.
    arn = harness.create_secret(server.secret(user, "Wrong-" + new_password()))
    monkeypatch.setenv("DB_CA_BUNDLE", str(tls_files.ca_cert))
    before = server.stats()

    failure = rotate_fails_in_set_secret(harness, arn)

    assert isinstance(failure.error, ConnectError), failure.error
    message = str(failure.error)
    assert message.startswith(f"cannot connect to 127.0.0.1:{server.port} as {user}: "), message
    assert MISMATCH[server.engine_name] in message, message
    after = server.stats()
    assert after["connections"] > before["connections"]  # it did reach this server
    assert after["failed_logins"] == before["failed_logins"]  # ... and sent no password
