"""What the CLI prints: masked values, rich tables, JSON with a ``schemaVersion``.

A masked value shows its length only, in tables (``<masked: 24 chars>``) and in JSON
(``{"masked": true, "length": 24}``). The non-secret connection keys of the documented database
secret format are shown as they are.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

SCHEMA_VERSION = 1
#: Keys of the AWS database secret format that are not secret (shown without --reveal).
NON_SECRET_KEYS = frozenset({"engine", "host", "port", "username", "dbname", "ssl", "masterarn"})
FORMATS = ("table", "json")


@dataclass(frozen=True)
class Masked:
    """A value that is not shown; only its length is."""

    length: int

    def to_json(self) -> dict[str, Any]:
        return {"masked": True, "length": self.length}

    def __str__(self) -> str:
        return f"<masked: {self.length} chars>"


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes) else len(json.dumps(value))


def parse_fields(secret_string: str | None) -> dict[str, Any] | None:
    """The secret's JSON object, or ``None`` when the value is not a JSON object."""
    if secret_string is None:
        return None
    try:
        data = json.loads(secret_string)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def mask_field(key: str, value: Any, reveal: bool) -> Any:
    if reveal:
        return value
    if key in NON_SECRET_KEYS and (value is None or isinstance(value, str | int | float | bool)):
        return value
    return Masked(_length(value))


def view_value(secret_string: str | None, secret_binary: bytes | None, reveal: bool) -> Any:
    """A secret value for display: a dict of (masked) fields, or one (masked) value."""
    fields = parse_fields(secret_string)
    if fields is not None:
        return {k: mask_field(k, v, reveal) for k, v in fields.items()}
    if secret_string is not None:
        return secret_string if reveal else Masked(len(secret_string))
    if secret_binary is not None:
        # Bytes are never decoded as text (that re-encodes them): revealed as base64, exact with get --raw.
        return "base64:" + base64.b64encode(secret_binary).decode() if reveal else Masked(len(secret_binary))
    return None


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Masked):
        return value.to_json()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def text(value: Any) -> str:
    """One cell of a table."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(to_jsonable(value))
    return str(value)


class Output:
    """Prints tables (rich) or JSON documents to stdout; notes and warnings go to stderr."""

    def __init__(self, fmt: str = "table", *, quiet: bool = False, color: bool = True) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"output format must be one of {FORMATS}")
        self.format = fmt
        self.quiet = quiet
        terminal = sys.stdout.isatty()
        #: Off a terminal (a pipe, a file) tables are plain tab-separated columns, for cut/awk/grep.
        self.plain = not terminal
        # Off a terminal, never wrap a cell: scripts and tests read whole values.
        # No file: rich writes to whatever sys.stdout is at print time.
        self.console = Console(
            width=None if terminal else 4000,
            highlight=False,
            # Cells are data, never markup: "[x]" stays as typed and ":secret:" in an ARN is no emoji.
            markup=False,
            emoji=False,
            soft_wrap=not terminal,
            # https://no-color.org: NO_COLOR set (to anything non-empty) means no colour.
            no_color=not color or bool(os.environ.get("NO_COLOR")),
        )

    @property
    def json(self) -> bool:
        return self.format == "json"

    def document(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"schemaVersion": SCHEMA_VERSION, "kind": kind, **to_jsonable(data)}

    def emit(self, kind: str, data: dict[str, Any], render: Callable[[], None]) -> None:
        """JSON: one document ``{"schemaVersion", "kind", ...data}``; table: ``render()``."""
        if self.json:
            click.echo(json.dumps(self.document(kind, data), indent=2, sort_keys=False))
        else:
            render()

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
        if self.plain:
            if title:
                click.echo(title)
            for cells in [list(columns), *([text(c) for c in row] for row in rows)]:
                click.echo("\t".join(str(c).replace("\t", " ").replace("\n", " ") for c in cells))
            return
        table = Table(title=title, show_lines=False, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(text(cell) for cell in row))
        self.console.print(table)

    def line(self, message: str = "") -> None:
        """Plain text to stdout (table mode only)."""
        if not self.json:
            click.echo(message)

    def note(self, message: str) -> None:
        """Information on stderr, left out with --quiet."""
        if not self.quiet:
            click.echo(message, err=True)

    @staticmethod
    def warn(message: str) -> None:
        click.echo(f"secretsctl: warning: {message}", err=True)
