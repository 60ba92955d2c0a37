"""Parameter Store changes in the source region, replicated by our handler, compared region by region.

Each change is a real boto3 call against moto; the replication handler then gets the
CloudTrail-shaped EventBridge event that call would produce on AWS (moto emits none).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from devtools.aws import ApiCounter
from devtools.localrun_events import cloudtrail_event

SOURCE = "eu-west-1"
TARGETS = ("eu-central-1", "us-east-1")
REPLICATE_PATHS = ("/app/", "/shared/")
EXCLUDE_PATHS = ("/app/local/",)
KMS_KEYS = {"eu-central-1": "alias/ssm-replicas"}
DEFAULT_KEY = "alias/aws/ssm"
REPLICATOR_ROLE_ARN = "arn:aws:iam::123456789012:role/ssm-replicator"


def replication_env() -> dict[str, str]:
    import json

    return {
        "AWS_REGION": SOURCE,
        "AWS_DEFAULT_REGION": SOURCE,
        "REPLICA_REGIONS": ",".join(TARGETS),
        "REPLICATE_PATHS": ",".join(REPLICATE_PATHS),
        "EXCLUDE_PATHS": ",".join(EXCLUDE_PATHS),
        "REPLICA_KMS_KEYS": json.dumps(KMS_KEYS),
        "REPLICATOR_ROLE_ARN": REPLICATOR_ROLE_ARN,
    }


@contextmanager
def _env() -> Iterator[None]:
    with mock.patch.dict(os.environ, replication_env()):
        yield


def _tags(**tags: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


@dataclass(frozen=True)
class Change:
    what: str
    operation: str
    kwargs: dict[str, Any]


def scenario(values: dict[str, str]) -> list[Change]:
    """The Parameter Store changes the local run makes (values come from ``values``, never printed)."""
    host, hosts, key, key2, flag = (values[k] for k in ("host", "hosts", "key", "key2", "flag"))
    return [
        Change(
            "create String with tags",
            "PutParameter",
            dict(
                Name="/app/orders/db-host",
                Value=host,
                Type="String",
                Description="orders database host",
                Tags=_tags(team="orders", env="demo"),
            ),
        ),
        Change(
            "create StringList",
            "PutParameter",
            dict(Name="/app/orders/allowed-hosts", Value=hosts, Type="StringList", Tags=_tags(team="orders")),
        ),
        Change(
            "create SecureString",
            "PutParameter",
            dict(
                Name="/app/orders/api-key",
                Value=key,
                Type="SecureString",
                KeyId=DEFAULT_KEY,
                Tags=_tags(team="orders", classification="confidential"),
            ),
        ),
        Change(
            "create String (shared path)",
            "PutParameter",
            dict(Name="/shared/flags/new-checkout", Value=flag, Type="String", Tags=_tags(team="web")),
        ),
        Change(
            "create String (excluded path)",
            "PutParameter",
            dict(Name="/app/local/scratch", Value="scratch", Type="String"),
        ),
        Change(
            "create temporary String",
            "PutParameter",
            dict(Name="/shared/tmp/a", Value="a", Type="String"),
        ),
        Change(
            "create temporary String", "PutParameter", dict(Name="/shared/tmp/b", Value="b", Type="String")
        ),
        Change(
            "update String (new version)",
            "PutParameter",
            dict(Name="/app/orders/db-host", Value=host + ".internal", Type="String", Overwrite=True),
        ),
        Change(
            "label version 1 rollback",
            "LabelParameterVersion",
            dict(Name="/app/orders/db-host", ParameterVersion=1, Labels=["rollback"]),
        ),
        Change(
            "label version 2 stable",
            "LabelParameterVersion",
            dict(Name="/app/orders/db-host", ParameterVersion=2, Labels=["stable"]),
        ),
        Change(
            "update SecureString",
            "PutParameter",
            dict(
                Name="/app/orders/api-key", Value=key2, Type="SecureString", KeyId=DEFAULT_KEY, Overwrite=True
            ),
        ),
        Change(
            "add tags",
            "AddTagsToResource",
            dict(
                ResourceType="Parameter", ResourceId="/shared/flags/new-checkout", Tags=_tags(owner="growth")
            ),
        ),
        Change("delete StringList", "DeleteParameter", dict(Name="/app/orders/allowed-hosts")),
        Change("delete two at once", "DeleteParameters", dict(Names=["/shared/tmp/a", "/shared/tmp/b"])),
    ]


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


@dataclass
class EventResult:
    change: Change
    actions: dict[str, str]  # region -> what the handler did there
    ssm_calls: int
    seconds: float


def names_of(change: Change) -> list[str]:
    kw = change.kwargs
    return list(kw.get("Names") or [kw.get("Name") or kw.get("ResourceId")])


def apply_and_replicate(
    source: Any, change: Change, account: str, caller_arn: str, counter: ApiCounter
) -> EventResult:
    from rotation_handlers import replicate

    response = getattr(source, _snake(change.operation))(**change.kwargs)
    event = cloudtrail_event(
        change.operation, change.kwargs, response, region=SOURCE, account=account, caller_arn=caller_arn
    )
    calls = counter.total
    started = time.perf_counter()
    with _env():
        summary = replicate.handler(event, None)
    seconds = time.perf_counter() - started
    if summary.get("ignored"):
        actions = dict.fromkeys(TARGETS, f"ignored: {summary['ignored']}")
    else:
        actions = {
            region: ", ".join(f"{k}" + (f" {n}" if n != 1 else "") for k, n in counts.items()) or "-"
            for region, counts in summary.get("regions", {}).items()
        }
    return EventResult(change, actions, counter.total - calls, seconds)


def reconcile_dry_run() -> dict[str, Any]:
    from rotation_handlers import replicate

    with _env():
        return replicate.reconcile_handler({"dryRun": True}, None)


# -- comparing regions ---------------------------------------------------------------------------
def read_parameter(ssm: Any, name: str) -> dict[str, Any] | None:
    """Everything that should be replicated, read independently of the replicator's own code."""
    history: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Name": name, "WithDecryption": True, "MaxResults": 50}
    try:
        while True:
            page = ssm.get_parameter_history(**kwargs)
            history += page["Parameters"]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except ssm.exceptions.ParameterNotFound:
        return None
    latest = max(history, key=lambda h: h["Version"])
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    return {
        "Type": latest["Type"],
        "Value": latest["Value"],
        "Description": latest.get("Description", ""),
        "AllowedPattern": latest.get("AllowedPattern", ""),
        "Tier": latest.get("Tier", "Standard"),
        "DataType": latest.get("DataType", "text"),
        "KeyId": latest.get("KeyId") if latest["Type"] == "SecureString" else None,
        "Labels": {label: h["Value"] for h in history for label in h.get("Labels", [])},
        "Tags": {t["Key"]: t["Value"] for t in tags},
        "Version": latest["Version"],
    }


def all_names(ssm: Any) -> set[str]:
    names: set[str] = set()
    for page in ssm.get_paginator("describe_parameters").paginate():
        names.update(p["Name"] for p in page["Parameters"])
    return names


def included(name: str) -> bool:
    def under(prefix: str) -> bool:
        return name.startswith(prefix)

    return any(under(p) for p in REPLICATE_PATHS) and not any(under(p) for p in EXCLUDE_PATHS)


@dataclass
class RegionComparison:
    name: str
    source: str  # short description of the source state
    verdicts: dict[str, tuple[bool, str]]  # region -> (ok, text)


def compare(clients: dict[str, Any], names: set[str]) -> list[RegionComparison]:
    """Each target must hold exactly the included source parameters (marker tag and key aside)."""
    from rotation_handlers.replication.config import MARKER_TAG_KEY

    out: list[RegionComparison] = []
    for name in sorted(names):
        src = read_parameter(clients[SOURCE], name)
        if src is None:
            described = "deleted"
        else:
            described = f"{src['Type']} v{src['Version']}"
            if src["Labels"]:
                described += f", {len(src['Labels'])} label(s)"
            if not included(name):
                described += " (excluded)"
        verdicts: dict[str, tuple[bool, str]] = {}
        for region in TARGETS:
            dst = read_parameter(clients[region], name)
            if src is None or not included(name):
                verdicts[region] = (dst is None, "absent" if dst is None else "present (should be absent)")
                continue
            if dst is None:
                verdicts[region] = (False, "missing")
                continue
            diffs = [
                k
                for k in ("Type", "Value", "Description", "AllowedPattern", "Tier", "DataType", "Labels")
                if src[k] != dst[k]
            ]
            expected_tags = {**src["Tags"], MARKER_TAG_KEY: SOURCE}
            if dst["Tags"] != expected_tags:
                diffs.append("Tags")
            expected_key = KMS_KEYS.get(region, DEFAULT_KEY) if src["Type"] == "SecureString" else None
            if dst["KeyId"] != expected_key:
                diffs.append("KeyId")
            text = "match" if not diffs else "differs: " + ",".join(diffs)
            if not diffs and expected_key:
                text += f" (key {expected_key})"
            verdicts[region] = (not diffs, text)
        out.append(RegionComparison(name, described, verdicts))
    return out
