"""Start-up refusal of a configuration that would delete originals.

With two-way replication (this region replicates to a target region, and that region
replicates back here), ``DELETE_UNMANAGED_REPLICAS=true`` is unsafe: when someone deletes the
*replica* of a parameter here, the original in the other region carries no marker tag for
this region (it is not our replica), the replica's own marker vanished with it, so "source
deleted" and "replica deleted" look alike, and the original would be deleted.

Evidence of the reverse direction: a parameter in this source region carrying the marker tag
of one of our target regions (a replica written by that region's replicator). The CDK stack
refuses the combination at synth; this check covers deployments it cannot see. It runs once
per container (cached for ``CACHE_SECONDS``) and again right before any unmanaged delete.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rotation_handlers.replication.config import MARKER_TAG_KEY, ConfigError, ReplicationConfig
from rotation_handlers.replication.retry import RetryPolicy

CACHE_SECONDS = 300.0
_lock = threading.Lock()
_checked: dict[tuple[str, tuple[str, ...]], float] = {}


def reverse_replica(config: ReplicationConfig, ssm: Any, retry: RetryPolicy) -> str | None:
    """Name of a parameter in the source region that is a replica from one of our targets, if any."""
    filters = [{"Key": f"tag:{MARKER_TAG_KEY}", "Option": "Equals", "Values": list(config.target_regions)}]
    kwargs: dict[str, Any] = {"MaxResults": 50, "ParameterFilters": filters}
    while True:
        page = retry.call(ssm.describe_parameters, **kwargs)
        for item in page.get("Parameters") or []:
            return str(item["Name"])
        token = page.get("NextToken")
        if not token:
            return None
        kwargs["NextToken"] = token


def refuse_two_way_delete_unmanaged(
    config: ReplicationConfig, ssm_factory: Callable[[str], Any], retry: RetryPolicy
) -> None:
    """Raise :class:`ConfigError` if ``DELETE_UNMANAGED_REPLICAS=true`` meets two-way replication."""
    if not config.delete_unmanaged:
        return
    found = reverse_replica(config, ssm_factory(config.source_region), retry)
    if found is None:
        return
    raise ConfigError(
        f"DELETE_UNMANAGED_REPLICAS=true with two-way replication: {found} in {config.source_region} "
        f"is a replica from a target region ({MARKER_TAG_KEY} tag), so a target region replicates back "
        "here; deleting a replica would then delete its original. Set DELETE_UNMANAGED_REPLICAS=false"
    )


def check_at_startup(
    config: ReplicationConfig, ssm_factory: Callable[[str], Any], retry: RetryPolicy
) -> None:
    """:func:`refuse_two_way_delete_unmanaged`, at most once per ``CACHE_SECONDS`` per configuration."""
    if not config.delete_unmanaged:
        return
    key = (config.source_region, config.target_regions)
    with _lock:
        if time.monotonic() - _checked.get(key, float("-inf")) < CACHE_SECONDS:
            return
    refuse_two_way_delete_unmanaged(config, ssm_factory, retry)
    with _lock:
        _checked[key] = time.monotonic()


def reset() -> None:
    with _lock:
        _checked.clear()
