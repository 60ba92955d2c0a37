"""Shell completion of secret and parameter names (ListSecrets / DescribeParameters, never a value).

Completion runs without the group's callback, so the AWS session is built from the global options
already typed on the line (or boto3's configuration). Any error completes nothing.
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem

from .session import AwsSession

LIMIT = 200


def _session(ctx: click.Context) -> AwsSession:
    root = ctx.find_root().params
    return AwsSession(
        region=root.get("region"), profile=root.get("profile"), endpoint_url=root.get("endpoint_url")
    )


def secret_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        sm: Any = _session(ctx).client("secretsmanager")
        kwargs: dict[str, Any] = {"MaxResults": 100}
        if incomplete:
            kwargs["Filters"] = [{"Key": "name", "Values": [incomplete]}]
        names: list[str] = []
        for page in sm.get_paginator("list_secrets").paginate(**kwargs):
            names += [s["Name"] for s in page.get("SecretList", []) if s["Name"].startswith(incomplete)]
            if len(names) >= LIMIT:
                break
    except Exception:  # completion must never print an error into the shell
        return []
    return [CompletionItem(n) for n in sorted(names)[:LIMIT]]


def parameter_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        ssm: Any = _session(ctx).client("ssm")
        kwargs: dict[str, Any] = {"MaxResults": 50}
        if incomplete:
            kwargs["ParameterFilters"] = [{"Key": "Name", "Option": "BeginsWith", "Values": [incomplete]}]
        names: list[str] = []
        for page in ssm.get_paginator("describe_parameters").paginate(**kwargs):
            names += [p["Name"] for p in page.get("Parameters", [])]
            if len(names) >= LIMIT:
                break
    except Exception:
        return []
    return [CompletionItem(n) for n in sorted(names)[:LIMIT]]
