"""``secretsctl secret ...``: list, inspect, compare, export and change secrets."""

from __future__ import annotations

import click

from . import inventory
from .context import App, pass_app
from .output import Masked, text, view_value


@click.group()
def secret() -> None:
    """Secrets: ls, versions, get, diff, dump, create, update, delete, restore."""


@secret.command("ls")
@click.option("--filter", "text_filter", metavar="TEXT", help="Only secrets whose name contains TEXT.")
@pass_app
def ls(app: App, text_filter: str | None) -> None:
    """Every secret with its rotation state and health. Never a value."""
    sm = app.aws.client("secretsmanager")
    infos = inventory.list_all(sm, text_filter)
    rows = [
        {
            "name": i.name,
            "rotationEnabled": i.rotation_enabled,
            "lastRotated": i.last_rotated,
            "nextRotation": i.next_rotation,
        }
        for i in infos
    ]
    app.out.emit(
        "SecretList",
        {"secrets": rows},
        lambda: app.out.table(
            ["name", "rotation", "last rotated", "next rotation"],
            [[r["name"], r["rotationEnabled"], r["lastRotated"], r["nextRotation"]] for r in rows],
        ),
    )


@secret.command()
@click.argument("name")
@pass_app
def versions(app: App, name: str) -> None:
    """Version ids, staging labels and creation dates of a secret."""
    sm = app.aws.client("secretsmanager")
    listed = []
    for page in sm.get_paginator("list_secret_version_ids").paginate(SecretId=name):
        listed += [v for v in page.get("Versions", []) if v.get("VersionStages")]
    listed.sort(key=lambda v: v.get("CreatedDate") or 0, reverse=True)
    rows = [
        {"versionId": v["VersionId"], "stages": v.get("VersionStages", []), "created": v.get("CreatedDate")}
        for v in listed
    ]
    app.out.emit(
        "SecretVersions",
        {"name": name, "versions": rows},
        lambda: app.out.table(
            ["version id", "labels", "created"], [[r["versionId"], r["stages"], r["created"]] for r in rows]
        ),
    )


@secret.command()
@click.argument("name")
@click.option("--version", "version_ref", metavar="ID", help="A version id.")
@click.option("--stage", type=click.Choice(inventory.STAGES), help="A staging label (default AWSCURRENT).")
@click.option("--reveal", is_flag=True, help="Show values (masked by default).")
@click.option("--field", "field_name", metavar="KEY", help="One key of a JSON secret.")
@pass_app
def get(
    app: App, name: str, version_ref: str | None, stage: str | None, reveal: bool, field_name: str | None
) -> None:
    """A secret's value, masked unless --reveal. `--field KEY --reveal` prints the raw value for piping."""
    if version_ref and stage:
        raise click.UsageError("give --version or --stage, not both")
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    version = inventory.resolve_version(info, version_ref or stage or "AWSCURRENT")
    secret_string, secret_binary = inventory.get_value(sm, info.arn, version)
    value = view_value(secret_string, secret_binary, reveal)
    if field_name is not None:
        if not isinstance(value, dict):
            raise click.UsageError(f"--field: the value of {name} is not a JSON object")
        if field_name not in value:
            raise click.UsageError(f"--field: {name} has no key {field_name!r} (keys: {', '.join(value)})")
        value = value[field_name]
        if not app.out.json:
            raw = value if isinstance(value, Masked | str) else text(value)
            click.echo(str(raw))
            return
    labels = info.versions.get(version, [])
    app.out.emit(
        "SecretValue",
        {"name": info.name, "versionId": version, "stages": labels, "field": field_name, "value": value},
        lambda: _render_value(app, info.name, version, labels, value),
    )


def _render_value(app: App, name: str, version: str, labels: list[str], value: object) -> None:
    app.out.line(f"{name}  version {version}  ({', '.join(labels) or 'no label'})")
    if isinstance(value, dict):
        app.out.table(["key", "value"], [[k, v] for k, v in value.items()])
    else:
        app.out.line(text(value))


def register(group: click.Group) -> None:
    group.add_command(secret)
