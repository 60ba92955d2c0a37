"""Scheduled full sync: cheap batched comparison every run, per-parameter work only where needed.

1. **Cheap pass** (:mod:`.index`): a fingerprint of every included parameter in the source and
   in each target region, from batched reads (all regions at once).
2. **Stale replicas** first (marker-tagged replicas whose source is gone: deleted, expired by
   a policy, or a delete event that never arrived), so timeouts never starve deletes.
3. **Drifted** parameters (missing, different value or attributes or tags, wrong KMS key,
   source changed after the replica): the precise per-parameter sync of the event path
   (:meth:`Engine.sync_pair`), which reads the source right before each target and converges.
4. **Deep check** of a rotating slice (labels, which no batched API returns): the parameters
   whose name hashes to ``run % RECONCILE_DEEP_EVERY``; history reads in the source and each
   target, and a full sync where the labels differ. Every parameter is deep-checked at least
   once every ``RECONCILE_DEEP_EVERY`` completed runs.

Work runs in bounded chunks on ``RECONCILE_CONCURRENCY`` threads; every API call takes a
token from its region's budget (:mod:`.budget`). When the deadline nears (the Lambda
timeout minus ``RECONCILE_TIME_MARGIN_SECONDS``), the run stops between chunks and saves its
slice position in the state parameter; the next run continues that slice. Stale and drifted
parameters are found again by the next cheap pass. A dry run reads, plans and reports, and
writes nothing (not even the state).

Library entry points (the handler, the local run and the operator CLI use these):
:func:`reconcile` (full run; dry run with ``Engine(dry_run=True)``) and :func:`compare`
(cheap pass only: what differs, without any per-parameter read or write).
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from rotation_handlers import metrics
from rotation_handlers.logs import log
from rotation_handlers.replication.engine import LOGGER, Engine, Result
from rotation_handlers.replication.index import Entry, drift, index_region
from rotation_handlers.replication.retry import error_code
from rotation_handlers.replication.state import read_parameter
from rotation_handlers.replication.sync import place_labels

#: Work items handed to the thread pool at a time (bounded queue), per worker thread.
CHUNK_PER_WORKER = 4


@dataclass
class RunState:
    """Reconcile's position, kept in the source region's ``RECONCILE_STATE_PARAMETER``."""

    run: int = 0  # completed deep-check slices
    cursor: str = ""  # last deep-checked name of the current slice ("" = from the start)

    def dumps(self) -> str:
        return json.dumps({"run": self.run, "cursor": self.cursor}, separators=(",", ":"))


def load_state(engine: Engine) -> RunState:
    ssm = engine.ssm_factory(engine.config.source_region)
    try:
        raw = engine.retry.call(ssm.get_parameter, Name=engine.config.state_parameter)["Parameter"]["Value"]
        data = json.loads(raw)
        return RunState(int(data.get("run", 0)), str(data.get("cursor", "")))
    except ClientError as exc:
        if error_code(exc) != "ParameterNotFound":
            raise
    except (ValueError, TypeError, AttributeError):
        log(LOGGER, "reconcile state unreadable; starting a new slice cycle", logging.WARNING)
    return RunState()


def save_state(engine: Engine, state: RunState) -> None:
    """Write the run's position to the state parameter in the source region.

    Tier ``Intelligent-Tiering``: Parameter Store creates it Standard, or Advanced when the
    region's Standard-parameter quota is full ("Managing parameter tiers", Intelligent-Tiering,
    https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html),
    so the position is saved in every region; an Advanced state parameter stays Advanced.
    """
    ssm = engine.ssm_factory(engine.config.source_region)
    engine.retry.call(
        ssm.put_parameter,
        Name=engine.config.state_parameter,
        Value=state.dumps(),
        Type="String",
        Tier="Intelligent-Tiering",
        Overwrite=True,
    )


def slice_of(name: str, every: int) -> int:
    return zlib.crc32(name.encode()) % every


@dataclass
class Comparison:
    """Outcome of the cheap pass (names only: no value, digest or tag leaves this object)."""

    source_names: int = 0
    replicated: list[str] = field(default_factory=list)  # source names that replicate (not skipped)
    skipped: dict[str, str] = field(default_factory=dict)  # source name -> why not replicated
    drifted: dict[str, dict[str, str]] = field(default_factory=dict)  # region -> name -> reason
    stale: dict[str, list[str]] = field(default_factory=dict)  # region -> managed replicas w/o source
    failed_regions: dict[str, str] = field(default_factory=dict)  # region -> error code


def compare(engine: Engine) -> Comparison:
    """Cheap pass: index the source and every target (in parallel) and diff them."""
    config = engine.config
    regions = [config.source_region, *config.target_regions]

    def index(region: str) -> tuple[str, dict[str, Entry] | str]:
        try:
            return region, index_region(engine, region)
        except Exception as exc:
            return region, error_code(exc)

    with ThreadPoolExecutor(len(regions), thread_name_prefix="reconcile-index") as pool:
        indexes = dict(pool.map(index, regions))
    source = indexes.pop(config.source_region)
    if isinstance(source, str):
        raise RuntimeError(f"listing the source region {config.source_region} failed ({source})")
    out = Comparison(source_names=len(source))
    for name, entry in sorted(source.items()):
        if entry.skip:
            out.skipped[name] = entry.skip
        else:
            out.replicated.append(name)
    for region in config.target_regions:
        target = indexes.pop(region)
        if isinstance(target, str):
            out.failed_regions[region] = target
            continue
        out.drifted[region] = {
            name: reason
            for name in out.replicated
            if (reason := drift(source[name], target.get(name), region, config))
        }
        out.stale[region] = sorted(
            name
            for name, entry in target.items()
            if entry.marker == config.source_region and name not in source and config.is_included(name)
        )
        del target
    return out


def _labels_differ(engine: Engine, name: str, regions: Iterable[str]) -> list[str]:
    """Deep check: regions whose labels (or existence) differ from the source's, from histories."""
    config = engine.config
    src = read_parameter(engine.ssm_factory(config.source_region), name, engine.retry, with_tags=False)
    out = []
    for region in regions:
        dst = read_parameter(engine.ssm_factory(region), name, engine.retry, with_tags=False)
        if src is None or dst is None:
            out.append(region)
            continue
        placement = place_labels(src, dst)
        if placement.existing or placement.new_versions or placement.unlabel:
            out.append(region)
    return out


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def reconcile(
    engine: Engine,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    full: bool = False,
) -> dict[str, Any]:
    """One reconcile run (see module docstring). ``deadline``: a ``clock()`` value to stop before.

    ``full``: deep-check every parameter in this run (an operator's check), neither reading nor
    saving the scheduled runs' position, so their rotating slices carry on undisturbed.
    """
    config = engine.config
    state = RunState() if full else load_state(engine)
    every = 1 if full else config.deep_every
    current_slice = state.run % every
    comparison = compare(engine)
    for region, code in comparison.failed_regions.items():
        engine.record(Result("*", region, "failed", "listing the region failed", error=code))
    for name, reason in comparison.skipped.items():
        for region in config.target_regions:
            engine.record(Result(name, region, "skipped", f"not replicated: {reason}"))

    regions = [r for r in config.target_regions if r not in comparison.failed_regions]
    drifted_by_name: dict[str, list[str]] = {}
    for region in regions:
        for name in comparison.drifted[region]:
            drifted_by_name.setdefault(name, []).append(region)
    deep = [
        name
        for name in comparison.replicated
        if slice_of(name, every) == current_slice and name > state.cursor
    ]
    escalated: dict[str, int] = {region: 0 for region in regions}

    def sync_stale(item: tuple[str, str]) -> None:
        region, name = item
        engine.sync_pair(region, name)  # re-reads the source first: it may exist again

    def sync_drifted(name: str) -> None:
        try:
            source = engine.read_source(name)  # right before this parameter's targets
        except Exception as exc:
            for region in drifted_by_name[name]:
                engine.record(Result(name, region, "failed", "source read failed", error=error_code(exc)))
            return
        for region in drifted_by_name[name]:
            engine.sync_pair(region, name, source)

    def deep_check(name: str) -> None:
        todo = [r for r in regions if r not in drifted_by_name.get(name, [])]
        if not todo:  # synced in full already
            return
        try:
            differ = _labels_differ(engine, name, todo)
        except Exception as exc:
            for region in todo:
                engine.record(Result(name, region, "failed", "deep check failed", error=error_code(exc)))
            return
        for region in differ:
            with engine._lock:
                escalated[region] += 1
            engine.sync_pair(region, name)

    stopped = False
    size = max(1, config.concurrency * CHUNK_PER_WORKER)
    cursor = state.cursor
    stages: list[tuple[str, list[Any], Callable[[Any], None]]] = [
        ("stale", [(r, n) for r in regions for n in comparison.stale[r]], sync_stale),
        ("drifted", sorted(drifted_by_name), sync_drifted),
        ("deep", deep, deep_check),
    ]

    def in_time(work: Callable[[Any], None]) -> Callable[[Any], bool]:
        """``work`` that starts only before the deadline; False = not started."""

        def run(item: Any) -> bool:
            if deadline is not None and clock() >= deadline:
                return False
            work(item)
            return True

        return run

    processed = 0
    with ThreadPoolExecutor(config.concurrency, thread_name_prefix="reconcile") as pool:
        for stage, items, work in stages:
            for chunk in _chunks(items, size):
                done = list(pool.map(in_time(work), chunk))
                # The position is the end of the prefix done without a gap: what follows is redone.
                finished = next((i for i, ok in enumerate(done) if not ok), len(chunk))
                processed += finished
                if stage == "deep" and finished:
                    cursor = chunk[finished - 1]
                if finished < len(chunk):
                    stopped = True
                    break
            if stopped:
                break

    next_state = RunState(state.run, cursor) if stopped else RunState(state.run + 1, "")
    if not engine.dry_run and not full:
        try:
            save_state(engine, next_state)
        except Exception as exc:
            engine.record(
                Result(
                    config.state_parameter,
                    config.source_region,
                    "failed",
                    "saving state",
                    error=error_code(exc),
                )
            )
    for region in regions:
        engine.in_sync[region] += (
            len(comparison.replicated) - len(comparison.drifted[region]) - escalated[region]
        )
    total = sum(len(items) for _, items, _ in stages)
    engine.reconcile_metrics = {  # metrics: this run's share of its work, and the drift it found
        metrics.RECONCILE_PROGRESS: 100.0 if total == 0 else round(100 * processed / total, 1),
        metrics.DRIFT_FOUND: sum(len(comparison.drifted[r]) + len(comparison.stale[r]) for r in regions)
        + sum(escalated.values()),
    }
    changes, truncated = engine.changes()
    return engine.summary(
        mode="reconcile",
        parameters=comparison.source_names,
        drifted={r: len(comparison.drifted[r]) for r in regions},
        stale={r: len(comparison.stale[r]) for r in regions},
        deepCheck={
            "slice": current_slice,
            "of": every,
            "parameters": len(deep),
            "resumedAfter": state.cursor,
        },
        complete=not stopped,
        changes=changes,
        changesTruncated=truncated,
    )
