"""``secretsctl secret ...``: list, inspect, compare, export and change secrets."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError

from . import dump as dumping
from . import health, inventory, values
from .completion import secret_names
from .context import App, pass_app
from .errors import EXIT_DIFFERENT, CliError, Exit, Refused
from .output import Masked, parse_fields, text, view_value


@click.group()
def secret() -> None:
    """Secrets: ls, describe, versions, get, diff, dump, create, update, tag, untag, delete, restore."""


ROTATION_STATES = ("on", "off")


def _tag_filters(tags: tuple[str, ...]) -> list[dict[str, Any]]:
    """``KEY`` or ``KEY=VALUE`` as ListSecrets filters (tag-key, tag-value)."""
    filters: list[dict[str, Any]] = []
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not key:
            raise click.BadParameter(f"{tag!r}: give KEY or KEY=VALUE", param_hint="--tag")
        filters.append({"Key": "tag-key", "Values": [key]})
        if sep:
            filters.append({"Key": "tag-value", "Values": [value]})
    return filters


@secret.command("ls")
@click.option("--filter", "text_filter", metavar="TEXT", help="Only secrets whose name contains TEXT.")
@click.option(
    "--prefix", metavar="PREFIX", help="Only secrets whose name starts with PREFIX (filtered by AWS)."
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY[=VALUE]",
    help="Only secrets with this tag key (and value); repeatable, filtered by AWS.",
)
@click.option(
    "--rotation",
    type=click.Choice(ROTATION_STATES),
    help="Only secrets whose rotation is on (or off).",
)
@click.option(
    "--include-deleted", is_flag=True, help="Also list secrets scheduled for deletion (column 'deleted')."
)
@pass_app
def ls(
    app: App,
    text_filter: str | None,
    prefix: str | None,
    tags: tuple[str, ...],
    rotation: str | None,
    include_deleted: bool,
) -> None:
    """Every secret: rotation, rotation function, last and next rotation, health.

    Reads no value (ListSecrets only): listing never shows up as a secret access in CloudTrail or in
    a secret's last-accessed date. Use `secret get` or `status` for what needs the value."""
    sm = app.aws.client("secretsmanager")
    api_filters = _tag_filters(tags)
    if prefix:
        # The name filter matches a prefix of the name:
        # https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_Filter.html
        api_filters.append({"Key": "name", "Values": [prefix]})
    rows = []
    for info in inventory.list_all(sm, text_filter, include_deleted=include_deleted, api_filters=api_filters):
        if rotation is not None and info.rotation_enabled != (rotation == "on"):
            continue
        if prefix and not info.name.startswith(prefix):
            continue
        findings = health.assess(info)
        rows.append(
            {
                "name": info.name,
                "rotationEnabled": info.rotation_enabled,
                # Not known without reading the value: kept (always null) for scripts reading schema 1.
                "strategy": None,
                "rotationFunction": info.rotation_function,
                "lastRotated": info.last_rotated,
                "nextRotation": info.next_rotation,
                "deletionScheduled": info.deleted,
                "tags": info.tags,
                "health": [f.to_json() for f in findings],
            }
        )
    columns = ["name", "rotation", "function", "last rotated", "next rotation", "health"]
    if include_deleted:
        columns.append("deleted")
    app.out.emit(
        "SecretList",
        {"secrets": rows},
        lambda: app.out.table(
            columns,
            [
                [
                    r["name"],
                    "on" if r["rotationEnabled"] else "off",
                    r["rotationFunction"],
                    r["lastRotated"],
                    r["nextRotation"],
                    ", ".join(f["kind"] for f in r["health"]) or "ok",
                    *([r["deletionScheduled"]] if include_deleted else []),
                ]
                for r in rows
            ],
        ),
    )


@secret.command()
@click.argument("name", shell_complete=secret_names)
@pass_app
def versions(app: App, name: str) -> None:
    """Version ids, staging labels and creation dates of a secret (newest first)."""
    sm = app.aws.client("secretsmanager")
    listed: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"SecretId": name}
    while True:  # ListSecretVersionIds has NextToken but no boto3 paginator
        page = sm.list_secret_version_ids(**kwargs)
        listed += [v for v in page.get("Versions", []) if v.get("VersionStages")]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
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
@click.argument("name", shell_complete=secret_names)
@click.option("--version", "version_ref", metavar="ID", help="A version id (full, or 8+ leading characters).")
@click.option("--stage", metavar="LABEL", help="A staging label, AWS's or a custom one (default AWSCURRENT).")
@click.option("--reveal", is_flag=True, help="Show values (masked by default).")
@click.option("--field", "field_name", metavar="KEY", help="One key of a JSON secret.")
@click.option(
    "--raw",
    is_flag=True,
    help="Print the value alone (or the --field), bytes as stored, nothing else: for a pipe.",
)
@pass_app
def get(
    app: App,
    name: str,
    version_ref: str | None,
    stage: str | None,
    reveal: bool,
    field_name: str | None,
    raw: bool,
) -> None:
    """A secret's value, masked unless --reveal. `--raw` prints the value alone for piping."""
    if version_ref and stage:
        raise click.UsageError("give --version or --stage, not both")
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    version = inventory.resolve_version(info, version_ref or stage or "AWSCURRENT")
    secret_string, secret_binary = inventory.get_value(sm, info.arn, version)
    if raw:
        _print_raw(name, secret_string, secret_binary, field_name)
        return
    value = view_value(secret_string, secret_binary, reveal)
    if field_name is not None:
        if not isinstance(value, dict):
            raise click.UsageError(f"--field: the value of {name} is not a JSON object")
        if field_name not in value:
            raise click.UsageError(f"--field: {name} has no key {field_name!r} (keys: {', '.join(value)})")
        value = value[field_name]
        if not app.out.json:
            click.echo(str(value) if isinstance(value, Masked | str) else text(value))
            return
    labels = info.versions.get(version, [])
    app.out.emit(
        "SecretValue",
        {"name": info.name, "versionId": version, "stages": labels, "field": field_name, "value": value},
        lambda: _render_value(app, info.name, version, labels, value),
    )


def _print_raw(name: str, secret_string: str | None, secret_binary: bytes | None, field: str | None) -> None:
    """The value on stdout as stored: no header, no added newline, bytes untouched."""
    if field is not None:
        fields = parse_fields(secret_string)
        if fields is None:
            raise click.UsageError(f"--field: the value of {name} is not a JSON object")
        if field not in fields:
            raise click.UsageError(f"--field: {name} has no key {field!r} (keys: {', '.join(fields)})")
        chosen = fields[field]
        data = (chosen if isinstance(chosen, str) else json.dumps(chosen)).encode("utf-8")
    elif secret_string is not None:
        data = secret_string.encode("utf-8")
    else:
        data = secret_binary or b""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _render_value(app: App, name: str, version: str, labels: list[str], value: object) -> None:
    app.out.line(f"{name}  version {version}  ({', '.join(labels) or 'no label'})")
    if isinstance(value, dict):
        app.out.table(["key", "value"], [[k, v] for k, v in value.items()])
    else:
        app.out.line(text(value))


@secret.command("diff")
@click.argument("name", shell_complete=secret_names)
@click.argument("a", default="AWSPREVIOUS")
@click.argument("b", default="AWSCURRENT")
@click.option("--reveal", is_flag=True, help="Show values (masked by default).")
@pass_app
def diff_cmd(app: App, name: str, a: str, b: str, reveal: bool) -> None:
    """Compare two versions or stages key by key (default AWSPREVIOUS -> AWSCURRENT).

    Exit 3 when they differ."""
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    va, vb = inventory.resolve_version(info, a), inventory.resolve_version(info, b)
    old, new = _either(inventory.get_value(sm, info.arn, va)), _either(inventory.get_value(sm, info.arn, vb))
    changes = values.diff(old, new, reveal)
    different = values.differs(changes)
    app.out.emit(
        "SecretDiff",
        {
            "name": info.name,
            "from": {"ref": a, "versionId": va},
            "to": {"ref": b, "versionId": vb},
            "different": different,
            "keys": [{"key": c.key, "change": c.change, "from": c.old, "to": c.new} for c in changes],
        },
        lambda: _render_diff(app, info.name, a, va, b, vb, changes),
    )
    if different:
        raise Exit(EXIT_DIFFERENT)


def _either(value: tuple[str | None, bytes | None]) -> str | bytes | None:
    """SecretString, or SecretBinary when the version holds bytes."""
    return value[0] if value[0] is not None else value[1]


def _render_diff(
    app: App, name: str, a: str, va: str, b: str, vb: str, changes: list[values.KeyChange]
) -> None:
    app.out.line(f"{name}: {a} ({va}) -> {b} ({vb})")
    app.out.table(
        ["key", "change", a, b],
        [
            [c.key, c.change, c.old if c.old is not None else "", c.new if c.new is not None else ""]
            for c in changes
        ],
    )


@secret.command("dump")
@click.argument("names", nargs=-1, shell_complete=secret_names)
@click.option("--all", "all_secrets", is_flag=True, help="Every secret in the region.")
@click.option("--to", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(dumping.FORMATS), default="json", show_default=True)
@pass_app
def dump_cmd(app: App, names: tuple[str, ...], all_secrets: bool, directory: Path, fmt: str) -> None:
    """Write current values to files (mode 0600) in DIR; refused in a git work tree unless ignored."""
    if bool(names) == all_secrets:
        raise click.UsageError("give secret names or --all (not both)")
    sm = app.aws.client("secretsmanager")
    wanted = [i.name for i in inventory.list_all(sm)] if all_secrets else list(names)
    if directory.is_symlink():
        raise Refused(f"{directory} is a symbolic link; dump into a real directory")
    directory = directory.resolve()
    # Values are read before any file is written: a secret that cannot be read stops the dump
    # with its name, and nothing is left half-written.
    got = {name: _read_current(sm, name) for name in wanted}
    targets = [
        directory / dumping.file_name(n, "bin" if got[n].get("SecretString") is None else fmt) for n in wanted
    ]
    if len(set(targets)) != len(targets):
        raise click.UsageError("two secrets map to the same file name; dump them separately")
    dumping.prepare_directory(directory)
    dumping.check_destination(directory, targets)
    written = []
    for name, path in zip(wanted, targets, strict=True):
        value = got[name]
        if value.get("SecretString") is None:
            dumping.write_private(path, value.get("SecretBinary") or b"")
        else:
            dumping.write_private(path, dumping.render(value["SecretString"], fmt))
        written.append({"name": name, "versionId": value["VersionId"], "file": str(path)})
    app.out.emit(
        "SecretDump",
        {"format": fmt, "files": written},
        lambda: app.out.table(
            ["secret", "version", "file (0600)"], [[w["name"], w["versionId"], w["file"]] for w in written]
        ),
    )


def _read_current(sm: Any, name: str) -> dict[str, Any]:
    try:
        return sm.get_secret_value(SecretId=name)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise CliError(f"cannot read {name} ({code}); nothing was written") from None


FROM_FILE = click.option(
    "--from-file",
    "source",
    required=True,
    metavar="FILE",
    help="Read the value from FILE ('-' for stdin; on a terminal a prompt that does not echo). "
    "Values are never taken from the command line.",
)
TEXT = click.option(
    "--text", "as_text", is_flag=True, help="Store the value as text even if it is not valid JSON."
)
STRIP_NEWLINE = click.option(
    "--strip-newline", is_flag=True, help="Remove trailing newlines from the value (kept by default)."
)


def _read_new_value(app: App, source: str, strip_newline: bool, as_text: bool, was_json: bool) -> str:
    value = values.read_value(source, strip_newline=strip_newline)
    values.check_json(value, text=as_text, was_json=was_json)
    warning = values.newline_warning(value)
    if warning:
        app.out.warn(warning)
    return value


@secret.command()
@click.argument("name", shell_complete=secret_names)
@FROM_FILE
@TEXT
@STRIP_NEWLINE
@click.option("--description", default=None, help="The secret's description.")
@click.option("--kms-key", metavar="KEY", help="KMS key id, ARN or alias (default: aws/secretsmanager).")
@click.option(
    "--replica-region", "replicas", multiple=True, metavar="REGION", help="Replicate to REGION (repeatable)."
)
@pass_app
def create(
    app: App,
    name: str,
    source: str,
    as_text: bool,
    strip_newline: bool,
    description: str | None,
    kms_key: str | None,
    replicas: tuple[str, ...],
) -> None:
    """Create a secret. A database secret is validated with the rotation function's own parser first;
    a value that looks like JSON but is not is refused unless --text."""
    value = _read_new_value(app, source, strip_newline, as_text, was_json=False)
    strategy = values.validate(value)
    kwargs: dict[str, Any] = {"Name": name, "SecretString": value, "ClientRequestToken": str(uuid.uuid4())}
    if description is not None:
        kwargs["Description"] = description
    if kms_key:
        kwargs["KmsKeyId"] = kms_key
    if replicas:
        kwargs["AddReplicaRegions"] = [
            {"Region": r, **({"KmsKeyId": kms_key} if kms_key else {})} for r in replicas
        ]
    kind = f"database secret ({strategy}-user rotation)" if strategy else "secret"
    app.confirm_write(f"create {name}", f"Create {kind} {name}?")
    sm = app.aws.client("secretsmanager")
    created = sm.create_secret(**kwargs)
    _written(app, "SecretCreated", created, f"created {created['Name']} version {created['VersionId']}")


def _written(app: App, kind: str, response: dict[str, Any], message: str) -> None:
    data = {"name": response.get("Name"), "arn": response.get("ARN"), "versionId": response.get("VersionId")}
    app.out.emit(kind, data, lambda: app.out.line(message))


@secret.command()
@click.argument("name", shell_complete=secret_names)
@FROM_FILE
@TEXT
@STRIP_NEWLINE
@click.option("--expect-version", metavar="ID", help="Refuse unless AWSCURRENT is still this version.")
@pass_app
def update(
    app: App, name: str, source: str, as_text: bool, strip_newline: bool, expect_version: str | None
) -> None:
    """Store a new AWSCURRENT value. Refused while a rotation is in progress; a JSON secret's new value
    must be valid JSON unless --text."""
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    current = info.version_with("AWSCURRENT")
    before = inventory.get_value(sm, info.arn, current)[0] if current else None
    value = _read_new_value(app, source, strip_newline, as_text, was_json=parse_fields(before) is not None)
    current_version = info.version_with("AWSCURRENT")
    if expect_version and current_version != expect_version:
        raise Refused(
            f"AWSCURRENT of {info.name} is version {current_version}, not {expect_version} (--expect-version)"
        )
    if info.stale_pending is not None:
        raise Refused(
            f"a rotation of {info.name} is in progress or unfinished "
            f"(AWSPENDING on version {info.stale_pending}); "
            "wait for it, or see `secretsctl status` and `secretsctl unstick`"
        )
    old = inventory.get_value(sm, info.arn, current_version)[0] if current_version else None
    values.validate(value, must_be_db=values.strategy_of(old) is not None)
    changes = values.diff(old, value, reveal=False)
    if not values.differs(changes):
        app.out.note(f"{info.name}: the new value equals AWSCURRENT; nothing to do")
        return
    for change in changes:
        if change.change != "unchanged":
            app.out.note(values.describe_change(change))
    if info.rotation_enabled:
        app.out.warn(
            "a manual update counts as a rotation for AWS's 'rotated within schedule' checks, "
            "and the database is NOT changed: the new credentials must already work"
        )
    app.confirm_write(f"update {info.name}", f"Store a new AWSCURRENT value for {info.name}?")
    put = sm.put_secret_value(SecretId=info.arn, SecretString=value, ClientRequestToken=str(uuid.uuid4()))
    _written(
        app, "SecretUpdated", put, f"updated {put['Name']}: AWSCURRENT is now version {put['VersionId']}"
    )


@secret.command()
@click.argument("name", shell_complete=secret_names)
@click.option("--recovery-days", type=click.IntRange(7, 30), default=None, help="7 to 30 (default 30).")
@click.option(
    "--force-no-recovery", is_flag=True, help="Delete at once, no recovery (type the name to confirm)."
)
@pass_app
def delete(app: App, name: str, recovery_days: int | None, force_no_recovery: bool) -> None:
    """Schedule a secret's deletion (restorable until then), or delete it at once with --force-no-recovery."""
    if force_no_recovery and recovery_days is not None:
        raise click.UsageError("--recovery-days and --force-no-recovery exclude each other")
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    kwargs: dict[str, Any] = {"SecretId": info.arn}
    if force_no_recovery:
        kwargs["ForceDeleteWithoutRecovery"] = True
        app.confirm_write(
            f"delete {info.name} without recovery",
            f"Delete {info.name} now, with NO recovery?",
            type_to_confirm=info.name,
        )
    else:
        kwargs["RecoveryWindowInDays"] = recovery_days or 30
        app.confirm_write(
            f"delete {info.name}",
            f"Schedule {info.name} for deletion in {kwargs['RecoveryWindowInDays']} days?",
        )
    deleted = sm.delete_secret(**kwargs)
    when = deleted.get("DeletionDate")
    message = (
        f"deleted {info.name} (no recovery)"
        if force_no_recovery
        else f"{info.name} will be deleted on {text(when)}; until then: secretsctl secret restore {info.name}"
    )
    app.out.emit(
        "SecretDeleted",
        {"name": info.name, "arn": info.arn, "deletionDate": when, "recoverable": not force_no_recovery},
        lambda: app.out.line(message),
    )


@secret.command()
@click.argument("name", shell_complete=secret_names)
@pass_app
def restore(app: App, name: str) -> None:
    """Cancel a scheduled deletion."""
    app.confirm_write(f"restore {name}", f"Restore {name}?")
    restored = app.aws.client("secretsmanager").restore_secret(SecretId=name)
    _written(app, "SecretRestored", restored, f"restored {restored['Name']}")


def register(group: click.Group) -> None:
    from . import secret_meta

    secret_meta.register(secret)
    group.add_command(secret)
