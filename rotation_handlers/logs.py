"""Structured logging: one JSON object per line, never a secret value.

Every module logs through :func:`get_logger` and :func:`log`. Fields are passed as
keyword arguments; values go through :func:`redact` so that a password that found
its way into a driver error or an exception message never reaches the log.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

_ROOT = "rotation_handlers"
_secrets_lock = threading.Lock()
# Insertion-ordered and bounded, so a long-lived Lambda container does not grow without limit.
_known_secrets: dict[str, None] = {}
_MAX_SECRETS = 4096


def register_secret(*values: str | None) -> None:
    """Remember values that must never be printed (passwords). Empty/short values are ignored."""
    with _secrets_lock:
        for value in values:
            if isinstance(value, str) and len(value) >= 4:
                _known_secrets.pop(value, None)
                _known_secrets[value] = None
                while len(_known_secrets) > _MAX_SECRETS:
                    _known_secrets.pop(next(iter(_known_secrets)))


def forget_secrets() -> None:
    with _secrets_lock:
        _known_secrets.clear()


def redact(text: str, extra: Iterable[str | None] = ()) -> str:
    """Replace every registered secret (and ``extra``) in ``text`` with ``***``."""
    with _secrets_lock:
        values = set(_known_secrets)
    values.update(v for v in extra if isinstance(v, str) and len(v) >= 4)
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, "***")
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_scrub(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            payload["error_type"] = type(exc).__name__
            payload["error"] = str(exc)
        # Scrub before encoding (JSON escaping would hide a password with quotes or backslashes)
        # and once more after, for anything ``default=str`` turned into text.
        return redact(json.dumps(_scrub(payload), default=lambda o: redact(str(o))))


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time (Lambda, a terminal, a test capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_root() -> logging.Logger:
    root = logging.getLogger(_ROOT)
    if not getattr(root, "_configured", False):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        # Lambda's "ApplicationLogLevel" arrives as AWS_LAMBDA_LOG_LEVEL; INFO otherwise.
        level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
        root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
        # Our lines are complete JSON objects already: do not hand them to the root logger too
        # (with Lambda's JSON log format that would print every line twice).
        root.propagate = False
        root._configured = True  # type: ignore[attr-defined]
    return root


def get_logger(name: str) -> logging.Logger:
    _configure_root()
    if not name.startswith(_ROOT):
        name = f"{_ROOT}.{name}"
    return logging.getLogger(name)


def log(logger: logging.Logger, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``message`` with structured ``fields`` (each becomes a JSON key)."""
    logger.log(level, message, extra={"fields": fields})
