"""The ``secretsctl`` command: the click group, global options, error handling, completion.

Exit codes (``errors.py``): 0 success / no difference / no finding; 1 error or refused; 2 usage error;
3 differences found (``secret diff``); 4 health findings (``status --fail-on``); 5 aborted at a prompt.
"""

from __future__ import annotations

import importlib
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
    "secretsctl.params_cmd",
    "secretsctl.replicas_cmd",
    "secretsctl.audit_cmd",
)


def client_error_message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    service = exc.operation_name
    return f"{service}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")


class Group(click.Group):
    """Turns AWS errors into one clear line and exit 1 (never a traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClientError as exc:
            raise CliError(client_error_message(exc)) from None
        except BotoCoreError as exc:
            raise CliError(f"{type(exc).__name__}: {exc}") from None


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
) -> None:
    """Operate AWS Secrets Manager secrets and their rotation. Values are masked unless --reveal."""
    if expect_account is not None and not (expect_account.isdigit() and len(expect_account) == 12):
        raise click.BadParameter("must be a 12-digit AWS account id", param_hint="--expect-account")
    ctx.obj = App(
        aws=AwsSession(
            region=region, profile=profile, endpoint_url=endpoint_url, expect_account=expect_account
        ),
        out=Output(fmt),
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
