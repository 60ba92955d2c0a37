"""``secretsctl param ...``: Parameter Store listing, history, masked diff, and desired state.

The commands are thin: the logic is in :mod:`secretsctl.params` and :mod:`secretsctl.desired_state`.
"""

from __future__ import annotations

from typing import Any

import click

from . import params
from .completion import parameter_names
from .context import App, pass_app
from .desired_state import DesiredStateError, load_desired_state
from .errors import EXIT_DIFFERENT, CliError, Exit
from .output import Masked


@click.group()
def param() -> None:
    """Parameter Store: ls, get, history, diff, put, delete, plan, apply. Values masked unless --reveal."""


def _ssm(app: App, rate: float = params.DEFAULT_RATE) -> tuple[Any, params.RequestBudget]:
    budget = params.RequestBudget(rate)
    return budget.attach(app.aws.client("ssm")), budget


def _value(value: str, reveal: bool) -> Any:
    return value if reveal else Masked(len(value))


@param.command("ls")
@click.argument("path", required=False)
@click.option("--recursive", "-r", is_flag=True, help="Include every level below PATH.")
@pass_app
def ls(app: App, path: str | None, recursive: bool) -> None:
    """Parameters under PATH (all without one): type, tier, version, last change. Never a value."""
    if path is not None and not path.startswith("/"):
        raise click.BadParameter("a path starts with '/'", param_hint="PATH")
    ssm, budget = _ssm(app)
    items = params.list_parameters(ssm, path, recursive=recursive)
    rows = [
        {
            "name": i.name,
            "type": i.type,
            "tier": i.tier,
            "version": i.version,
            "lastModified": i.last_modified,
            "lastModifiedUser": i.last_modified_user,
        }
        for i in items
    ]
    if not rows and path is not None and not recursive:
        deeper = params.list_parameters(ssm, path, recursive=True)
        if deeper:
            app.out.note(
                f"no parameter directly under {path}; {len(deeper)} deeper: "
                f"`secretsctl param ls {path} -r` lists them"
            )
    app.out.emit(
        "ParameterList",
        {"path": path, "recursive": recursive, "parameters": rows, "apiCalls": budget.report()},
        lambda: app.out.table(
            ["name", "type", "tier", "version", "last modified", "by"],
            [list(r.values()) for r in rows],
        ),
    )


@param.command()
@click.argument("name", shell_complete=parameter_names)
@click.option("--version", "version", type=click.IntRange(min=1), help="A version number.")
@click.option("--label", metavar="LABEL", help="A version label.")
@click.option("--reveal", is_flag=True, help="Show the value (masked by default).")
@pass_app
def get(app: App, name: str, version: int | None, label: str | None, reveal: bool) -> None:
    """One version of a parameter (the latest by default), value masked unless --reveal."""
    if version is not None and label is not None:
        raise click.UsageError("give --version or --label, not both")
    ssm, _ = _ssm(app)
    v = _call(params.get, ssm, name, version=version, label=label)
    data = {
        "name": v.name,
        "version": v.version,
        "labels": list(v.labels),
        "type": v.type,
        "tier": v.tier,
        "dataType": v.data_type,
        "kmsKey": v.key_id,
        "description": v.description,
        "lastModified": v.last_modified,
        "lastModifiedUser": v.last_modified_user,
        "value": _value(v.value, reveal),
    }
    app.out.emit("ParameterValue", data, lambda: app.out.table(["field", "value"], list(data.items())))


@param.command("history")
@click.argument("name", shell_complete=parameter_names)
@pass_app
def history_cmd(app: App, name: str) -> None:
    """Every kept version with its labels, last-modified user and date. Never a value."""
    ssm, _ = _ssm(app)
    versions = _call(params.history, ssm, name)
    rows = [
        {
            "version": v.version,
            "labels": list(v.labels),
            "type": v.type,
            "tier": v.tier,
            "lastModified": v.last_modified,
            "lastModifiedUser": v.last_modified_user,
        }
        for v in reversed(versions)
    ]
    app.out.emit(
        "ParameterHistory",
        {"name": name, "versions": rows},
        lambda: app.out.table(
            ["version", "labels", "type", "tier", "last modified", "by"], [list(r.values()) for r in rows]
        ),
    )


@param.command()
@click.argument("name", shell_complete=parameter_names)
@click.argument("a")
@click.argument("b")
@click.option("--reveal", is_flag=True, help="Show the two values (masked by default).")
@pass_app
def diff(app: App, name: str, a: str, b: str, reveal: bool) -> None:
    """Compare two versions or labels (A and B); exit 3 when they differ."""
    ssm, _ = _ssm(app)
    versions = _call(params.history, ssm, name, with_values=True)
    va, vb = _call(params.select, versions, a), _call(params.select, versions, b)
    diffs = params.diff_versions(va, vb)
    rows = [
        {
            "field": d.field,
            "a": _value(d.old, reveal) if d.field == "value" else d.old,
            "b": _value(d.new, reveal) if d.field == "value" else d.new,
        }
        for d in diffs
    ]
    app.out.emit(
        "ParameterDiff",
        {"name": name, "a": va.version, "b": vb.version, "identical": not diffs, "differences": rows},
        lambda: _render_diff(app, name, va.version, vb.version, rows),
    )
    if diffs:
        raise Exit(EXIT_DIFFERENT)


def _render_diff(app: App, name: str, a: int, b: int, rows: list[dict[str, Any]]) -> None:
    if not rows:
        app.out.line(f"{name}: versions {a} and {b} are identical")
        return
    app.out.table(["field", f"version {a}", f"version {b}"], [[r["field"], r["a"], r["b"]] for r in rows])


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except params.ParamError as exc:
        raise CliError(str(exc)) from None


def _load(path: str) -> Any:
    try:
        return load_desired_state(path)
    except DesiredStateError as exc:
        raise CliError(str(exc)) from None


_rate_option = click.option(
    "--max-rps",
    type=click.FloatRange(min=0.1),
    default=params.DEFAULT_RATE,
    show_default=True,
    help="Request budget for Parameter Store calls (the default read quota is 40 per second, shared).",
)
_prune_option = click.option(
    "--prune", is_flag=True, help="Also delete parameters under the file's paths that it does not list."
)


def _plan(app: App, file: str, prune: bool, rate: float) -> tuple[params.Plan, params.RequestBudget, Any]:
    desired = _load(file)
    ssm, budget = _ssm(app, rate)
    return params.plan(ssm, desired, prune=prune), budget, ssm


def _render_plan(app: App, planned: params.Plan) -> None:
    for change in planned.changes:
        app.out.line(change.line())
        for warning in change.warnings:
            app.out.line(f"  ! {warning}")
    counts = planned.counts()
    app.out.line(
        f"Plan: {counts['create']} to create, {counts['modify']} to modify, {counts['delete']} to delete, "
        f"{counts['unchanged']} unchanged."
    )
    if planned.unlisted and not planned.prune:
        app.out.note(
            f"{len(planned.unlisted)} parameter(s) under the file's paths are not in the file "
            "(--prune deletes them)"
        )


def _plan_data(planned: params.Plan, file: str, region: str) -> dict[str, Any]:
    return {
        "file": file,
        "region": region,
        "prune": planned.prune,
        "changes": [c.as_json() for c in planned.changes],
        "summary": planned.counts(),
        "unlisted": list(planned.unlisted),
    }


@param.command("plan")
@click.argument("file", type=click.Path(dir_okay=False))
@_prune_option
@_rate_option
@pass_app
def plan_cmd(app: App, file: str, prune: bool, max_rps: float) -> None:
    """Compare a desired-state file with Parameter Store; never writes. Exit 3 when there are changes."""
    planned, budget, _ = _plan(app, file, prune, max_rps)
    data = {**_plan_data(planned, file, app.aws.region_name), "apiCalls": budget.report()}
    app.out.emit("ParameterPlan", data, lambda: _render_plan(app, planned))
    if planned.pending:
        raise Exit(EXIT_DIFFERENT)


@param.command("apply")
@click.argument("file", type=click.Path(dir_okay=False))
@_prune_option
@click.option("--yes", "-y", "yes", is_flag=True, help="Do not ask before writing.")
@_rate_option
@pass_app
def apply_cmd(app: App, file: str, prune: bool, yes: bool, max_rps: float) -> None:
    """Show the plan, confirm, then write only what changed (re-checking each parameter first)."""
    planned, budget, ssm = _plan(app, file, prune, max_rps)
    region = app.aws.region_name
    if not app.out.json:
        _render_plan(app, planned)
    applied: list[params.Change] = []
    error: str | None = None
    if planned.pending:
        app.yes = app.yes or yes
        app.confirm_write("param apply", f"Apply {len(planned.pending)} change(s) in {region}?")

        def done(change: params.Change) -> None:
            applied.append(change)
            app.out.line(f"applied: {change.line()}")

        try:
            params.apply(ssm, planned, on_applied=done)
        except params.ParamError as exc:
            error = str(exc)
    data = {
        **_plan_data(planned, file, region),
        "applied": [c.name for c in applied],
        "error": error,
        "apiCalls": budget.report(),
    }
    if app.out.json:
        app.out.emit("ParameterApply", data, lambda: None)
    elif not planned.pending:
        app.out.line("No changes.")
    if error:
        raise CliError(f"{error} ({len(applied)} of {len(planned.pending)} change(s) applied before it)")


def register(group: click.Group) -> None:
    from . import param_write

    param_write.register(param)
    group.add_command(param)
