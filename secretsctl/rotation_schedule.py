"""``secretsctl rotation enable|disable|cancel``: a secret's rotation schedule.

RotateSecret with ``RotationRules`` sets the schedule; AWS rotates at once unless ``RotateImmediately``
is false, so ``enable`` only rotates now with ``--rotate-now``. CancelRotateSecret turns automatic
rotation off and cancels a rotation in progress (both ``disable`` and ``cancel`` call it):
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CancelRotateSecret.html
"""

from __future__ import annotations

import re
from typing import Any

import click

from . import inventory
from .completion import secret_names
from .context import App, pass_app
from .errors import Refused

EVERY = re.compile(r"^(\d+)([dh])$")


def rotation_rules(every: str | None, cron: str | None, window: str | None) -> dict[str, Any]:
    """``--every 30d`` -> AutomaticallyAfterDays 30; ``--every 4h`` -> rate(4 hours); ``--cron`` as given."""
    if (every is None) == (cron is None):
        raise click.UsageError("give --every or --cron (one of them)")
    rules: dict[str, Any] = {}
    if every is not None:
        match = EVERY.match(every)
        if not match:
            raise click.BadParameter("e.g. 30d or 4h", param_hint="--every")
        amount, unit = int(match.group(1)), match.group(2)
        # AWS accepts rate() from 4 hours to 1000 days (RotationRulesType.ScheduleExpression).
        if (unit == "h" and not 4 <= amount <= 23) or (unit == "d" and not 1 <= amount <= 1000):
            raise click.BadParameter("4h to 23h, or 1d to 1000d", param_hint="--every")
        if unit == "d":
            rules["AutomaticallyAfterDays"] = amount
        else:
            rules["ScheduleExpression"] = f"rate({amount} hours)"
    else:
        expr = cron.strip() if cron else ""
        rules["ScheduleExpression"] = expr if expr.startswith("cron(") else f"cron({expr})"
    if window is not None:
        rules["Duration"] = window
    return rules


def _schedule(rules: dict[str, Any]) -> str:
    days = rules.get("AutomaticallyAfterDays")
    return f"every {days} days" if days else str(rules.get("ScheduleExpression"))


@click.group()
def rotation() -> None:
    """Rotation schedule: enable (with --every or --cron), disable, cancel."""


@rotation.command()
@click.argument("name", shell_complete=secret_names)
@click.option("--every", metavar="N{d|h}", help="Rotate every N days (1d-1000d) or hours (4h-23h).")
@click.option("--cron", metavar="EXPR", help="A cron expression, e.g. '0 4 ? * SUN *'.")
@click.option(
    "--window", metavar="DURATION", help="Rotation window, e.g. 3h (AWS default: to the day's end)."
)
@click.option(
    "--function", "function_arn", metavar="ARN", help="Rotation function (default: the current one)."
)
@click.option("--rotate-now", is_flag=True, help="Also rotate at once (AWS's default; off here).")
@pass_app
def enable(
    app: App,
    name: str,
    every: str | None,
    cron: str | None,
    window: str | None,
    function_arn: str | None,
    rotate_now: bool,
) -> None:
    """Turn on automatic rotation on a schedule. Does not rotate now unless --rotate-now."""
    rules = rotation_rules(every, cron, window)
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    function_arn = function_arn or info.rotation_lambda_arn
    if not function_arn:
        raise Refused(f"{info.name} has no rotation function; pass --function ARN")
    app.confirm_write(
        f"rotation enable {info.name}",
        f"Rotate {info.name} on {_schedule(rules)} with {function_arn.rsplit(':', 1)[-1]}"
        f"{' (and now)' if rotate_now else ''}?",
    )
    got = sm.rotate_secret(
        SecretId=info.arn,
        RotationLambdaARN=function_arn,
        RotationRules=rules,
        RotateImmediately=rotate_now,
    )
    data = {"name": info.name, "rules": rules, "function": function_arn, "rotatedNow": rotate_now}
    if rotate_now:
        data["versionId"] = got.get("VersionId")
    app.out.emit(
        "RotationEnabled",
        data,
        lambda: app.out.line(f"rotation of {info.name} on: {_schedule(rules)}"),
    )


@rotation.command()
@click.argument("name", shell_complete=secret_names)
@pass_app
def disable(app: App, name: str) -> None:
    """Turn off automatic rotation (the function and rules stay recorded)."""
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    if not info.rotation_enabled:
        app.out.note(f"rotation of {info.name} is already off; nothing to do")
        return
    app.confirm_write(f"rotation disable {info.name}", f"Turn off automatic rotation of {info.name}?")
    sm.cancel_rotate_secret(SecretId=info.arn)
    app.out.emit(
        "RotationDisabled", {"name": info.name}, lambda: app.out.line(f"rotation of {info.name} off")
    )


@rotation.command()
@click.argument("name", shell_complete=secret_names)
@pass_app
def cancel(app: App, name: str) -> None:
    """Cancel a rotation in progress (also turns automatic rotation off, as AWS does).

    The unfinished version keeps AWSPENDING; `secretsctl unstick NAME --apply` removes it."""
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    pending = info.stale_pending
    if pending is None:
        raise Refused(f"no rotation of {info.name} is in progress (no AWSPENDING apart from AWSCURRENT)")
    app.confirm_write(
        f"rotation cancel {info.name}",
        f"Cancel the rotation of {info.name} (version {pending}) and turn automatic rotation off?",
    )
    sm.cancel_rotate_secret(SecretId=info.arn)
    app.out.emit(
        "RotationCancelled",
        {"name": info.name, "pendingVersion": pending},
        lambda: app.out.line(
            f"rotation of {info.name} cancelled; version {pending} still holds AWSPENDING: "
            f"`secretsctl unstick {info.name} --apply` removes it"
        ),
    )


def register(group: click.Group) -> None:
    group.add_command(rotation)
