"""Error types raised by the rotation Lambda.

Every message names the problem and is safe to log: callers pass driver errors
through :func:`rotation_handlers.logs.redact` before building a message.
"""

from __future__ import annotations


class RotationError(Exception):
    """Base class: the rotation step failed; the message says why (never a password)."""


class InvalidEventError(RotationError):
    """The Lambda event is missing fields or carries malformed ones."""


class RotationStateError(RotationError):
    """The secret is not in a state this step can act on (rotation disabled, wrong token...)."""


class InvalidSecretError(RotationError):
    """The secret value is not usable (missing keys, unknown engine, bad port...)."""


class ConfigurationError(RotationError):
    """The Lambda's environment (password policy, CA bundle, pinned strategy) is invalid."""


class DatabaseError(RotationError):
    """A database operation failed for a reason other than a rejected password.

    ``detail`` is the driver's own error text with passwords removed.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


class ConnectError(DatabaseError):
    """The server could not be reached or the TLS handshake failed: another password won't help."""


class LoginRejected(DatabaseError):
    """The server rejected the credentials (wrong password, unknown user, TLS required)."""
