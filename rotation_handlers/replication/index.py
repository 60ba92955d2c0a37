"""Cheap pass of reconcile: a compact fingerprint of every included parameter in one region.

Batched reads only, streamed page by page:

* ``DescribeParameters`` (50 a page; ``Name BeginsWith`` filters for ``REPLICATE_PATHS``):
  name, type, KMS key, tier, description, allowed pattern, data type, policies, last change.
* ``GetParameters`` (10 names a call, with decryption): the values of the names of that page.
* Tags in bulk with the Resource Groups Tagging API (``tag:GetResources``, resource type
  ``ssm:parameter``, 100 a page), which lists tagged (and previously tagged) parameters; a
  parameter it does not list has no tags. With ``RECONCILE_BULK_TAGS=false``, one
  ``ListTagsForResource`` per parameter instead.

No value, description or tag is kept: an :class:`Entry` holds a digest of everything the
replicator copies plus the few fields compared region-specifically (tier, KMS key, last
change). The tagging API is eventually consistent: a stale answer only makes a parameter look
drifted (then the precise per-parameter sync reads it and finds nothing to do) or hides a
tag change until the next run; it never causes a wrong write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rotation_handlers.replication.config import MARKER_TAG_KEY, ReplicationConfig, replicated_tags
from rotation_handlers.replication.events import parameter_names
from rotation_handlers.replication.state import _policies
from rotation_handlers.replication.sync import EC2_IMAGE_DATA_TYPE, key_matches

if TYPE_CHECKING:
    from rotation_handlers.replication.engine import Engine

GET_PARAMETERS_BATCH = 10
TAGS_PAGE = 100


@dataclass(frozen=True, slots=True)
class Entry:
    digest: bytes  # value, type, description, allowed pattern, data type, policies, user tags
    tier: str
    key_id: str | None
    modified: float  # LastModifiedDate, epoch seconds
    marker: str | None  # the replicator's marker tag (source region), if any
    skip: str = ""  # why a source parameter is not replicated (replica of another region, AMI id)


def _digest(meta: Mapping[str, Any], value: str, user_tags: Mapping[str, str]) -> bytes:
    payload = json.dumps(
        [
            value,
            meta.get("Type"),
            meta.get("Description") or "",
            meta.get("AllowedPattern") or "",
            meta.get("DataType") or "text",
            list(_policies(meta.get("Policies"))),
            sorted(user_tags.items()),
        ],
        separators=(",", ":"),
    )
    return hashlib.blake2b(payload.encode(), digest_size=16).digest()


def name_filters(config: ReplicationConfig) -> list[list[dict[str, Any]]]:
    """``DescribeParameters`` filter sets covering ``REPLICATE_PATHS`` (50 prefixes a set)."""
    if "/" in config.include_paths:
        return [[]]
    prefixes: list[str] = []
    for path in config.include_paths:
        prefixes.append(path)
        if path.strip("/") and "/" not in path.strip("/"):
            prefixes.append(path.strip("/"))  # root-level names without a leading slash
    unique = list(dict.fromkeys(prefixes))
    return [
        [{"Key": "Name", "Option": "BeginsWith", "Values": unique[i : i + 50]}]
        for i in range(0, len(unique), 50)
    ]


def describe_pages(
    engine: Engine, region: str, filters: list[dict[str, Any]]
) -> Iterator[list[dict[str, Any]]]:
    ssm = engine.ssm_factory(region)
    kwargs: dict[str, Any] = {"MaxResults": 50}
    if filters:
        kwargs["ParameterFilters"] = filters
    while True:
        page = engine.retry.call(ssm.describe_parameters, **kwargs)
        yield page.get("Parameters") or []
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def bulk_tags(engine: Engine, region: str) -> dict[str, dict[str, str]]:
    """Name -> tags of the tagged parameters in ``region`` that matter (``tag:GetResources``, 100 a page).

    In the source region: every tagged parameter. In a target: the replicas from this source.
    """
    tagging = engine.client_factory("resourcegroupstaggingapi", region)
    kwargs: dict[str, Any] = {"ResourceTypeFilters": ["ssm:parameter"], "ResourcesPerPage": TAGS_PAGE}
    if region != engine.config.source_region:
        # In a target, only the replicator's own replicas matter (all carry the marker tag): the
        # region's other tagged parameters are not paged through. A parameter this leaves out
        # looks untagged; if that makes it look drifted, its per-parameter sync reads it exactly.
        kwargs["TagFilters"] = [{"Key": MARKER_TAG_KEY, "Values": [engine.config.source_region]}]
    out: dict[str, dict[str, str]] = {}
    while True:
        page = engine.retry.call(tagging.get_resources, **kwargs)
        for item in page.get("ResourceTagMappingList") or []:
            tags = {t["Key"]: t["Value"] for t in item.get("Tags") or []}
            for name in parameter_names(item.get("ResourceARN") or ""):
                out[name] = tags  # a root-level ARN names "foo" and "/foo": only one exists
        token = page.get("PaginationToken")
        if not token:
            return out
        kwargs["PaginationToken"] = token


def source_skip(config: ReplicationConfig, meta: Mapping[str, Any], marker: str | None) -> str:
    if marker and marker != config.source_region:
        return f"replica from {marker}"
    if meta.get("DataType") == EC2_IMAGE_DATA_TYPE and not config.copy_ec2_image:
        return "aws:ec2:image"
    return ""


def index_region(engine: Engine, region: str) -> dict[str, Entry]:
    """Fingerprints of the included parameters in ``region`` (see module docstring)."""
    config = engine.config
    ssm = engine.ssm_factory(region)
    tags_by_name = bulk_tags(engine, region) if config.bulk_tags else None
    out: dict[str, Entry] = {}
    metas: dict[str, Mapping[str, Any]] = {}  # described, values not read yet

    def read_values(batch: list[str]) -> None:
        got = engine.retry.call(ssm.get_parameters, Names=batch, WithDecryption=True)
        for param in got.get("Parameters") or []:  # deleted since described: left out
            name = param["Name"]
            meta = metas.pop(name)
            if tags_by_name is not None:
                tags = tags_by_name.get(name, {})
            else:
                listed = engine.retry.call(
                    ssm.list_tags_for_resource, ResourceType="Parameter", ResourceId=name
                )
                tags = {t["Key"]: t["Value"] for t in listed.get("TagList") or []}
            marker = tags.get(MARKER_TAG_KEY)
            modified = meta.get("LastModifiedDate")
            out[name] = Entry(
                digest=_digest(
                    {**meta, "Type": param.get("Type", meta.get("Type"))},
                    param.get("Value", ""),
                    replicated_tags(tags),
                ),
                tier=meta.get("Tier") or "Standard",
                key_id=meta.get("KeyId") if meta.get("Type") == "SecureString" else None,
                modified=modified.timestamp() if modified is not None else 0.0,
                marker=marker,
                skip=source_skip(config, meta, marker) if region == config.source_region else "",
            )
        for name in batch:
            metas.pop(name, None)

    # DescribeParameters may return fewer than MaxResults a page ("The service may return fewer
    # results"; https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeParameters.html):
    # names are gathered across pages so that every GetParameters call reads a full batch of 10.
    for filters in name_filters(config):
        for page in describe_pages(engine, region, filters):
            metas.update((m["Name"], m) for m in page if config.is_included(m["Name"]))
            while len(metas) >= GET_PARAMETERS_BATCH:
                read_values(list(metas)[:GET_PARAMETERS_BATCH])
    while metas:
        read_values(list(metas)[:GET_PARAMETERS_BATCH])
    return out


def drift(source: Entry, target: Entry | None, region: str, config: ReplicationConfig) -> str:
    """Why the replica differs from the source as far as the cheap pass can see ("" = in sync)."""
    if target is None:
        return "missing"
    if source.digest != target.digest:
        return "differs"
    if source.tier == "Advanced" and target.tier != "Advanced":
        return "tier"
    if source.key_id is not None and not key_matches(target.key_id, config.kms_key_for(region)):
        return "kms_key"
    if source.modified > target.modified:
        return "source changed after the replica"  # e.g. same value written again
    return ""
