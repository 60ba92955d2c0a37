"""The ``secretsctl`` command: the click group, global options, error handling, completion.

Exit codes (``errors.py``): 0 success / no difference / no finding; 1 error or refused; 2 usage error;
3 differences found (``secret diff``); 4 health findings (``status --fail-on``); 5 aborted at a prompt.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from click.shell_completion import get_completion_class

from .context import App
from .errors import CliError
from .output import FORMATS, Output
from .session import AwsSession

#: Command groups, one module each; every module has ``register(group)``.
COMMAND_MODULES = (
    "secretsctl.secrets",
    "secretsctl.rotation",
    "secretsctl.rotation_schedule",
    "secretsctl.params_cmd",
    "secretsctl.replicas_cmd",
    "secretsctl.audit_cmd",
    "secretsctl.env_cmd",
)


def client_error_message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    service = exc.operation_name
    return f"{service}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")


#: Global options and whether each takes a value; accepted anywhere before ``--``, as the AWS CLI does.
GLOBAL_OPTIONS: dict[str, bool] = {
    "--region": True,
    "--profile": True,
    "--endpoint-url": True,
    "-o": True,
    "--output": True,
    "--expect-account": True,
    "--yes": False,
    "-y": False,
    "--debug": False,
    "--quiet": False,
    "-q": False,
    "--no-color": False,
}


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the subcommand to the front (``secret ls -o json`` works).

    Stops at ``--`` (what follows belongs to another program, e.g. ``exec -- CMD``)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name, eq, _ = arg.partition("=")
        takes_value = GLOBAL_OPTIONS.get(name if eq else arg)
        if takes_value is None or (eq and not takes_value):
            rest.append(arg)
        elif takes_value and not eq and i + 1 < len(args):
            front += [arg, args[i + 1]]
            i += 1
        else:
            front.append(arg)
        i += 1
    return front + rest


def _debug_requested(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug"))


class Group(click.Group):
    """Turns every failure into one line naming it and exit 1; ``--debug`` shows the traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            args = hoist_global_options(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`secretsctl status | head`): not an error (click would exit 1).
            # stdout now points at /dev/null so the interpreter's final flush does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(0) from None
        except ClientError as exc:
            if _debug_requested(ctx):
                raise
            raise CliError(client_error_message(exc)) from None
        except BotoCoreError as exc:
            if _debug_requested(ctx):
                raise
            raise CliError(f"{type(exc).__name__}: {exc}") from None
        except OSError as exc:
            if _debug_requested(ctx):
                raise
            where = f" {exc.filename}" if exc.filename else ""
            raise CliError(f"{exc.strerror or type(exc).__name__}:{where}") from None
        except Exception as exc:
            if _debug_requested(ctx):
                raise
            raise CliError(f"unexpected {type(exc).__name__} (run with --debug for the trace)") from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--region", help="AWS region (default: boto3's configuration, e.g. AWS_REGION).")
@click.option("--profile", help="AWS profile (default: boto3's configuration, e.g. AWS_PROFILE).")
@click.option(
    "--endpoint-url",
    help="AWS endpoint, e.g. an emulated AWS (default: boto3's configuration, e.g. AWS_ENDPOINT_URL).",
)
@click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people, json (with schemaVersion) for scripts.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before writing (needed without a terminal).")
@click.option(
    "--expect-account", metavar="ID", help="Refuse to act unless the credentials are for this account."
)
@click.option("--debug", is_flag=True, help="On an error, show the Python traceback too.")
@click.option("--quiet", "-q", is_flag=True, help="Print only results and errors (no notes on stderr).")
@click.option("--no-color", is_flag=True, help="No colour (also when NO_COLOR is set).")
@click.version_option(package_name="secrets-rotation-service", prog_name="secretsctl")
@click.pass_context
def cli(
    ctx: click.Context,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    fmt: str,
    yes: bool,
    expect_account: str | None,
    debug: bool,
    quiet: bool,
    no_color: bool,
) -> None:
    """Operate AWS Secrets Manager secrets and their rotation. Values are masked unless --reveal.

    Global options are accepted anywhere before `--`. Exit codes: 0 success, 1 error or refused,
    2 usage error, 3 differences found, 4 health findings (status --fail-on), 5 aborted at a prompt."""
    if expect_account is not None and not (expect_account.isdigit() and len(expect_account) == 12):
        raise click.BadParameter("must be a 12-digit AWS account id", param_hint="--expect-account")
    ctx.obj = App(
        aws=AwsSession(
            region=region, profile=profile, endpoint_url=endpoint_url, expect_account=expect_account
        ),
        out=Output(fmt, quiet=quiet, color=not no_color),
        yes=yes,
    )


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script, e.g. `eval "$(secretsctl completion bash)"`."""
    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click ships all three
        raise CliError(f"no completion for {shell}")
    click.echo(cls(cli, {}, "secretsctl", "_SECRETSCTL_COMPLETE").source())


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(cli)


_register()


def main() -> None:
    cli(prog_name="secretsctl")


if __name__ == "__main__":
    main()
