"""The database engine interface: one module per engine behind :class:`Engine`.

An engine knows how to open a verified-TLS connection with a set of credentials,
run a check statement and change the logged-in user's own password. Strategies
only talk to this interface, never to a driver.
"""

from __future__ import annotations

import os
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ConfigurationError, DatabaseError, LoginRejected
from ..logs import redact, register_secret

DEFAULT_CONNECT_TIMEOUT = 5


@dataclass(frozen=True)
class Credentials:
    """Where and as whom to log in. ``repr`` never shows the password."""

    host: str
    port: int
    username: str
    password: str
    dbname: str | None
    tls: bool

    def __post_init__(self) -> None:
        register_secret(self.password)

    def __repr__(self) -> str:
        return f"Credentials({self.username}@{self.host}:{self.port}, tls={self.tls})"

    __str__ = __repr__

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def connect_timeout() -> int:
    raw = os.environ.get("DB_CONNECT_TIMEOUT", str(DEFAULT_CONNECT_TIMEOUT))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"DB_CONNECT_TIMEOUT must be a whole number of seconds, got {raw!r}"
        ) from None
    if not 2 <= value <= 60:
        raise ConfigurationError(f"DB_CONNECT_TIMEOUT must be between 2 and 60 seconds, got {value}")
    return value


_checked_bundles: set[tuple[str, int, int]] = set()


def ca_bundle() -> str | None:
    """Path of the CA bundle from ``DB_CA_BUNDLE``, checked by loading it as TLS trust anchors.

    A missing, empty or unreadable file, or one with no PEM certificate in it, is a
    configuration error naming the variable (createSecret reports it before writing).
    A file is loaded once per container and again only when it changes.
    """
    path = os.environ.get("DB_CA_BUNDLE") or None
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        info = None
    if info is None or not os.path.isfile(path):
        raise ConfigurationError(f"DB_CA_BUNDLE points to {path!r}, which is not a readable file")
    key = (path, info.st_mtime_ns, info.st_size)
    if key not in _checked_bundles:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
        except (ssl.SSLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise ConfigurationError(
                f"DB_CA_BUNDLE points to {path!r}, which holds no usable CA certificate "
                f"(expected PEM certificates; {reason})"
            ) from None
        _checked_bundles.add(key)
    return path


def tls_context(bundle: str | None) -> ssl.SSLContext:
    """TLS 1.2+; with a bundle, verify the certificate and host name, else encrypt only."""
    if bundle:
        ctx = ssl.create_default_context(cafile=bundle)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def describe_driver_error(exc: BaseException, *passwords: str | None) -> str:
    """One line of the driver's own error text, with every known password removed."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(text, passwords)


StatementHook = Callable[[str, str], None]


class Engine(ABC):
    """A database engine family (MySQL-compatible or PostgreSQL)."""

    #: Engine family name used in messages and metrics.
    family: ClassVar[str]
    default_port: ClassVar[int]
    #: Longest user name the server accepts.
    max_username_length: ClassVar[int]
    #: Characters left out of generated passwords unless EXCLUDE_CHARACTERS says otherwise.
    default_exclude_characters: ClassVar[str]

    #: The driver's base exception class (every statement error is one of these).
    driver_error: ClassVar[type[Exception]]

    #: Test and benchmark hook: called as ``hook(phase, label)`` with phase "before"/"after"
    #: around every statement and connection attempt. ``None`` in production.
    statement_hook: ClassVar[StatementHook | None] = None

    def __init__(self) -> None:
        #: Connection attempts and rejected logins made through this engine object.
        self.attempts = 0
        self.rejected = 0
        #: (lock, statement) seconds set by ``limit_waits`` (named in the error when one is hit).
        self.wait_limits: tuple[int, int] | None = None

    def _hook(self, phase: str, label: str) -> None:
        hook = Engine.statement_hook
        if hook is not None:
            hook(phase, label)

    def connect(self, creds: Credentials) -> Any:
        """Open a connection; raise LoginRejected or ConnectError with a redacted message."""
        self.attempts += 1
        try:
            return self._connect(creds)
        except LoginRejected:
            self.rejected += 1
            raise

    @abstractmethod
    def _connect(self, creds: Credentials) -> Any:
        """Driver-specific connect."""

    def execute(
        self,
        conn: Any,
        label: str,
        statement: Any,
        params: tuple[Any, ...] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> list[tuple[Any, ...]]:
        """Run one statement; errors come back as DatabaseError, ``secrets`` and known passwords removed."""
        self._hook("before", label)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                rows = list(cur.fetchall()) if cur.description else []
        except self.driver_error as exc:
            detail = describe_driver_error(exc, *secrets)
            raise DatabaseError(f"{label} failed: {self._limit_hit(exc)}{detail}", detail) from None
        self._hook("after", label)
        return rows

    def limit_waits(self, conn: Any, lock_seconds: int, statement_seconds: int) -> None:
        """Bound every later statement on ``conn``: a lock wait (``DB_LOCK_TIMEOUT``) and a run
        (``DB_STATEMENT_TIMEOUT``); the server cancels a statement that exceeds either."""
        self.execute(conn, "limit waits", *self._limit_statement(conn, lock_seconds, statement_seconds))
        self.wait_limits = (lock_seconds, statement_seconds)

    @abstractmethod
    def _limit_statement(self, conn: Any, lock_seconds: int, statement_seconds: int) -> tuple[Any, Any]:
        """The statement (and its parameters) that sets the session's lock and statement limits."""

    def wait_limit_kind(self, exc: BaseException) -> str | None:
        """``"lock"`` or ``"statement"`` when the server cancelled a statement at a limit, else None."""
        return None

    def _limit_hit(self, exc: BaseException) -> str:
        kind = self.wait_limit_kind(exc) if self.wait_limits else None
        if kind is None or self.wait_limits is None:
            return ""
        if kind == "lock":
            return (
                f"cancelled after waiting longer than DB_LOCK_TIMEOUT ({self.wait_limits[0]} s) for a lock "
                "another session holds; "
            )
        return f"cancelled after running longer than DB_STATEMENT_TIMEOUT ({self.wait_limits[1]} s); "

    @abstractmethod
    def login_identity(self, conn: Any) -> str:
        """Run a statement on ``conn`` and return the user the server authenticated (not a role
        the session acts as after login)."""

    @abstractmethod
    def set_own_password(self, conn: Any, creds: Credentials, new_password: str) -> dict[str, Any] | None:
        """Change the logged-in user's own password (``creds`` are the ones ``conn`` used).

        May return facts for the step's log line (e.g. which MySQL host entries changed).
        """

    def complete_own_password(self, conn: Any, creds: Credentials) -> dict[str, Any] | None:
        """The logged-in user's password already is ``creds.password`` where this connection
        logged in: make it so wherever else the same user logs in (MySQL host entries). Facts
        for the log line, or None."""
        return None

    def check_own_entries(self, conn: Any) -> dict[str, Any] | None:
        """testSecret: raise DatabaseError when the logged-in user provably has another password
        wherever else it logs in (MySQL host entries). Facts for the log line, or None."""
        return None

    def close(self, conn: Any) -> None:
        try:
            conn.close()
        except Exception:  # noqa: S110 - closing a broken connection is best effort
            pass

    def login_first(self, candidates: Sequence[tuple[str, Credentials]]) -> tuple[str, Any]:
        """Try ``candidates`` in order; return (label, connection) of the first that logs in.

        Only a rejected login moves on to the next candidate: an unreachable server or a
        TLS failure ends the search at once (another password would fail the same way).
        """
        rejected: list[str] = []
        for label, creds in candidates:
            try:
                return label, self.connect(creds)
            except LoginRejected as exc:
                rejected.append(exc.detail)
        labels = [label for label, _ in candidates]
        names = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]
        first = candidates[0][1]
        details = "; ".join(dict.fromkeys(rejected))
        raise LoginRejected(
            f"cannot log in to {first.where} as {first.username} with the {names} password: {details}",
            details,
        )
