"""Scheduled full sync: every included source parameter, in every target region.

Catches what CloudTrail/EventBridge never delivered, and replicas whose source was deleted
(including by an expiration policy, which emits no API call). Dry run plans and reports
but writes nothing.

API calls: the source listing is ``DescribeParameters`` (50 a page); per parameter and
region, one ``GetParameterHistory`` + one ``ListTagsForResource`` (no bulk API returns tags
or labels); stale replicas are found per region with one ``DescribeParameters`` filtered on
the marker tag.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rotation_handlers.replication.config import MARKER_TAG_KEY
from rotation_handlers.replication.engine import Engine, Result
from rotation_handlers.replication.retry import error_code
from rotation_handlers.replication.state import ParameterState

CHUNK = 50


def _describe(engine: Engine, region: str, filters: list[dict[str, Any]]) -> Iterator[str]:
    ssm = engine.ssm_factory(region)
    kwargs: dict[str, Any] = {"MaxResults": 50}
    if filters:
        kwargs["ParameterFilters"] = filters
    while True:
        page = engine.retry.call(ssm.describe_parameters, **kwargs)
        for item in page.get("Parameters") or []:
            yield item["Name"]
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def list_source_names(engine: Engine) -> list[str]:
    """All included parameter names in the source region (one listing pass per 50 prefixes)."""
    config = engine.config
    if "/" in config.include_paths:
        filter_sets: list[list[dict[str, Any]]] = [[]]
    else:
        prefixes: list[str] = []
        for path in config.include_paths:
            prefixes.append(path)
            if path.strip("/") and "/" not in path.strip("/"):
                prefixes.append(path.strip("/"))  # root-level names without a leading slash
        unique = list(dict.fromkeys(prefixes))
        filter_sets = [
            [{"Key": "Name", "Option": "BeginsWith", "Values": unique[i : i + 50]}]
            for i in range(0, len(unique), 50)
        ]
    names: set[str] = set()
    for filters in filter_sets:
        names.update(n for n in _describe(engine, config.source_region, filters) if config.is_included(n))
    return sorted(names)


def list_managed_replicas(engine: Engine, region: str) -> list[str]:
    """Parameters in ``region`` that carry this replicator's marker tag for our source region."""
    filters = [{"Key": f"tag:{MARKER_TAG_KEY}", "Option": "Equals", "Values": [engine.config.source_region]}]
    return sorted(set(_describe(engine, region, filters)))


def reconcile(engine: Engine) -> dict[str, Any]:
    config = engine.config
    regions = config.target_regions
    names = list_source_names(engine)

    # Snapshot the managed replicas first (before this run writes anything), all regions at once.
    def managed(region: str) -> tuple[str, list[str] | None]:
        try:
            return region, list_managed_replicas(engine, region)
        except Exception as exc:
            engine.record(Result("*", region, "failed", "listing replicas failed", error=error_code(exc)))
            return region, None

    with ThreadPoolExecutor(len(regions), thread_name_prefix="reconcile-list") as pool:
        replicas = dict(pool.map(managed, regions))

    def read(name: str) -> tuple[str, ParameterState | None, str | None]:
        try:
            return name, engine.read_source(name), None
        except Exception as exc:
            return name, None, error_code(exc)

    futures: list[Future[Result]] = []
    present = set(names)
    pools = {r: ThreadPoolExecutor(config.concurrency, thread_name_prefix=f"reconcile-{r}") for r in regions}
    try:
        with ThreadPoolExecutor(config.concurrency, thread_name_prefix="reconcile-source") as source_pool:
            for start in range(0, len(names), CHUNK):
                for name, state, error in source_pool.map(read, names[start : start + CHUNK]):
                    if error:
                        for region in regions:
                            engine.record(Result(name, region, "failed", "source read failed", error=error))
                        continue
                    if state is None:  # deleted since listing: handled as a delete below
                        present.discard(name)
                        continue
                    for region in regions:
                        futures.append(pools[region].submit(engine.sync_pair, region, name, state))

            # Replicas whose source is gone (deleted, expired by policy, or missed delete events);
            # replicas under paths that are excluded now are left alone.
            stale = {
                region: [n for n in listed if n not in present and config.is_included(n)]
                for region, listed in replicas.items()
                if listed is not None
            }
            confirm = sorted({n for listed in stale.values() for n in listed})
            # Re-read each: it may have been created since the listing.
            sources = {name: (state, error) for name, state, error in source_pool.map(read, confirm)}
            for region, listed in stale.items():
                for name in listed:
                    state, error = sources[name]
                    if error:
                        engine.record(Result(name, region, "failed", "source read failed", error=error))
                        continue
                    futures.append(pools[region].submit(engine.sync_pair, region, name, state))
        for future in futures:
            future.result()
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True)
    changes, truncated = engine.changes()
    return engine.summary(
        mode="reconcile", parameters=len(names), changes=changes, changesTruncated=truncated
    )
