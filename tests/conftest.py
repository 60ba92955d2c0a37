"""Session-wide test setup: throwaway PostgreSQL and MariaDB servers with TLS on loopback.

The servers start on first use (tests that need no database never start them) and
stop at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.dbservers import MariaDBServer, PostgresServer, TLSFiles, make_base_dir


@pytest.fixture(scope="session")
def tls_files() -> Iterator[TLSFiles]:
    import shutil

    base = make_base_dir("rotation-tls-")
    try:
        yield TLSFiles.create(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(tls_files: TLSFiles) -> Iterator[PostgresServer]:
    with PostgresServer(tls_files) as server:
        yield server


@pytest.fixture(scope="session")
def maria_server(tls_files: TLSFiles) -> Iterator[MariaDBServer]:
    with MariaDBServer(tls_files) as server:
        yield server


@pytest.fixture(scope="session")
def pg_plain() -> Iterator[PostgresServer]:
    """A PostgreSQL server without TLS (for the opt-out and refuse-plaintext tests)."""
    with PostgresServer(None) as server:
        yield server
