"""Reading a parameter's complete state in one region.

One ``GetParameterHistory`` (with decryption, 50 versions a page; at most 100 versions are
kept, so at most 2 pages) gives the current value and every attribute of the latest version
plus the labels of all versions; one ``ListTagsForResource`` gives the tags. That is the
minimum: no SSM API returns labels or tags in bulk.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from rotation_handlers.replication.retry import RetryPolicy, error_code

_NOT_FOUND = {"ParameterNotFound", "InvalidResourceId", "ParameterVersionNotFound"}


@dataclass(frozen=True)
class Version:
    number: int
    value: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParameterState:
    """Everything the replicator copies. ``repr`` never shows values."""

    name: str
    type: str
    value: str = field(repr=False)
    version: int = 1
    description: str = ""
    allowed_pattern: str = ""
    tier: str = "Standard"
    data_type: str = "text"
    key_id: str | None = None
    policies: tuple[str, ...] = ()  # canonical JSON text of each policy, sorted
    tags: Mapping[str, str] = field(default_factory=dict)
    history: tuple[Version, ...] = field(default=(), repr=False)

    @property
    def labels(self) -> dict[str, Version]:
        """Label -> the version that carries it."""
        return {label: v for v in self.history for label in v.labels}

    def versions_holding(self, value: str) -> list[int]:
        """Version numbers whose value equals ``value``, newest first."""
        return sorted((v.number for v in self.history if v.value == value), reverse=True)


def canonical_policy(text: str) -> str:
    """Canonical JSON text of one parameter policy (AWS returns JSON; moto a Python repr)."""
    try:
        obj = json.loads(text)
    except (TypeError, ValueError):
        try:
            obj = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def policies_payload(policies: tuple[str, ...]) -> str:
    """The ``Policies`` argument of PutParameter for canonical policies (``[]`` clears)."""
    return json.dumps([json.loads(p) for p in policies], separators=(",", ":"))


def _policies(raw: Any) -> tuple[str, ...]:
    out = []
    for item in raw or []:
        text = item.get("PolicyText") if isinstance(item, Mapping) else None
        if isinstance(text, str) and text:
            out.append(canonical_policy(text))
    return tuple(sorted(out))


def from_history(name: str, history: list[dict[str, Any]], tags: Mapping[str, str]) -> ParameterState:
    entries = sorted(history, key=lambda h: int(h["Version"]))
    latest = entries[-1]
    return ParameterState(
        name=name,
        type=latest["Type"],
        value=latest.get("Value", ""),
        version=int(latest["Version"]),
        description=latest.get("Description") or "",
        allowed_pattern=latest.get("AllowedPattern") or "",
        tier=latest.get("Tier") or "Standard",
        data_type=latest.get("DataType") or "text",
        key_id=latest.get("KeyId") if latest["Type"] == "SecureString" else None,
        policies=_policies(latest.get("Policies")),
        tags=dict(tags),
        history=tuple(
            Version(int(h["Version"]), h.get("Value", ""), tuple(h.get("Labels") or ())) for h in entries
        ),
    )


def read_parameter(
    ssm: Any, name: str, retry: RetryPolicy, *, with_tags: bool = True
) -> ParameterState | None:
    """Current state of ``name`` in the region of ``ssm``; ``None`` if it does not exist.

    ``with_tags=False`` skips ``ListTagsForResource`` (the state then has no tags): for label checks.
    """
    history: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Name": name, "WithDecryption": True, "MaxResults": 50}
    try:
        while True:
            page = retry.call(ssm.get_parameter_history, **kwargs)
            history.extend(page.get("Parameters") or [])
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        if not history:
            return None
        if not with_tags:
            return from_history(name, history, {})
        tags = retry.call(ssm.list_tags_for_resource, ResourceType="Parameter", ResourceId=name)
    except ClientError as exc:
        if error_code(exc) in _NOT_FOUND:
            return None
        raise
    return from_history(name, history, {t["Key"]: t["Value"] for t in tags.get("TagList") or []})
