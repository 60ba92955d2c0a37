"""Terminal output for the local run: stage headers, a spinner (TTY only) and plain tables.

Everything printed goes through :class:`Console`, which also keeps a copy of the text so that
``--check`` can scan it for passwords afterwards.
"""

from __future__ import annotations

import io
import itertools
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

_FRAMES = "|/-\\"


class Console:
    def __init__(self, stream: TextIO | None = None, color: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.color = self.tty if color is None else color
        self.transcript = io.StringIO()
        self._lock = threading.Lock()
        self._status = ""  # what the spinner shows after its frame
        self._stage = 0

    # -- plain output ------------------------------------------------------------------------
    def _style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def print(self, text: str = "") -> None:
        with self._lock:
            self._clear_line()
            self.stream.write(text + "\n")
            self.stream.flush()
            self.transcript.write(text + "\n")

    def stage(self, title: str) -> None:
        self._stage += 1
        self.print()
        self.print(self._style(f"[{self._stage}] {title}", "1"))

    def ok(self, text: str) -> None:
        self.print("  " + self._style("ok", "32") + "   " + text)

    def note(self, text: str) -> None:
        self.print("  " + self._style("--", "2") + "   " + text)

    def bad(self, text: str) -> None:
        self.print("  " + self._style("FAIL", "31;1") + " " + text)

    def mark(self, good: bool) -> str:
        return self._style("ok", "32") if good else self._style("MISMATCH", "31;1")

    # -- progress ----------------------------------------------------------------------------
    def _clear_line(self) -> None:
        if self.tty and self._status:
            self.stream.write("\r\033[K")

    @contextmanager
    def spinner(self, label: str) -> Iterator[Spinner]:
        """Show ``label`` with a spinner while the block runs (TTY only); then one ``ok`` line."""
        spin = Spinner(self, label)
        started = time.perf_counter()
        stop = threading.Event()
        thread: threading.Thread | None = None
        if self.tty:
            thread = threading.Thread(target=self._spin, args=(spin, stop), daemon=True)
            thread.start()
        try:
            yield spin
        finally:
            stop.set()
            if thread is not None:
                thread.join()
            with self._lock:
                self._clear_line()
                self._status = ""
        self.ok(f"{spin.done or label} ({time.perf_counter() - started:.1f} s)")

    def _spin(self, spin: Spinner, stop: threading.Event) -> None:
        started = time.perf_counter()
        for frame in itertools.cycle(_FRAMES):
            if stop.wait(0.1):
                return
            with self._lock:
                self._status = f"  {frame}    {spin.text} ({time.perf_counter() - started:.0f} s)"
                self.stream.write("\r\033[K" + self._status[: self._width()])
                self.stream.flush()

    @staticmethod
    def _width() -> int:
        import shutil

        return max(20, shutil.get_terminal_size((100, 20)).columns - 1)

    # -- tables ------------------------------------------------------------------------------
    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], indent: int = 2) -> None:
        for line in format_table(headers, rows):
            self.print(" " * indent + line)


class Spinner:
    """Handle for a running spinner: ``update`` changes the text, ``done`` the final line."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.text = label
        self.done: str | None = None

    def update(self, text: str) -> None:
        self.text = text


def _visible(text: str) -> int:
    """Length without ANSI colour codes."""
    out, skip = 0, False
    for ch in text:
        if ch == "\033":
            skip = True
        elif skip and ch == "m":
            skip = False
        elif not skip:
            out += 1
    return out


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [_visible(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], _visible(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [cell + " " * (widths[i] - _visible(cell)) for i, cell in enumerate(cells)]
        return "  ".join(parts).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]
