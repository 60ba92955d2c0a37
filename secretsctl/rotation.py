"""``secretsctl rotate | status | unstick | rollback``: the rotation lifecycle."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from . import function_logs, health, inventory, values
from .completion import secret_names
from .context import App, pass_app
from .errors import EXIT_ERROR, EXIT_FINDINGS, CliError, Exit, Refused
from .output import parse_fields

POLL_SECONDS = 2.0


def _versions_rows(info: inventory.SecretInfo) -> list[list[Any]]:
    return [[v, labels] for v, labels in info.versions.items()]


def _state(info: inventory.SecretInfo) -> dict[str, Any]:
    return {"versions": [{"versionId": v, "stages": s} for v, s in info.versions.items()]}


def _render_plan(app: App, info: inventory.SecretInfo, plan: str, applied: bool, note: str = "") -> None:
    app.out.line(f"{info.name}: {'done' if applied else 'would'}: {plan}")
    if note:
        app.out.line(note)
    app.out.table(["version id", "labels"], _versions_rows(info))
    if not applied:
        app.out.line("dry run: nothing changed; --apply to do it")


# -- rotate ----------------------------------------------------------------------------------------
def preflight(app: App, info: inventory.SecretInfo) -> list[str]:
    """Problems that would make RotateSecret fail or do nothing useful; empty when it may start."""
    problems = []
    if not info.rotation_lambda_arn:
        problems.append(f"{info.name} has no rotation function configured (RotationLambdaARN)")
    else:
        lam = app.aws.client("lambda")
        try:
            lam.get_function(FunctionName=info.rotation_lambda_arn)
        except lam.exceptions.ResourceNotFoundException:
            problems.append(f"the rotation function {info.rotation_lambda_arn} does not exist")
        except Exception as exc:  # AccessDenied and the like: cannot tell, do not block
            click.echo(
                f"secretsctl: note: could not check the rotation function ({type(exc).__name__})", err=True
            )
    if info.stale_pending is not None:
        problems.append(
            f"AWSPENDING is on version {info.stale_pending}, not AWSCURRENT: a previous rotation is "
            f"not complete (`secretsctl unstick {info.name}` shows how to clear it)"
        )
    if info.deleted is not None:
        problems.append(f"{info.name} is scheduled for deletion")
    return problems


def wait_for(
    app: App, info: inventory.SecretInfo, token: str, timeout: float
) -> tuple[str, inventory.SecretInfo, list[str] | None]:
    """Poll until AWSCURRENT is on ``token`` (``ok``), the function logged a failure (``failed``),
    AWSPENDING left ``token`` without AWSCURRENT (``failed``), or ``timeout`` (``timeout``)."""
    sm = app.aws.client("secretsmanager")
    logs = app.aws.client("logs")
    started = time.monotonic()
    since = datetime.now(UTC)
    while True:
        now_info = inventory.describe(sm, info.arn)
        labels = now_info.versions.get(token, [])
        if "AWSCURRENT" in labels:
            return "ok", now_info, None
        errors = function_logs.error_lines(logs, info.rotation_lambda_arn or "", token, since)
        if errors:
            return "failed", now_info, errors
        if "AWSPENDING" not in labels:
            return "failed", now_info, errors
        if time.monotonic() - started >= timeout:
            return "timeout", now_info, errors
        time.sleep(min(POLL_SECONDS, max(0.0, timeout - (time.monotonic() - started))))


@click.command()
@click.argument("name", shell_complete=secret_names)
@click.option("--wait", is_flag=True, help="Wait until AWSCURRENT moves or the rotation fails.")
@click.option("--timeout", type=click.FloatRange(1), default=300, show_default=True, help="Seconds to wait.")
@pass_app
def rotate(app: App, name: str, wait: bool, timeout: float) -> None:
    """Start a rotation with the configured function, after a pre-flight check."""
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    problems = preflight(app, info)
    if problems:
        raise Refused("; ".join(problems))
    app.confirm_write(f"rotate {info.name}", f"Rotate {info.name} now?")
    before = info.version_with("AWSCURRENT")
    token = sm.rotate_secret(SecretId=info.arn)["VersionId"]
    if not wait:
        app.out.emit(
            "RotationStarted",
            {"name": info.name, "versionId": token, "previousCurrent": before},
            lambda: app.out.line(f"rotation of {info.name} started: new version {token} (AWSPENDING)"),
        )
        return
    outcome, after, errors = wait_for(app, info, token, timeout)
    data = {
        "name": info.name,
        "versionId": token,
        "previousCurrent": before,
        "outcome": outcome,
        "errors": errors,
        "logsReadable": errors is not None,
        **_state(after),
    }

    def render() -> None:
        if outcome == "ok":
            app.out.line(f"rotated {info.name}: AWSCURRENT is now version {token}")
            return
        app.out.line(
            f"rotation of {info.name} {'FAILED' if outcome == 'failed' else 'did not finish in time'}"
        )
        if errors:
            app.out.line(f"last error lines of {function_logs.log_group(info.rotation_lambda_arn or '')}:")
            for line in errors:
                app.out.line(f"  {line}")
        elif errors is None:
            app.out.line("(the function's CloudWatch Logs could not be read)")
        app.out.line("state left behind:")
        app.out.table(["version id", "labels"], _versions_rows(after))

    app.out.emit("RotationResult", data, render)
    if outcome != "ok":
        raise Exit(EXIT_ERROR)


# -- status ----------------------------------------------------------------------------------------
def _fail_on(value: str) -> set[str]:
    kinds = {v.strip() for v in value.split(",") if v.strip()}
    if "all" in kinds:
        return set(health.FINDINGS)
    unknown = kinds - set(health.FINDINGS)
    if unknown:
        raise click.BadParameter(
            f"unknown finding(s) {', '.join(sorted(unknown))}; choose from {','.join(health.FINDINGS)} or all"
        )
    return kinds


def assess_secret(app: App, info: inventory.SecretInfo, max_age_days: int) -> list[health.Finding]:
    failed = None
    if info.stale_pending is not None and info.rotation_lambda_arn:
        failed = function_logs.error_lines(
            app.aws.client("logs"), info.rotation_lambda_arn, info.stale_pending
        )
    return health.assess(info, max_age_days=max_age_days, failed_lines=failed)


@click.command()
@click.argument("names", nargs=-1, shell_complete=secret_names)
@click.option(
    "--fail-on",
    metavar="LIST",
    default="",
    help=f"Exit 4 when any of these findings is present: {','.join(health.FINDINGS)} (or all).",
)
@click.option(
    "--max-age-days", type=click.IntRange(1, 365), default=health.DEFAULT_MAX_AGE_DAYS, show_default=True
)
@click.option(
    "--accounts",
    "accounts_file",
    metavar="FILE",
    help="Across accounts: the account ids in FILE (one per line); needs --role.",
)
@click.option(
    "--organization", is_flag=True, help="Across accounts: every ACTIVE account of the organization."
)
@click.option("--role", metavar="NAME", help="The read-only role to assume in each account.")
@click.option(
    "--regions", metavar="LIST", help="Across accounts: comma-separated regions (default: the current one)."
)
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=8, show_default=True, help="Accounts read at once."
)
@pass_app
def status(
    app: App,
    names: tuple[str, ...],
    fail_on: str,
    max_age_days: int,
    accounts_file: str | None,
    organization: bool,
    role: str | None,
    regions: str | None,
    concurrency: int,
) -> None:
    """Rotation health of every secret (or NAMES): disabled, never, overdue, stale, failing.

    With --accounts FILE or --organization and --role NAME: one table for every account and region
    (read-only role assumed in each, concurrently; a progress bar on a terminal). Exit 4 as with one
    account; exit 1 when an account could not be read."""
    kinds = _fail_on(fail_on)
    if accounts_file or organization:
        fleet_status(app, accounts_file, organization, role, regions, concurrency, kinds, max_age_days)
        return
    sm = app.aws.client("secretsmanager")
    infos = [inventory.describe(sm, n) for n in names] if names else inventory.list_all(sm)
    rows = []
    for info in infos:
        findings = assess_secret(app, info, max_age_days)
        rows.append((info, findings))
    failing = sorted({f.kind for _, fs in rows for f in fs} & kinds)
    data = {
        "secrets": [
            {
                "name": i.name,
                "rotationEnabled": i.rotation_enabled,
                "lastRotated": i.last_rotated,
                "nextRotation": i.next_rotation,
                "findings": [f.to_json() for f in fs],
            }
            for i, fs in rows
        ],
        "failOn": sorted(kinds),
        "failed": failing,
    }

    def render() -> None:
        app.out.table(
            ["name", "rotation", "last rotated", "findings"],
            [
                [i.name, "on" if i.rotation_enabled else "off", i.last_rotated, health.summary(fs)]
                for i, fs in rows
            ],
        )
        for i, fs in rows:
            for f in fs:
                control = f" [{f.control}]" if f.control else ""
                app.out.line(f"{i.name}: {f.kind}{control}: {f.detail}")

    app.out.emit("RotationStatus", data, render)
    if failing:
        raise Exit(EXIT_FINDINGS)


def fleet_status(
    app: App,
    accounts_file: str | None,
    organization: bool,
    role: str | None,
    regions: str | None,
    concurrency: int,
    kinds: set[str],
    max_age_days: int,
) -> None:
    from . import fleet

    if bool(accounts_file) == organization:
        raise click.UsageError("give --accounts FILE or --organization (one of them)")
    if not role:
        raise click.UsageError("--role NAME is needed with --accounts/--organization")
    accounts = fleet.read_accounts(accounts_file) if accounts_file else fleet.organization_accounts(app.aws)
    region_list = [r.strip() for r in (regions or app.aws.region_name).split(",") if r.strip()]
    targets = fleet.read_fleet(
        app.aws,
        accounts,
        region_list,
        role,
        max_age_days=max_age_days,
        concurrency=concurrency,
        progress=None if app.out.json else fleet.terminal_progress(),
    )
    failing = sorted({f.kind for t in targets for _, fs in t.secrets for f in fs} & kinds)
    unreadable = [t for t in targets if t.error]
    data = {
        "targets": [
            {
                "account": t.account,
                "region": t.region,
                "error": t.error,
                "secrets": [
                    {
                        "name": i.name,
                        "rotationEnabled": i.rotation_enabled,
                        "lastRotated": i.last_rotated,
                        "findings": [f.to_json() for f in fs],
                    }
                    for i, fs in t.secrets
                ],
            }
            for t in targets
        ],
        "failOn": sorted(kinds),
        "failed": failing,
    }
    rows = []
    for t in targets:
        if t.error:
            rows.append([t.account, t.region, "-", "-", "-", f"unreadable: {t.error}"])
        for i, fs in t.secrets:
            rows.append(
                [
                    t.account,
                    t.region,
                    i.name,
                    "on" if i.rotation_enabled else "off",
                    i.last_rotated,
                    health.summary(fs),
                ]
            )
    app.out.emit(
        "FleetRotationStatus",
        data,
        lambda: app.out.table(["account", "region", "name", "rotation", "last rotated", "findings"], rows),
    )
    if failing:
        raise Exit(EXIT_FINDINGS)
    if unreadable:
        raise CliError(
            f"{len(unreadable)} account-region(s) could not be read: "
            + ", ".join(f"{t.account}/{t.region} ({t.error})" for t in unreadable)
        )


# -- unstick ---------------------------------------------------------------------------------------
@click.command()
@click.argument("name", shell_complete=secret_names)
@click.option(
    "--apply", is_flag=True, help="Remove the stale AWSPENDING label (default: show what would be done)."
)
@pass_app
def unstick(app: App, name: str, apply: bool) -> None:
    """Clear a stale AWSPENDING (a rotation that will never finish). Never touches AWSCURRENT."""
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    pending = info.stale_pending
    if pending is None:
        why = (
            "AWSPENDING is on the AWSCURRENT version, which is healthy"
            if info.version_with("AWSPENDING")
            else "no version carries AWSPENDING"
        )
        app.out.emit(
            "Unstick",
            {"name": info.name, "stalePending": None, "applied": False, **_state(info)},
            lambda: app.out.line(f"{info.name}: nothing to do ({why})"),
        )
        return
    plan = f"remove AWSPENDING from version {pending} (AWSCURRENT stays on {info.version_with('AWSCURRENT')})"
    if apply:
        app.confirm_write(f"unstick {info.name}", f"{info.name}: {plan}?")
        sm.update_secret_version_stage(
            SecretId=info.arn, VersionStage="AWSPENDING", RemoveFromVersionId=pending
        )
        info = inventory.describe(sm, info.arn)
    app.out.emit(
        "Unstick",
        {"name": info.name, "stalePending": pending, "applied": apply, "plan": plan, **_state(info)},
        lambda: _render_plan(app, info, plan, apply),
    )


# -- rollback --------------------------------------------------------------------------------------
SINGLE_USER_REFUSAL = (
    "{name} rotates a single user: its rotation already changed the database password, so the "
    "AWSPREVIOUS password no longer logs in and rolling the label back would lock the application out. "
    "Run `secretsctl rotate {name}` to get a fresh working password instead."
)


@click.command()
@click.argument("name", shell_complete=secret_names)
@click.option("--apply", is_flag=True, help="Move AWSCURRENT back (default: show what would be done).")
@pass_app
def rollback(app: App, name: str, apply: bool) -> None:
    """Move AWSCURRENT back to the AWSPREVIOUS version (alternating-user secrets only)."""
    sm = app.aws.client("secretsmanager")
    info = inventory.describe(sm, name)
    current, previous = info.version_with("AWSCURRENT"), info.version_with("AWSPREVIOUS")
    if current is None or previous is None:
        raise Refused(f"{info.name} has no AWSPREVIOUS version to roll back to")
    cur_value = inventory.get_value(sm, info.arn, current)[0]
    prev_value = inventory.get_value(sm, info.arn, previous)[0]
    strategy = values.strategy_of(cur_value)
    if strategy != "alternating":
        if strategy is None:
            raise Refused(f"{info.name} is not a database secret this tool knows how to roll back safely")
        raise Refused(SINGLE_USER_REFUSAL.format(name=info.name))
    if info.stale_pending is not None:
        raise Refused(
            f"a rotation of {info.name} is unfinished (AWSPENDING on {info.stale_pending}): unstick it first"
        )
    cur_user = (parse_fields(cur_value) or {}).get("username")
    prev_user = (parse_fields(prev_value) or {}).get("username")
    plan = f"move AWSCURRENT from {current} (user {cur_user}) to {previous} (user {prev_user})"
    if apply:
        app.confirm_write(f"rollback {info.name}", f"{info.name}: {plan}?")
        sm.update_secret_version_stage(
            SecretId=info.arn,
            VersionStage="AWSCURRENT",
            MoveToVersionId=previous,
            RemoveFromVersionId=current,
        )
        info = inventory.describe(sm, info.arn)
    app.out.emit(
        "Rollback",
        {"name": info.name, "from": current, "to": previous, "applied": apply, "plan": plan, **_state(info)},
        lambda: _render_plan(
            app,
            info,
            plan,
            apply,
            "alternating users: the last rotation did not change the previous user's password, "
            "so it still logs in",
        ),
    )


def register(group: click.Group) -> None:
    for command in (rotate, status, unstick, rollback):
        group.add_command(command)
