"""``secretsctl replicas check [--apply]``: replica drift, found and repaired by the replicator's own code."""

from __future__ import annotations

import os
from typing import Any

import click

from rotation_handlers.replication.config import ConfigError, ReplicationConfig, load_config

from . import replicas
from .context import App, pass_app
from .errors import EXIT_DIFFERENT, CliError, Exit


@click.group("replicas")
def replicas_group() -> None:
    """Parameter Store replicas made by the replication function."""


def _config(app: App, function: str | None) -> ReplicationConfig:
    try:
        if function:
            region = app.aws.region_name
            return replicas.config_from_function(app.aws.client("lambda"), function, region)
        env = dict(os.environ)
        if app.aws.region:
            env["AWS_REGION"] = app.aws.region
        return load_config(env)
    except ConfigError as exc:
        where = f"function {function}" if function else "the environment"
        raise CliError(f"replication configuration from {where}: {exc}") from None


def _render(app: App, report: replicas.Report) -> None:
    if report.findings:
        app.out.table(
            ["parameter", "region", "finding", "detail"],
            [[f.parameter, f.region, f.kind, f.detail] for f in report.findings],
        )
    verb = "repaired" if report.applied else "found"
    app.out.line(
        f"{report.parameters} source parameter(s) in {report.source_region} checked against "
        f"{', '.join(report.target_regions)}: {len(report.drift)} difference(s) {verb}, "
        f"{len(report.failures)} failure(s)."
    )


def _data(report: replicas.Report) -> dict[str, Any]:
    return {
        "sourceRegion": report.source_region,
        "targetRegions": list(report.target_regions),
        "applied": report.applied,
        "parameters": report.parameters,
        "findings": [f.as_json() for f in report.findings],
        "summary": dict(report.summary),
    }


@replicas_group.command()
@click.option(
    "--function", metavar="NAME", help="Read the configuration from the deployed replication function."
)
@click.option(
    "--apply", "do_apply", is_flag=True, help="Repair the drift through the replicator's reconcile."
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Also overwrite target parameters the replicator did not create (no marker tag), "
    "and mark them as replicas. Without it they are reported and left alone.",
)
@click.option("--yes", "-y", "yes", is_flag=True, help="Do not ask before writing.")
@pass_app
def check(app: App, function: str | None, do_apply: bool, adopt: bool, yes: bool) -> None:
    """Compare the source region with each target: missing, extra, different. Exit 3 on drift.

    The configuration is the replication function's: its environment variables (AWS_REGION,
    REPLICA_REGIONS, REPLICATE_PATHS, EXCLUDE_PATHS, REPLICA_KMS_KEYS, ...) from this shell, or
    those of the deployed function with --function. Values are compared, never printed.
    """
    config = _config(app, function)
    clients = {r: app.aws.client("ssm", r) for r in (config.source_region, *config.target_regions)}
    if adopt and not do_apply:
        raise click.UsageError("--adopt needs --apply")
    report = replicas.check(config, clients.__getitem__, adopt=adopt)
    if do_apply and report.drift:
        if not app.out.json:
            _render(app, report)
        app.yes = app.yes or yes
        app.confirm_write(
            "replicas check --apply",
            f"Repair {len(report.drift)} difference(s) in {', '.join(config.target_regions)}?",
        )
        report = replicas.check(config, clients.__getitem__, apply=True, adopt=adopt)
    app.out.emit("ReplicaCheck", _data(report), lambda: _render(app, report))
    if report.failures:
        raise CliError(f"{len(report.failures)} parameter/region pair(s) could not be checked or repaired")
    if report.drift and not report.applied:
        raise Exit(EXIT_DIFFERENT)


def register(group: click.Group) -> None:
    group.add_command(replicas_group)
