"""Cheap pass of reconcile: a compact fingerprint of every included parameter in one region.

Batched reads only, streamed page by page:

* ``DescribeParameters`` (50 a page; ``Name BeginsWith`` filters for ``REPLICATE_PATHS``):
  name, type, KMS key, tier, description, allowed pattern, data type, policies, last change.
* ``GetParameters`` (10 names a call, with decryption): the values of the names of that page.
* Tags in bulk with the Resource Groups Tagging API (``tag:GetResources``, resource type
  ``ssm:parameter``, 100 a page), which lists tagged (and previously tagged) parameters; a
  parameter it does not list has no tags. With ``RECONCILE_BULK_TAGS=false``, one
  ``ListTagsForResource`` per parameter instead.

A target region that was listed in full and found in sync is not listed again until the next
deep-check cycle (:func:`~.reconcile.reconcile`): :func:`index_names` reads the source's names
there with ``GetParameters`` (10 a call, whatever DescribeParameters' page sizes) and takes the
replicas and their tags from the tag index. Its description, pattern, policies, tier and KMS key
are then unknown (``Entry.meta is None``); :func:`drift` sends every replica changed since that
listing (``LastModifiedDate`` later: every PutParameter sets it) or without the marker to the
exact per-parameter sync.

No value, description or tag is kept: an :class:`Entry` holds a digest of everything the
replicator copies plus the few fields compared region-specifically (tier, KMS key, last
change). The tagging API is eventually consistent: a stale answer only makes a parameter look
drifted (then the precise per-parameter sync reads it and finds nothing to do) or hides a
tag change until the next run; it never causes a wrong write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
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
    digest: bytes  # value, type, data type, user tags (GetParameters and the tag index)
    #: description, allowed pattern, policies (DescribeParameters); None: the region was not listed
    meta: bytes | None
    tier: str | None
    key_id: str | None
    modified: float  # LastModifiedDate, epoch seconds
    marker: str | None  # the replicator's marker tag (source region), if any
    skip: str = ""  # why a source parameter is not replicated (replica of another region, AMI id)


def _hash(payload: Any) -> bytes:
    return hashlib.blake2b(json.dumps(payload, separators=(",", ":")).encode(), digest_size=16).digest()


def _digest(param: Mapping[str, Any], meta: Mapping[str, Any] | None, user_tags: Mapping[str, str]) -> bytes:
    meta = meta or {}
    data_type = param.get("DataType") or meta.get("DataType") or "text"
    return _hash(
        [param.get("Value", ""), param.get("Type", meta.get("Type")), data_type, sorted(user_tags.items())]
    )


def _meta_digest(meta: Mapping[str, Any]) -> bytes:
    return _hash(
        [
            meta.get("Description") or "",
            meta.get("AllowedPattern") or "",
            list(_policies(meta.get("Policies"))),
        ]
    )


def _modified(item: Mapping[str, Any]) -> float:
    stamp = item.get("LastModifiedDate")
    return stamp.timestamp() if stamp is not None else 0.0


def make_entry(
    config: ReplicationConfig,
    region: str,
    param: Mapping[str, Any],
    meta: Mapping[str, Any] | None,
    tags: Mapping[str, str],
) -> Entry:
    """An :class:`Entry` from a GetParameters item, its DescribeParameters item (``None``: not
    listed) and its tags."""
    marker = tags.get(MARKER_TAG_KEY)
    listed = meta is not None
    return Entry(
        digest=_digest(param, meta, replicated_tags(tags)),
        meta=_meta_digest(meta) if meta is not None else None,
        tier=(meta.get("Tier") or "Standard") if meta is not None else None,
        key_id=meta.get("KeyId") if listed and meta.get("Type") == "SecureString" else None,
        modified=_modified(meta if meta is not None else param),
        marker=marker,
        skip=source_skip(config, meta, marker) if listed and region == config.source_region else "",
    )


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
    return index_region_pages(engine, region)[0]


def index_region_pages(engine: Engine, region: str) -> tuple[dict[str, Entry], int]:
    """:func:`index_region`, and the number of DescribeParameters calls the listing took."""
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
            out[name] = make_entry(
                config, region, {**param, "Type": param.get("Type", meta.get("Type"))}, meta, tags
            )
        for name in batch:
            metas.pop(name, None)

    # DescribeParameters may return fewer than MaxResults a page ("The service may return fewer
    # results"; https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeParameters.html):
    # names are gathered across pages so that every GetParameters call reads a full batch of 10.
    pages = 0
    for filters in name_filters(config):
        for page in describe_pages(engine, region, filters):
            pages += 1
            metas.update((m["Name"], m) for m in page if config.is_included(m["Name"]))
            while len(metas) >= GET_PARAMETERS_BATCH:
                read_values(list(metas)[:GET_PARAMETERS_BATCH])
    while metas:
        read_values(list(metas)[:GET_PARAMETERS_BATCH])
    return out, pages


def index_names(engine: Engine, region: str, names: Iterable[str]) -> dict[str, Entry]:
    """Fingerprints of ``names`` in a target region without listing it: ``GetParameters``, 10 names
    a call (a name that does not exist comes back in ``InvalidParameters``: left out), and the
    region's replicas from the tag index. The entries have no listed attributes (``meta`` None).

    Also reads the region's replicas from this source (marker tag) that are not in ``names``: the
    stale candidates, so that only replicas that still exist are reported stale.
    """
    config = engine.config
    ssm = engine.ssm_factory(region)
    tags_by_name = bulk_tags(engine, region)
    wanted = list(dict.fromkeys(names))
    known = set(wanted)
    wanted += sorted(
        n
        for n, tags in tags_by_name.items()
        if tags.get(MARKER_TAG_KEY) == config.source_region and n not in known and config.is_included(n)
    )
    out: dict[str, Entry] = {}
    for i in range(0, len(wanted), GET_PARAMETERS_BATCH):
        got = engine.retry.call(
            ssm.get_parameters, Names=wanted[i : i + GET_PARAMETERS_BATCH], WithDecryption=True
        )
        for param in got.get("Parameters") or []:
            out[param["Name"]] = make_entry(config, region, param, None, tags_by_name.get(param["Name"], {}))
    return out


def list_metas(engine: Engine, region: str) -> tuple[dict[str, Mapping[str, Any]], int]:
    """DescribeParameters items of the included parameters in ``region``, and the pages it took."""
    config = engine.config
    out: dict[str, Mapping[str, Any]] = {}
    pages = 0
    for filters in name_filters(config):
        for page in describe_pages(engine, region, filters):
            pages += 1
            out.update((m["Name"], m) for m in page if config.is_included(m["Name"]))
    return out, pages


def with_metas(entry: Entry, meta: Mapping[str, Any] | None) -> Entry:
    """``entry`` (read by name) completed with its DescribeParameters item (``None``: deleted since)."""
    if meta is None:
        return entry
    return replace(
        entry,
        meta=_meta_digest(meta),
        tier=meta.get("Tier") or "Standard",
        key_id=meta.get("KeyId") if meta.get("Type") == "SecureString" else None,
        modified=_modified(meta),
    )


#: Reasons of a replica read by name that the cheap pass cannot clear (its listed attributes are
#: unknown): it is synced exactly, as a drifted one is.
UNLISTED_UNMANAGED = "not a replica (attributes not listed)"
UNLISTED_CHANGED = "changed in the target since it was last listed"
UNLISTED = frozenset({UNLISTED_UNMANAGED, UNLISTED_CHANGED})


def drift(
    source: Entry, target: Entry | None, region: str, config: ReplicationConfig, since: float | None = None
) -> str:
    """Why the replica differs from the source as far as the cheap pass can see ("" = in sync).

    ``target.meta is None`` (read by name, the region not listed this run): its description,
    pattern, policies, tier and KMS key are taken as they were when the region was last listed in
    full and found in sync (at ``since``), unless it changed since then (``LastModifiedDate``
    later: every PutParameter sets it) or does not carry the replicator's marker.
    """
    if target is None:
        return "missing"
    if source.digest != target.digest:
        return "differs"
    if target.meta is not None:
        if source.meta != target.meta:
            return "differs"
        if source.tier == "Advanced" and target.tier != "Advanced":
            return "tier"
        if source.key_id is not None and not key_matches(target.key_id, config.kms_key_for(region)):
            return "kms_key"
    if source.modified > target.modified:
        return "source changed after the replica"  # e.g. same value written again
    if target.meta is None:
        if target.marker != config.source_region:
            return UNLISTED_UNMANAGED
        if since is None or target.modified > since:
            return UNLISTED_CHANGED
    return ""
