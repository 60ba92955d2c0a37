"""The AWS side of every command: a boto3 session, the caller's identity, the write banner.

Region, profile and endpoint default to boto3's own configuration (``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``, the config file), so the CLI
points wherever the AWS CLI would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import boto3
import click
from botocore.config import Config

from .errors import CliError, Refused

# Fail fast on an unreachable endpoint; an operator is waiting.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})


@dataclass
class Identity:
    account: str
    arn: str
    region: str


@dataclass
class AwsSession:
    """Lazily creates the boto3 session and clients; checks ``--expect-account`` before any call."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    expect_account: str | None = None
    _session: Any = field(default=None, repr=False)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _identity: Identity | None = field(default=None, repr=False)

    @property
    def session(self) -> Any:
        if self._session is None:
            try:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
            except Exception as exc:  # botocore.exceptions.ProfileNotFound and friends
                raise CliError(f"cannot set up the AWS session: {exc}") from None
        return self._session

    @property
    def region_name(self) -> str:
        # botocore reads AWS_DEFAULT_REGION; the AWS CLI v2 and the other SDKs also read AWS_REGION.
        region = self.session.region_name or os.environ.get("AWS_REGION")
        if not region:
            raise CliError("no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)")
        return str(region)

    def client(self, service: str, region: str | None = None) -> Any:
        """A client for ``service``; the first one made checks ``--expect-account``."""
        region = region or self.region_name
        key = (service, region)
        if key not in self._clients:
            if self.expect_account and service != "sts":
                self.check_account()
            kwargs: dict[str, Any] = {"region_name": region, "config": CLIENT_CONFIG}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            self._clients[key] = self.session.client(service, **kwargs)
        return self._clients[key]

    def identity(self) -> Identity:
        if self._identity is None:
            who = self.client("sts").get_caller_identity()
            self._identity = Identity(account=who["Account"], arn=who["Arn"], region=self.region_name)
        return self._identity

    def check_account(self) -> Identity:
        who = self.identity()
        if self.expect_account and who.account != self.expect_account:
            raise Refused(
                f"the credentials are for account {who.account}, not {self.expect_account} "
                "(--expect-account); nothing was done"
            )
        return who

    def banner(self, action: str) -> Identity:
        """Before every write: one line on stderr naming account, region and caller."""
        who = self.check_account()
        click.echo(
            f"secretsctl: {action} | account {who.account} | region {who.region} | caller {who.arn}",
            err=True,
        )
        return who
