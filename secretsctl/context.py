"""The object every command gets (``@pass_app``): AWS session, output, ``--yes``."""

from __future__ import annotations

from dataclasses import dataclass

import click

from .confirm import confirm
from .output import Output
from .session import AwsSession


@dataclass
class App:
    """What every command gets: the AWS session, the output, and ``--yes``."""

    aws: AwsSession
    out: Output
    yes: bool

    def confirm_write(self, action: str, question: str, *, type_to_confirm: str | None = None) -> None:
        """The banner on stderr, then confirmation (prompt, or --yes, or refuse without a terminal)."""
        self.aws.banner(action)
        confirm(question, self.yes, type_to_confirm=type_to_confirm)


pass_app = click.make_pass_decorator(App)
