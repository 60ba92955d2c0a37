"""``secretsctl param put|delete``: write or delete one parameter (value from a file or a hidden prompt)."""

from __future__ import annotations

import click

from . import values
from .completion import parameter_names
from .context import App, pass_app
from .errors import Refused

TYPES = ("SecureString", "String", "StringList")


@click.command("put")
@click.argument("name", shell_complete=parameter_names)
@click.option(
    "--from-file",
    "source",
    required=True,
    metavar="FILE",
    help="Read the value from FILE ('-' for stdin; on a terminal a prompt that does not echo).",
)
@click.option("--type", "ptype", type=click.Choice(TYPES), default="SecureString", show_default=True)
@click.option("--kms-key", metavar="KEY", help="KMS key for a SecureString (default: aws/ssm).")
@click.option("--description", help="The parameter's description.")
@click.option("--strip-newline", is_flag=True, help="Remove trailing newlines from the value.")
@pass_app
def put(
    app: App,
    name: str,
    source: str,
    ptype: str,
    kms_key: str | None,
    description: str | None,
    strip_newline: bool,
) -> None:
    """Create a parameter or store a new version of it. Parameter Store cannot change a type: a
    parameter of another type is refused (`param delete` it first)."""
    if not name.startswith("/"):
        raise click.BadParameter("a parameter name starts with '/'", param_hint="NAME")
    value = values.read_value(source, strip_newline=strip_newline)
    ssm = app.aws.client("ssm")
    existing = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}]).get(
        "Parameters", []
    )
    if existing and existing[0]["Type"] != ptype:
        raise Refused(
            f"{name} is a {existing[0]['Type']}, not a {ptype}; Parameter Store cannot change a type: "
            f"`secretsctl param delete {name}` first"
        )
    kwargs = {"Name": name, "Value": value, "Type": ptype, "Overwrite": bool(existing)}
    if description is not None:
        kwargs["Description"] = description
    if kms_key and ptype == "SecureString":
        kwargs["KeyId"] = kms_key
    verb = "overwrite" if existing else "create"
    app.confirm_write(f"param put {name}", f"{verb.capitalize()} {ptype} {name}?")
    version = ssm.put_parameter(**kwargs)["Version"]
    app.out.emit(
        "ParameterWritten",
        {"name": name, "type": ptype, "version": version},
        lambda: app.out.line(f"{name}: version {version}"),
    )


@click.command("delete")
@click.argument("name", shell_complete=parameter_names)
@pass_app
def delete(app: App, name: str) -> None:
    """Delete a parameter and all its versions (no recovery: type the name to confirm)."""
    ssm = app.aws.client("ssm")
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}]).get("Parameters")
    if not found:
        raise Refused(f"no parameter {name}")
    app.confirm_write(f"param delete {name}", f"Delete {name} and its history?", type_to_confirm=name)
    ssm.delete_parameter(Name=name)
    app.out.emit("ParameterDeleted", {"name": name}, lambda: app.out.line(f"deleted {name}"))


def register(group: click.Group) -> None:
    group.add_command(put)
    group.add_command(delete)
