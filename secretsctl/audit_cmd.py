"""``secretsctl audit NAME [--since 30d]``: who changed a secret or parameter (CloudTrail event history)."""

from __future__ import annotations

import click
from botocore.config import Config
from botocore.exceptions import ClientError

from . import audit
from .context import App, pass_app
from .errors import CliError

# One attempt: an endpoint without CloudTrail should be reported at once, not retried.
_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 1, "mode": "standard"})


def _resources(app: App, name: str) -> list[str]:
    """The name, and for a Secrets Manager secret also its ARN (its events name the ARN)."""
    resources = [name]
    try:
        arn = app.aws.client("secretsmanager").describe_secret(SecretId=name)["ARN"]
        resources.append(arn)
    except ClientError:
        pass  # not a secret (or not visible): a parameter name
    return resources


@click.command("audit")
@click.argument("name")
@click.option("--since", default="30d", show_default=True, help="How far back: 30d, 12h, 45m (at most 90d).")
@click.option("--include-reads", is_flag=True, help="Also list read-only events (GetSecretValue, ...).")
@pass_app
def audit_cmd(app: App, name: str, since: str, include_reads: bool) -> None:
    """Who changed NAME, from CloudTrail's event history (the last 90 days, this region only)."""
    try:
        start, clamped = audit.parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    if clamped:
        app.out.warn("CloudTrail's event history keeps 90 days; showing the last 90 days")
    resources = _resources(app, name)  # its first client checks --expect-account
    cloudtrail = app.aws.session.client(
        "cloudtrail", region_name=app.aws.region_name, endpoint_url=app.aws.endpoint_url, config=_CONFIG
    )
    try:
        found = audit.events(cloudtrail, resources, start, include_reads=include_reads)
    except audit.AuditUnavailableError as exc:
        app.out.note(f"secretsctl: audit skipped: CloudTrail event history is not available here ({exc})")
        app.out.emit("Audit", {"name": name, "available": False, "since": start, "events": []}, lambda: None)
        return
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CliError(f"LookupEvents: {error.get('Code')}: {error.get('Message', '')}") from None
    rows = [e.as_json() for e in found]
    app.out.emit(
        "Audit",
        {"name": name, "available": True, "since": start, "events": rows},
        lambda: app.out.table(
            ["time", "event", "user", "source ip", "error"],
            [[e.time, e.name, e.user, e.source_ip, e.error] for e in found],
            title=f"{name}: {len(found)} change(s) since {start:%Y-%m-%d %H:%M} UTC",
        ),
    )


def register(group: click.Group) -> None:
    group.add_command(audit_cmd)
