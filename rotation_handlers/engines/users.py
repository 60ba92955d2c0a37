"""Admin-side user operations for the alternating-user strategy, one module per engine family.

The master connection creates the alternate user, makes its privileges equal to the
current user's and sets its password (``ensure_clone``). An alternate user that already
exists is taken over only when it is recognisably the application's other login (see
``ensure_clone``); anything else is refused before any change. The pending connection checks
in testSecret that the alternate user can do what the current one can
(``verify_pending``). ``privileges`` gives a comparable picture of one user's
privileges (used by the tests and by the MySQL self-check).

Every statement goes through the engine's ``execute`` so the statement hook sees it.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError
from .base import Engine

CLONE_SUFFIX = "_clone"
#: Opens another master connection to the named database (same server, same credentials).
Connector = Callable[[str], Any]
#: Asked only when an existing alternate login is neither marked as ours nor shaped like a clone:
#: the label of a version of this secret (AWSPREVIOUS first) naming that login, or None. It may
#: read Secrets Manager, so it is never called on the happy path.
Vouch = Callable[[], str | None]
#: How an error caused by a lock another session holds starts (the step is retried later).
LOCK_WAIT_PREFIX = "lock not available, will retry"
DEFAULT_LOCK_TIMEOUT = 5
DEFAULT_STATEMENT_TIMEOUT = 15


def _seconds(variable: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(variable, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{variable} must be a whole number of seconds, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{variable} must be between {low} and {high} seconds, got {value}")
    return value


def lock_timeout() -> int:
    """Longest wait of one master statement for a lock (``DB_LOCK_TIMEOUT``, seconds)."""
    return _seconds("DB_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT, 1, 60)


def statement_timeout() -> int:
    """Longest run of one master statement (``DB_STATEMENT_TIMEOUT``, seconds)."""
    return _seconds("DB_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT, 1, 300)


def pair_marker(username: str) -> str:
    """The comment on a role this function created or adopted as one of a login pair."""
    base = username[: -len(CLONE_SUFFIX)] if username.endswith(CLONE_SUFFIX) else username
    return f"secrets-rotation: alternating login pair {base} / {base}{CLONE_SUFFIX}"


# Engine family -> (module, class).
_ADMINS: dict[str, tuple[str, str]] = {
    "mysql": ("mysql_users", "MySQLUserAdmin"),
    "mariadb": ("mysql_users", "MySQLUserAdmin"),
    "postgres": ("postgres_users", "PostgresUserAdmin"),
}


def alternate_name(username: str) -> str:
    """``app`` alternates with ``app_clone``; a current ``app_clone`` alternates back to ``app``."""
    if username.endswith(CLONE_SUFFIX) and len(username) > len(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    return username + CLONE_SUFFIX


class UserAdmin(ABC):
    """User administration for one engine family."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def name_length(username: str) -> int:
        """The length the server checks against ``Engine.max_username_length``."""
        return len(username)

    @abstractmethod
    def ensure_clone(
        self,
        conn: Any,
        current_user: str,
        clone_user: str,
        password: str,
        connect: Connector | None = None,
        vouched: Vouch | None = None,
    ) -> dict[str, Any]:
        """On the master connection: make ``clone_user`` exist with ``current_user``'s privileges
        and ``password``. ``connect`` opens master connections to other databases when the
        engine needs them. Idempotent. Returns facts for the log line (no secrets).

        An existing ``clone_user`` is used only when it carries this function's marker, or has
        the shape of a clone (ours or AWS's alternating functions') with nothing the current
        user lacks, or ``vouched`` names a version of this secret holding it; otherwise
        DatabaseError names every problem and nothing is changed."""

    @abstractmethod
    def privileges(self, conn: Any, user: str) -> Any:
        """A comparable description of what ``user`` may do (no password material)."""

    @abstractmethod
    def verify_pending(self, conn: Any, pending_user: str, other_user: str) -> dict[str, Any]:
        """On the pending user's own connection: it can do what ``other_user`` can.

        Raises DatabaseError naming what is missing. Returns facts for the log line.
        """


def user_admin_for(engine: Engine) -> UserAdmin:
    module_name, class_name = _ADMINS[engine.family]
    module = importlib.import_module(f"{__package__}.{module_name}")
    return getattr(module, class_name)(engine)  # type: ignore[no-any-return]


__all__ = [
    "CLONE_SUFFIX",
    "LOCK_WAIT_PREFIX",
    "Connector",
    "UserAdmin",
    "Vouch",
    "alternate_name",
    "lock_timeout",
    "pair_marker",
    "statement_timeout",
    "user_admin_for",
]
