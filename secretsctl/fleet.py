"""Rotation health across accounts: assume a read-only role per account and region, concurrently.

Each (account, region) is read with its own assumed-role session (STS AssumeRole, 15 minutes, the
role ARN ``arn:<partition>:iam::<account>:role/<name>``) through ListSecrets only: no value is read.
https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from . import health, inventory
from .errors import CliError
from .session import CLIENT_CONFIG, AwsSession

ACCOUNT = re.compile(r"^\d{12}$")
SESSION_NAME = "secretsctl-status"


@dataclass
class Target:
    account: str
    region: str
    secrets: list[tuple[inventory.SecretInfo, list[health.Finding]]] = field(default_factory=list)
    error: str | None = None


def read_accounts(path: str) -> list[str]:
    """Account ids, one per line (``#`` comments and text after the id ignored)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    accounts = []
    for number, line in enumerate(lines, 1):
        word = line.split("#", 1)[0].strip().split()
        if not word:
            continue
        if not ACCOUNT.match(word[0]):
            raise CliError(f"{path} line {number}: {word[0]!r} is not a 12-digit account id")
        accounts.append(word[0])
    if not accounts:
        raise CliError(f"{path} names no account")
    return list(dict.fromkeys(accounts))


def organization_accounts(aws: AwsSession) -> list[str]:
    """The ACTIVE accounts of the organization (ListAccounts, from the management or delegated account)."""
    org = aws.client("organizations")
    found = []
    for page in org.get_paginator("list_accounts").paginate():
        found += [a["Id"] for a in page.get("Accounts", []) if a.get("Status", "ACTIVE") == "ACTIVE"]
    return found


def _read(aws: AwsSession, role_arn: str, target: Target, max_age_days: int) -> Target:
    sts = aws.client("sts")
    try:
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME, DurationSeconds=900)[
            "Credentials"
        ]
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        kwargs: dict[str, Any] = {"region_name": target.region, "config": CLIENT_CONFIG}
        if aws.endpoint_url:
            kwargs["endpoint_url"] = aws.endpoint_url
        sm = session.client("secretsmanager", **kwargs)
        for info in inventory.list_all(sm):
            target.secrets.append((info, health.assess(info, max_age_days=max_age_days)))
    except Exception as exc:  # one account failing is reported in its row; the fleet goes on
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        target.error = code or type(exc).__name__
    return target


def read_fleet(
    aws: AwsSession,
    accounts: list[str],
    regions: list[str],
    role: str,
    *,
    max_age_days: int,
    concurrency: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Target]:
    partition = "aws"
    targets = [Target(a, r) for a in accounts for r in regions]
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(targets)))) as pool:
        futures = [
            pool.submit(_read, aws, f"arn:{partition}:iam::{t.account}:role/{role}", t, max_age_days)
            for t in targets
        ]
        for _ in as_completed(futures):
            done += 1
            if progress is not None:
                progress(done, len(targets))
    return targets


def terminal_progress() -> Callable[[int, int], None] | None:
    """A one-line progress counter on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} account-regions")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show
