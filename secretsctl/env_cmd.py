"""``secretsctl exec|export|import``: secrets and parameters as environment variables and files.

Values travel in the environment of the child process (``exec``) or on stdout (``export``), never in
an argument list, so they are not visible in ``ps`` or a process title.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from typing import Any

import click

from . import values
from .completion import secret_names
from .context import App, pass_app
from .errors import CliError
from .output import parse_fields

ENV_FORMATS = ("dotenv", "json")


def env_name(key: str) -> str:
    """A key as an environment variable name: ``db-password`` -> ``DB_PASSWORD``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key).upper()
    return "_" + name if name[:1].isdigit() else name or "_"


def _secret_vars(sm: Any, name: str) -> dict[str, str]:
    got = sm.get_secret_value(SecretId=name)
    text = got.get("SecretString")
    if text is None:
        raise CliError(f"{name} is a binary secret; it cannot be an environment variable")
    fields = parse_fields(text)
    if fields is None:
        return {env_name(name.rsplit("/", 1)[-1]): text}
    return {env_name(k): v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}


def _param_vars(ssm: Any, path: str) -> dict[str, str]:
    found: dict[str, str] = {}
    if not path.endswith("/"):
        got = ssm.get_parameter(Name=path, WithDecryption=True)["Parameter"]
        return {env_name(got["Name"].rsplit("/", 1)[-1]): got["Value"]}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(
        Path=path, Recursive=False, WithDecryption=True
    ):
        for p in page.get("Parameters", []):
            found[env_name(p["Name"].rsplit("/", 1)[-1])] = p["Value"]
    return found


def collect(app: App, secrets: tuple[str, ...], params: tuple[str, ...]) -> dict[str, str]:
    """Variables from each secret (a JSON secret gives one per key) and parameter (a path ending in
    ``/`` gives one per parameter directly under it), in the order given; a later one wins."""
    if not secrets and not params:
        raise click.UsageError("name at least one secret or --param")
    out: dict[str, str] = {}
    if secrets:
        sm = app.aws.client("secretsmanager")
        for name in secrets:
            out.update(_secret_vars(sm, name))
    if params:
        ssm = app.aws.client("ssm")
        for path in params:
            out.update(_param_vars(ssm, path))
    return out


PARAM_OPTION = click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME|PATH/",
    help="A parameter, or every parameter directly under PATH/ (repeatable).",
)


class _CommandAfterDashes(click.Command):
    """Everything after the first ``--`` is the command to run, kept apart from the names."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["exec_command"] = args[cut + 1 :]
            args = args[:cut]
        return super().parse_args(ctx, args)


@click.command(cls=_CommandAfterDashes)
@click.argument("secrets", nargs=-1, shell_complete=secret_names)
@PARAM_OPTION
@click.option("--pristine", is_flag=True, help="Start from an empty environment (PATH kept).")
@pass_app
def exec_cmd(app: App, secrets: tuple[str, ...], params: tuple[str, ...], pristine: bool) -> None:
    """Run `-- COMMAND ARGS...` with secrets and parameters as environment variables; exit with its code.

    A JSON secret gives one variable per key (upper-cased), a text secret one named after its last
    path segment. Values are in the child's environment only, never in its arguments or process title."""
    command = click.get_current_context().meta.get("exec_command") or []
    if not command:
        raise click.UsageError("give the command after --, e.g. secretsctl exec app/db -- ./run.sh")
    env = collect(app, secrets, params)
    base = {"PATH": os.environ.get("PATH", "")} if pristine else dict(os.environ)
    try:
        done = subprocess.run(list(command), env={**base, **env}, check=False)  # noqa: S603
    except FileNotFoundError:
        raise CliError(f"command not found: {command[0]}") from None
    sys.exit(done.returncode)


@click.command("export")
@click.argument("secrets", nargs=-1, shell_complete=secret_names)
@PARAM_OPTION
@click.option("--format", "fmt", type=click.Choice(ENV_FORMATS), default="dotenv", show_default=True)
@pass_app
def export(app: App, secrets: tuple[str, ...], params: tuple[str, ...], fmt: str) -> None:
    """Print secrets and parameters as dotenv lines or one JSON object on stdout (values shown)."""
    env = collect(app, secrets, params)
    if fmt == "json":
        click.echo(json.dumps(env, indent=2))
    else:
        for key, value in env.items():
            click.echo(f"{key}={shlex.quote(value)}")


def parse_env_file(text: str, fmt: str) -> dict[str, str]:
    """A dotenv (KEY=VALUE, # comments, optional quotes and `export `) or JSON object file."""
    if fmt == "json":
        data = parse_fields(text)
        if data is None:
            raise CliError("the file is not a JSON object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise CliError(f"line {number}: not KEY=VALUE")  # the line itself may hold a value
        parts = shlex.split(value, comments=False) if value.strip() else [""]
        out[key.strip()] = " ".join(parts)
    return out


@click.command("import")
@click.argument("name", shell_complete=secret_names)
@click.option(
    "--from-file", "source", required=True, metavar="FILE", help="A dotenv or JSON file ('-': stdin)."
)
@click.option("--format", "fmt", type=click.Choice(ENV_FORMATS), default="dotenv", show_default=True)
@pass_app
def import_cmd(app: App, name: str, source: str, fmt: str) -> None:
    """Store a dotenv or JSON file's keys as the JSON secret NAME (created, or a new AWSCURRENT)."""
    fields = parse_env_file(values.read_value(source), fmt)
    value = json.dumps(fields)
    values.validate(value)
    sm = app.aws.client("secretsmanager")
    try:
        old = sm.get_secret_value(SecretId=name).get("SecretString")
    except sm.exceptions.ResourceNotFoundException:
        old = None
    if old is None:
        app.confirm_write(f"import {name}", f"Create {name} with {len(fields)} key(s)?")
        done = sm.create_secret(Name=name, SecretString=value, ClientRequestToken=str(uuid.uuid4()))
    else:
        changes = values.diff(old, value, reveal=False)
        if not values.differs(changes):
            app.out.note(f"{name}: the file equals AWSCURRENT; nothing to do")
            return
        for change in changes:
            if change.change != "unchanged":
                app.out.note(values.describe_change(change))
        app.confirm_write(f"import {name}", f"Store the file as the new AWSCURRENT of {name}?")
        done = sm.put_secret_value(SecretId=name, SecretString=value, ClientRequestToken=str(uuid.uuid4()))
    app.out.emit(
        "SecretImported",
        {"name": name, "versionId": done["VersionId"], "keys": sorted(fields)},
        lambda: app.out.line(f"{name}: version {done['VersionId']} ({len(fields)} keys)"),
    )


def register(group: click.Group) -> None:
    group.add_command(exec_cmd, "exec")
    group.add_command(export)
    group.add_command(import_cmd)
