"""Secret values in and out: read from a file or stdin (never argv, never a temp file), validate with
the rotation function's own parser, compare two versions key by key (masked)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import click

from rotation_handlers.errors import InvalidSecretError
from rotation_handlers.secret import parse_secret

from .errors import CliError
from .output import Masked, mask_field, parse_fields

#: A JSON object with one of these keys is treated as a database secret and validated as one.
DB_MARKERS = ("engine", "masterarn")


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def read_value(path: str, *, strip_newline: bool = False) -> str:
    """The value in ``path`` (``-`` for stdin) exactly as stored there. Never echoed anywhere.

    On a terminal, ``-`` prompts without echo. Trailing newlines are kept unless ``strip_newline``
    (a newline at the end of a password is a different password); :func:`newline_warning` says so."""
    try:
        if path == "-" and stdin_is_terminal():
            raw = click.prompt("Value (not echoed)", hide_input=True, err=True)
        elif path == "-":
            raw = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", newline="") as f:
                raw = f.read()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text (binary secrets are not supported)") from None
    value = raw.rstrip("\r\n") if strip_newline else raw
    if not value.strip():
        raise CliError(f"{'stdin' if path == '-' else path} is empty: nothing to store")
    return value


def newline_warning(value: str) -> str | None:
    """A warning when a text value ends with a newline that will be stored (JSON ignores it)."""
    if value.endswith(("\n", "\r")) and parse_fields(value) is None:
        return "the value ends with a newline, which is stored as part of it (--strip-newline removes it)"
    return None


def check_json(value: str, *, text: bool, was_json: bool = False) -> None:
    """Refuse a value that looks like JSON but is not valid JSON, or a non-JSON value replacing a JSON
    object, unless ``text`` (``--text``) says the value is meant as text."""
    if text:
        return
    stripped = value.strip()
    try:
        json.loads(stripped)
        return
    except ValueError as exc:
        problem = f"{exc.msg} at line {exc.lineno} column {exc.colno}"  # type: ignore[attr-defined]
    if stripped[:1] in "{[":
        raise CliError(f"the value is not valid JSON ({problem}); pass --text to store it as text")
    if was_json:
        raise CliError(
            f"the secret holds a JSON object and the new value is not JSON ({problem}); "
            "pass --text to store it as text"
        )


def is_db_secret(fields: dict[str, Any] | None) -> bool:
    return fields is not None and any(k in fields for k in DB_MARKERS)


def validate(value: str, must_be_db: bool = False) -> str | None:
    """Validate a database secret with ``rotation_handlers.secret`` (same rules, same messages).

    Returns the strategy (``single``/``alternating``) for a DB secret, ``None`` for any other secret.
    ``must_be_db``: the secret being updated is a DB secret, so the new value must be one too.
    """
    fields = parse_fields(value)
    if not (must_be_db or is_db_secret(fields)):
        return None
    try:
        parsed = parse_secret(value, "new")
    except InvalidSecretError as exc:
        raise CliError(str(exc)) from None
    return "alternating" if parsed.masterarn else "single"


def strategy_of(secret_string: str | None) -> str | None:
    """single / alternating from the secret's shape (``masterarn``), ``None`` for a non-DB secret."""
    fields = parse_fields(secret_string)
    if fields is None or not (is_db_secret(fields) or {"username", "password"} <= fields.keys()):
        return None
    return "alternating" if fields.get("masterarn") else "single"


@dataclass(frozen=True)
class KeyChange:
    key: str
    change: str  # added / removed / changed / unchanged
    old: Any
    new: Any


def diff(old: str | bytes | None, new: str | bytes | None, reveal: bool) -> list[KeyChange]:
    """Key by key for JSON objects (one pseudo-key ``(value)`` otherwise, e.g. a binary secret);
    values masked unless reveal (revealed bytes are shown as hex)."""
    a = parse_fields(old) if isinstance(old, str) else None
    b = parse_fields(new) if isinstance(new, str) else None
    if a is None or b is None:
        a = {"(value)": old} if old is not None else {}
        b = {"(value)": new} if new is not None else {}
    changes = []
    for key in list(a) + [k for k in b if k not in a]:
        if key not in b:
            kind = "removed"
        elif key not in a:
            kind = "added"
        else:
            kind = "unchanged" if a[key] == b[key] else "changed"
        shown_old = _shown(mask_field(key, a[key], reveal)) if key in a else None
        shown_new = _shown(mask_field(key, b[key], reveal)) if key in b else None
        changes.append(KeyChange(key, kind, shown_old, shown_new))
    return changes


def _shown(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def differs(changes: list[KeyChange]) -> bool:
    return any(c.change != "unchanged" for c in changes)


def describe_change(c: KeyChange) -> str:
    def show(v: Any) -> str:
        return str(v) if isinstance(v, Masked) else json.dumps(v)

    if c.change == "added":
        return f"+ {c.key}: {show(c.new)}"
    if c.change == "removed":
        return f"- {c.key}: {show(c.old)}"
    if c.change == "changed":
        return f"~ {c.key}: {show(c.old)} -> {show(c.new)}"
    return f"  {c.key}"
