"""Lambda entry points for SSM Parameter Store cross-region replication.

* ``rotation_handlers.replicate.handler`` - EventBridge rule target: "AWS API Call via
  CloudTrail" or "Parameter Store Change" events from ``aws.ssm``.
* ``rotation_handlers.replicate.reconcile_handler`` - scheduled full sync; ``{"dryRun": true}``
  in the event or ``RECONCILE_DRY_RUN=true`` only reports. Stops before the Lambda timeout
  (``context``) and continues on the next run.

Both return a small summary dict (action counts per target region, never a value) and raise
:class:`~rotation_handlers.replication.ReplicationError` when some parameter/region pair
could not be synced, so Lambda retries and the dead-letter queue keep the event.
The logic lives in :mod:`rotation_handlers.replication`.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from rotation_handlers import metrics
from rotation_handlers.logs import log
from rotation_handlers.replication.budget import RegionBudget
from rotation_handlers.replication.config import load_config
from rotation_handlers.replication.engine import LOGGER, Engine, _sleep, resolve_own_role
from rotation_handlers.replication.events import event_time, parse_event
from rotation_handlers.replication.guards import check_at_startup
from rotation_handlers.replication.reconcile import reconcile
from rotation_handlers.replication.retry import RetryPolicy


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    config = load_config(os.environ)
    trigger = parse_event(event, config.source_region, resolve_own_role(config))
    if trigger.ignored:
        log(
            LOGGER,
            "event ignored",
            logging.INFO,
            reason=trigger.ignored,
            event_source=trigger.source,
            operation=trigger.operation,
            event_id=event.get("id") if isinstance(event, dict) else None,
        )
        metrics.emit([([[]], {metrics.EVENTS_IGNORED: 1})])
        return {"sourceRegion": config.source_region, "ignored": trigger.ignored, "regions": {}}
    engine = Engine(config)
    check_at_startup(config, engine.ssm_factory, engine.retry)
    engine.sync_names(trigger.names)
    summary = engine.summary(operation=trigger.operation, parameters=list(trigger.names))
    log(LOGGER, "event handled", logging.INFO, **summary)
    engine.emit_metrics(event_time(event), **{metrics.EVENTS_HANDLED: 1})
    engine.raise_on_failure()
    return summary


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def reconcile_handler(event: dict[str, Any] | None = None, context: Any = None) -> dict[str, Any]:
    config = load_config(os.environ)
    dry_run = _truthy(os.environ.get("RECONCILE_DRY_RUN", "false")) or _truthy(
        (event or {}).get("dryRun", False)
    )
    budget = RegionBudget(config.requests_per_second)
    retry = RetryPolicy(config.max_attempts, config.backoff_base, config.backoff_cap, sleep=_sleep)
    engine = Engine(config, dry_run=dry_run, retry=retry)
    regions = (config.source_region, *config.target_regions)
    detach = budget.attach(
        [engine.ssm_factory(r) for r in regions]
        + [engine.client_factory("resourcegroupstaggingapi", r) for r in regions]
    )
    try:
        check_at_startup(config, engine.ssm_factory, engine.retry)
        deadline = None
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            deadline = time.monotonic() + remaining() / 1000 - config.time_margin
        summary = reconcile(engine, deadline=deadline)
    finally:
        detach()
    summary["budgetWaitSeconds"] = round(budget.waited(), 1)
    log(
        LOGGER,
        "reconcile finished",
        logging.INFO,
        **{k: v for k, v in summary.items() if k != "changes"},
    )
    fixed = 0 if dry_run else len(engine.write_times)
    engine.emit_metrics(**engine.reconcile_metrics, **{metrics.DRIFT_FIXED: fixed})
    if not dry_run:
        engine.raise_on_failure()
    return summary
