"""``secretsctl secret describe|tag|untag``: a secret's metadata (DescribeSecret, never a value) and tags."""

from __future__ import annotations

from typing import Any

import click

from .completion import secret_names
from .context import App, pass_app


def _describe_data(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": d["Name"],
        "arn": d["ARN"],
        "description": d.get("Description"),
        "kmsKeyId": d.get("KmsKeyId") or "aws/secretsmanager",
        "tags": {t["Key"]: t.get("Value", "") for t in d.get("Tags") or []},
        "replicas": [
            {"region": r.get("Region"), "status": r.get("Status"), "message": r.get("StatusMessage")}
            for r in d.get("ReplicationStatus") or []
        ],
        "rotationEnabled": bool(d.get("RotationEnabled")),
        "rotationFunction": d.get("RotationLambdaARN"),
        "rotationRules": d.get("RotationRules") or {},
        "lastRotated": d.get("LastRotatedDate"),
        "nextRotation": d.get("NextRotationDate"),
        "lastChanged": d.get("LastChangedDate"),
        # AWS records the date only (no time) of the last access:
        # https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html
        "lastAccessed": d.get("LastAccessedDate"),
        "created": d.get("CreatedDate"),
        "deletionDate": d.get("DeletedDate"),
        "versions": {v: list(s) for v, s in (d.get("VersionIdsToStages") or {}).items()},
    }


@click.command()
@click.argument("name", shell_complete=secret_names)
@pass_app
def describe(app: App, name: str) -> None:
    """Tags, KMS key, replica regions and status, rotation rules, last rotated and last accessed.

    Reads DescribeSecret only: never a value."""
    data = _describe_data(app.aws.client("secretsmanager").describe_secret(SecretId=name))

    def render() -> None:
        rows = [[k, v] for k, v in data.items() if k not in ("tags", "replicas", "versions")]
        app.out.table(["field", "value"], rows)
        if data["tags"]:
            app.out.table(["tag", "value"], list(data["tags"].items()))
        if data["replicas"]:
            app.out.table(
                ["replica region", "status", "message"],
                [[r["region"], r["status"], r["message"]] for r in data["replicas"]],
            )

    app.out.emit("SecretDescription", data, render)


def _parse_tags(pairs: tuple[str, ...]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key or not sep:
            raise click.BadParameter(f"{pair!r}: give KEY=VALUE", param_hint="TAGS")
        tags[key] = value
    return tags


@click.command()
@click.argument("name", shell_complete=secret_names)
@click.argument("tags", nargs=-1, required=True, metavar="KEY=VALUE...")
@pass_app
def tag(app: App, name: str, tags: tuple[str, ...]) -> None:
    """Add or change tags of a secret (TagResource). Tags are not secret: never put a value in one."""
    wanted = _parse_tags(tags)
    sm = app.aws.client("secretsmanager")
    have = {t["Key"]: t.get("Value", "") for t in sm.describe_secret(SecretId=name).get("Tags") or []}
    changes = [f"{'~' if k in have else '+'} {k}={v}" for k, v in wanted.items() if have.get(k) != v]
    if not changes:
        app.out.note(f"{name}: the tags are already so; nothing to do")
        return
    for line in changes:
        app.out.note(line)
    app.confirm_write(f"tag {name}", f"Change {len(changes)} tag(s) of {name}?")
    sm.tag_resource(SecretId=name, Tags=[{"Key": k, "Value": v} for k, v in wanted.items()])
    app.out.emit("SecretTagged", {"name": name, "tags": wanted}, lambda: app.out.line(f"tagged {name}"))


@click.command()
@click.argument("name", shell_complete=secret_names)
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@pass_app
def untag(app: App, name: str, keys: tuple[str, ...]) -> None:
    """Remove tags from a secret (UntagResource)."""
    sm = app.aws.client("secretsmanager")
    have = {t["Key"] for t in sm.describe_secret(SecretId=name).get("Tags") or []}
    present = [k for k in keys if k in have]
    if not present:
        app.out.note(f"{name}: none of these tags is present; nothing to do")
        return
    app.confirm_write(f"untag {name}", f"Remove tag(s) {', '.join(present)} from {name}?")
    sm.untag_resource(SecretId=name, TagKeys=present)
    app.out.emit(
        "SecretUntagged", {"name": name, "removed": present}, lambda: app.out.line(f"untagged {name}")
    )


def register(group: click.Group) -> None:
    for command in (describe, tag, untag):
        group.add_command(command)
