"""Replication topology checks shared by the configuration and the ``ParameterReplicator`` construct."""

from __future__ import annotations

from collections.abc import Sequence


def paths_overlap(a: Sequence[str], b: Sequence[str]) -> bool:
    """Some parameter is under an included path of both (paths end with '/')."""
    return any(x.startswith(y) or y.startswith(x) for x in a for y in b)


def replicates_both_ways(
    a_source: str,
    a_targets: Sequence[str],
    a_paths: Sequence[str],
    b_source: str,
    b_targets: Sequence[str],
    b_paths: Sequence[str],
) -> bool:
    """A copies to B's region and B copies to A's region, for overlapping paths.

    With ``DELETE_UNMANAGED_REPLICAS=true`` on either side this deletes originals: deleting the replica
    in one region looks, to the other region's replicator, exactly like its source being deleted.
    """
    return b_source in a_targets and a_source in b_targets and paths_overlap(a_paths, b_paths)
