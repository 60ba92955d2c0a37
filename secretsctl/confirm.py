"""Confirmation before a write: a prompt on a terminal unless ``--yes``; no terminal: ``--yes`` or refuse."""

from __future__ import annotations

import sys

import click

from .errors import Aborted, Refused


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def confirm(question: str, yes: bool, *, type_to_confirm: str | None = None) -> None:
    """Return when the operator agreed; raise :class:`Refused` (exit 1) or :class:`Aborted` (exit 5).

    ``type_to_confirm``: the operator must type this text (e.g. the secret's name) instead of y/N.
    """
    if yes:
        return
    if not stdin_is_terminal():
        raise Refused(f"{question.rstrip('?')}: no terminal to confirm on; pass --yes to proceed")
    try:
        if type_to_confirm is not None:
            typed = click.prompt(f"{question} Type {type_to_confirm!r} to confirm", err=True, default="")
            if typed != type_to_confirm:
                raise Aborted("the text typed did not match; nothing was changed")
            return
        if not click.confirm(question, default=False, err=True):
            raise Aborted()
    except click.Abort:
        raise Aborted() from None
