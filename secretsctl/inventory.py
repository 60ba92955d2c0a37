"""What the CLI knows about a secret, from DescribeSecret / ListSecrets (never its value)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import CliError

STAGES = ("AWSCURRENT", "AWSPREVIOUS", "AWSPENDING")


@dataclass
class SecretInfo:
    name: str
    arn: str
    rotation_enabled: bool
    rotation_lambda_arn: str | None
    rotation_rules: dict[str, Any]
    last_rotated: datetime | None
    next_rotation: datetime | None
    last_changed: datetime | None
    created: datetime | None
    deleted: datetime | None
    kms_key: str | None
    #: version id -> staging labels; versions without a label are left out (AWS hides them).
    versions: dict[str, list[str]] = field(default_factory=dict)
    replicas: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> SecretInfo:
        stages = d.get("VersionIdsToStages") or d.get("SecretVersionsToStages") or {}
        return cls(
            name=d["Name"],
            arn=d["ARN"],
            rotation_enabled=bool(d.get("RotationEnabled", False)),
            rotation_lambda_arn=d.get("RotationLambdaARN") or None,
            rotation_rules=dict(d.get("RotationRules") or {}),
            last_rotated=d.get("LastRotatedDate"),
            next_rotation=d.get("NextRotationDate"),
            last_changed=d.get("LastChangedDate"),
            created=d.get("CreatedDate"),
            deleted=d.get("DeletedDate"),
            kms_key=d.get("KmsKeyId"),
            versions={v: list(labels) for v, labels in stages.items() if labels},
            replicas=[r.get("Region", "") for r in d.get("ReplicationStatus") or []],
            tags={t["Key"]: t.get("Value", "") for t in d.get("Tags") or []},
        )

    @property
    def rotation_function(self) -> str | None:
        """The rotation Lambda's name (the last part of its ARN)."""
        return self.rotation_lambda_arn.rsplit(":", 1)[-1] if self.rotation_lambda_arn else None

    def version_with(self, stage: str) -> str | None:
        return next((v for v, labels in self.versions.items() if stage in labels), None)

    @property
    def stale_pending(self) -> str | None:
        """The version holding AWSPENDING when it is not also AWSCURRENT: a rotation is unfinished.

        AWS refuses a new RotateSecret in that state ("A previous rotation isn't complete").
        """
        pending = self.version_with("AWSPENDING")
        if pending is None or "AWSCURRENT" in self.versions.get(pending, []):
            return None
        return pending


def describe(sm: Any, secret_id: str) -> SecretInfo:
    return SecretInfo.from_api(sm.describe_secret(SecretId=secret_id))


def list_all(
    sm: Any,
    text: str | None = None,
    *,
    include_deleted: bool = False,
    api_filters: list[dict[str, Any]] | None = None,
) -> list[SecretInfo]:
    """Every secret (ListSecrets, paginated; never a value), optionally only those whose name contains
    ``text``. ``api_filters`` are ListSecrets ``Filters`` (evaluated by AWS); ``include_deleted`` adds the
    secrets scheduled for deletion (``IncludePlannedDeletion``, which ListSecrets leaves out by default:
    https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecrets.html)."""
    kwargs: dict[str, Any] = {}
    if include_deleted:
        kwargs["IncludePlannedDeletion"] = True
    if api_filters:
        kwargs["Filters"] = api_filters
    found = []
    for page in sm.get_paginator("list_secrets").paginate(**kwargs):
        for d in page.get("SecretList", []):
            if text and text.lower() not in d["Name"].lower():
                continue
            found.append(SecretInfo.from_api(d))
    return sorted(found, key=lambda s: s.name)


def resolve_version(info: SecretInfo, ref: str) -> str:
    """A version id from a staging label (AWS's or a custom one), a full version id, or a unique prefix
    of at least 8 characters of a labelled version's id."""
    if ref.upper() in STAGES:
        version = info.version_with(ref.upper())
        if version is None:
            raise CliError(f"{info.name} has no version labelled {ref.upper()}")
        return version
    labelled = info.version_with(ref)  # a custom staging label
    if labelled is not None:
        return labelled
    if ref in info.versions:
        return ref
    matches = [v for v in info.versions if len(ref) >= 8 and v.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(ref) >= 32:
        # A full version id without a label: DescribeSecret leaves such versions out, GetSecretValue
        # still returns them while AWS keeps them.
        return ref
    raise CliError(f"{info.name} has no version {ref!r} (see `secretsctl secret versions {info.name}`)")


def get_value(sm: Any, secret_id: str, version_id: str) -> tuple[str | None, bytes | None]:
    got = sm.get_secret_value(SecretId=secret_id, VersionId=version_id)
    return got.get("SecretString"), got.get("SecretBinary")
