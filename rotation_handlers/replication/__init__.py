"""SSM Parameter Store cross-region replication.

Modules:

* :mod:`.config` - environment parsing and validation (:class:`ReplicationConfig`).
* :mod:`.events` - EventBridge event -> parameter names to sync (or why the event is ignored).
* :mod:`.clients` - one boto3 SSM client per region per container.
* :mod:`.retry` - bounded full-jitter retry of throttled calls.
* :mod:`.state` - reading a parameter's full state (value, attributes, tags, labels).
* :mod:`.sync` - diff source vs. target into a :class:`~.sync.Plan` and apply it.
* :mod:`.engine` - fan-out over target regions, the converging per-parameter sync, logging,
  summaries, failure reporting.
* :mod:`.guards` - refusal of DELETE_UNMANAGED_REPLICAS with two-way replication.
* :mod:`.index` - reconcile's cheap pass: batched fingerprints of a region's parameters.
* :mod:`.budget` - reconcile's per-region request budget (token buckets).
* :mod:`.reconcile` - scheduled full sync: cheap pass, stale replicas, drift, rotating deep
  check, resumable state, dry run.
"""

from rotation_handlers.replication.config import MARKER_TAG_KEY, ConfigError, ReplicationConfig, load_config
from rotation_handlers.replication.engine import ReplicationError

__all__ = ["MARKER_TAG_KEY", "ConfigError", "ReplicationConfig", "ReplicationError", "load_config"]
