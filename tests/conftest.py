"""Session-wide test setup: throwaway PostgreSQL and MariaDB servers with TLS on loopback.

The servers start on first use (tests that need no database never start them) and
stop at the end of the session. PostgreSQL 15 (Debian's) serves every test; the rotation
tests also run against the versions ``PG_VERSIONS`` names (see tests/rotation/conftest.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devtools.dbservers import PG_VERSIONS, MariaDBServer, PostgresServer, TLSFiles, make_base_dir

#: The version every test outside the rotation suites runs against.
DEFAULT_PG_VERSION = "15"
#: The version the rotation suites run on when PG_VERSIONS is unset: RDS's default major version,
#: with PostgreSQL 16's CREATEROLE rules (15 still serves every version-independent test).
DEFAULT_ROTATION_PG_VERSIONS = "17"


def pg_test_versions() -> list[str]:
    """PostgreSQL versions the rotation suites run on: ``PG_VERSIONS`` (e.g. ``15,16,17,18``),
    by default ``DEFAULT_ROTATION_PG_VERSIONS``."""
    raw = os.environ.get("PG_VERSIONS") or DEFAULT_ROTATION_PG_VERSIONS
    versions = [v.strip() for v in raw.split(",") if v.strip()]
    unknown = [v for v in versions if v not in PG_VERSIONS]
    if unknown or not versions:
        raise pytest.UsageError(f"PG_VERSIONS={raw!r}: choose from {', '.join(PG_VERSIONS)}")
    return list(dict.fromkeys(versions))


class PgServers:
    """One TLS server per PostgreSQL version, started on first use and kept for the session."""

    def __init__(self, tls: TLSFiles) -> None:
        self.tls = tls
        self._servers: dict[str, PostgresServer] = {}

    def get(self, version: str) -> PostgresServer:
        if version not in self._servers:
            server = PostgresServer(self.tls, version=version)
            server.start()
            self._servers[version] = server
        return self._servers[version]

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()


@pytest.fixture(scope="session")
def tls_files() -> Iterator[TLSFiles]:
    import shutil

    base = make_base_dir("rotation-tls-")
    try:
        yield TLSFiles.create(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_servers(tls_files: TLSFiles) -> Iterator[PgServers]:
    servers = PgServers(tls_files)
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def pg_default(pg_servers: PgServers) -> PostgresServer:
    """The PostgreSQL 15 server (also where tests that do not depend on the version run)."""
    return pg_servers.get(DEFAULT_PG_VERSION)


@pytest.fixture(scope="session")
def pg_server(pg_default: PostgresServer) -> PostgresServer:
    return pg_default


@pytest.fixture(scope="session")
def maria_server(tls_files: TLSFiles) -> Iterator[MariaDBServer]:
    with MariaDBServer(tls_files) as server:
        yield server


@pytest.fixture(scope="session")
def pg_plain() -> Iterator[PostgresServer]:
    """A PostgreSQL server without TLS (for the opt-out and refuse-plaintext tests)."""
    with PostgresServer(None) as server:
        yield server


class EmfLines(list):  # type: ignore[type-arg]
    """The metric lines printed during one test, parsed (``tests/emf_spec.py`` checks each)."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[str] = []


@pytest.fixture(autouse=True)
def emf_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmfLines]:
    """Every metric line the handlers print in any test is checked against the EMF specification
    when the test ends; the lines still reach stdout (the leak scans read it)."""
    import json
    import sys

    from rotation_handlers import metrics
    from tests.emf_spec import check_line

    lines = EmfLines()
    downstream = metrics.SINK

    def sink(line: str) -> None:
        lines.raw.append(line)
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass  # reported by check_line below
        if downstream is not None:
            downstream(line)
        else:
            sys.stdout.write(line + "\n")

    monkeypatch.setattr(metrics, "SINK", sink)
    yield lines
    for line in lines.raw:
        check_line(line)
