"""Exit codes and the errors that carry them (documented in the README, "Command line")."""

from __future__ import annotations

import click

EXIT_OK = 0  # success / no difference / no finding
EXIT_ERROR = 1  # error or refused
EXIT_USAGE = 2  # usage error (click's own code)
EXIT_DIFFERENT = 3  # differences: `secret diff`, `param diff`, `param plan`, `replicas check`
EXIT_FINDINGS = 4  # `status --fail-on`: a listed finding is present
EXIT_ABORTED = 5  # the operator said no at a prompt


class CliError(click.ClickException):
    """An error or a refusal: the message names the problem, never a secret value. Exit 1."""

    exit_code = EXIT_ERROR

    def show(self, file: object = None) -> None:
        click.echo(f"secretsctl: error: {self.format_message()}", err=True)


class Refused(CliError):
    """The command will not act (wrong account, no terminal and no --yes, unsafe state)."""

    def show(self, file: object = None) -> None:
        click.echo(f"secretsctl: refused: {self.format_message()}", err=True)


class Aborted(CliError):
    """The operator answered no (or Ctrl-C/EOF) at a confirmation prompt. Exit 5."""

    exit_code = EXIT_ABORTED

    def __init__(self, message: str = "aborted at the prompt; nothing was changed") -> None:
        super().__init__(message)

    def show(self, file: object = None) -> None:
        click.echo(f"secretsctl: {self.format_message()}", err=True)


class Exit(click.exceptions.Exit):
    """A finished command that reports a result through its exit code (3 or 4), not an error."""
