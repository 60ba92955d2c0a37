"""The database secret: AWS's documented JSON structure, parsed and validated.

``{"engine", "host", "port", "username", "password", "dbname", "ssl", "masterarn", ...}``.
Keys we do not know are carried over unchanged by every rotation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .engines import DEFAULT_PORTS, ENGINES, Credentials
from .errors import InvalidSecretError
from .logs import register_secret

REQUIRED_KEYS = ("engine", "host", "username", "password")
_ASCII_DIGITS = re.compile(r"[0-9]{1,5}")


def shape(value: Any) -> str:
    """What kind of JSON value ``value`` is, for error messages that must not quote it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _is_text(value: str) -> bool:
    """False for a string JSON allowed but no driver can send (a lone ``\\ud800`` escape)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_port(value: Any) -> tuple[int | None, str]:
    """(port, "") for an int from 1 to 65535 or a string of ASCII digits; else (None, what it is).

    ``str.isdigit`` also accepts full-width, Arabic-Indic and superscript digits, which ``int``
    either converts (a port nobody meant) or rejects with a ValueError: only ``0-9`` count.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _ASCII_DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    elif isinstance(value, str):
        return None, "a string that is not one"
    else:
        return None, shape(value)
    if not 1 <= number <= 65535:
        return None, "a number out of range"
    return number, ""


def parse_bool(value: Any) -> bool | None:
    """AWS accepts ``true``/``false`` as booleans or strings; ``None`` when not a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


@dataclass(frozen=True)
class DbSecret:
    """A validated database secret. ``data`` is the full JSON object, other keys included."""

    data: dict[str, Any] = field(repr=False)
    engine: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    dbname: str | None
    tls: bool
    masterarn: str | None

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.host, self.port, self.username, self.password, self.dbname, self.tls)

    def with_credentials(self, username: str, password: str) -> DbSecret:
        """A copy with another user name and password; every other key unchanged."""
        data = dict(self.data)
        data["username"] = username
        data["password"] = password
        return parse_secret(json.dumps(data), "new")

    def to_json(self) -> str:
        return json.dumps(self.data)


def parse_secret(secret_string: str | None, label: str) -> DbSecret:
    """Parse and validate a secret string, reporting every problem at once.

    ``label`` names the version in messages ("AWSCURRENT", "master secret", ...).
    Messages quote no field value except those that are not secret (``engine``; host, port,
    username and dbname are named elsewhere once valid): a bad value is described by its
    kind ("got an object"), since it may be key material (a node-style ``"ssl": {"key": ...}``).
    """
    if secret_string is None:
        raise InvalidSecretError(
            f"the {label} version has no SecretString (binary secrets are not supported)"
        )
    try:
        data = json.loads(secret_string)
    except ValueError as exc:
        raise InvalidSecretError(
            f"the {label} version is not valid JSON (line {exc.lineno}, column {exc.colno})"  # type: ignore[attr-defined]
        ) from None
    if not isinstance(data, dict):
        raise InvalidSecretError(f"the {label} version must be a JSON object, got {type(data).__name__}")
    password = data.get("password")
    register_secret(password if isinstance(password, str) else None)

    problems: list[str] = []
    for key in REQUIRED_KEYS:
        if key not in data or data[key] in (None, ""):
            problems.append(f"missing key '{key}'")
        elif not isinstance(data[key], str):
            problems.append(f"'{key}' must be a string, got {shape(data[key])}")
        elif not _is_text(data[key]):
            problems.append(f"'{key}' must be Unicode text, got a string with a lone surrogate escape")

    engine = data.get("engine")
    if isinstance(engine, str) and engine and engine not in ENGINES:
        problems.append(f"unknown engine {engine!r} (supported: {', '.join(ENGINES)})")

    port_value = data.get("port")
    port = DEFAULT_PORTS.get(engine, 0) if isinstance(engine, str) else 0
    if port_value is not None:
        parsed, got = parse_port(port_value)
        if parsed is None:
            problems.append(
                f"'port' must be a number from 1 to 65535 (an integer or a string of ASCII digits), got {got}"
            )
        else:
            port = parsed

    dbname = data.get("dbname")
    if dbname is not None and not isinstance(dbname, str):
        problems.append(f"'dbname' must be a string, got {shape(dbname)}")
    elif isinstance(dbname, str) and not _is_text(dbname):
        problems.append("'dbname' must be Unicode text, got a string with a lone surrogate escape")

    tls = True
    if "ssl" in data:
        parsed_ssl = parse_bool(data["ssl"])
        if parsed_ssl is None:
            got = "a string that is not one" if isinstance(data["ssl"], str) else shape(data["ssl"])
            problems.append(
                f'\'ssl\' must be true or false (a boolean or the string "true" or "false"), got {got}'
            )
        else:
            tls = parsed_ssl

    masterarn = data.get("masterarn")
    if masterarn is not None and (not isinstance(masterarn, str) or not masterarn):
        problems.append("'masterarn' must be a non-empty string (the ARN of the master secret)")

    if problems:
        raise InvalidSecretError(f"the {label} secret is invalid: " + "; ".join(problems))
    return DbSecret(
        data=data,
        engine=engine,  # type: ignore[arg-type]
        host=data["host"],
        port=port,
        username=data["username"],
        password=data["password"],
        dbname=dbname or None,
        tls=tls,
        masterarn=masterarn,
    )
