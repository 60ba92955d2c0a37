"""Scheduled full sync: cheap batched comparison every run, per-parameter work only where needed.

1. **Cheap pass** (:mod:`.index`): a fingerprint of every included parameter in the source and
   in each target region, from batched reads. The source is always listed (DescribeParameters).
   A target is listed at the start of each deep-check cycle, in a full run, after a run that
   left a failure there, when the settings it was compared under changed, and when exact checks
   would cost more; otherwise it is read by name (GetParameters), and its replicas changed since
   the listing (``RunState.listed``) are checked exactly.
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
timeout minus ``RECONCILE_TIME_MARGIN_SECONDS``), no further parameter is started, a throttling
backoff that would end past it stops its parameter instead (:class:`~.retry.DeadlineReached`),
and the run saves its slice position in the state parameter; the next run continues that slice.
Stale and drifted parameters are found again by the next cheap pass. A dry run reads, plans and reports, and
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
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from rotation_handlers import metrics
from rotation_handlers.logs import log
from rotation_handlers.replication.engine import LOGGER, Engine, Result
from rotation_handlers.replication.index import (
    UNLISTED,
    Entry,
    drift,
    index_names,
    index_region_pages,
    list_metas,
    with_metas,
)
from rotation_handlers.replication.retry import DeadlineReached, error_code
from rotation_handlers.replication.state import read_parameter
from rotation_handlers.replication.sync import key_matches, place_labels

#: Work items handed to the thread pool at a time (bounded queue), per worker thread.
CHUNK_PER_WORKER = 4
#: Seconds between checks of the hard stop while a chunk's workers run.
HARD_STOP_POLL = 0.2


#: Seconds subtracted from the run's start (Lambda's clock) to compare with Parameter Store's
#: LastModifiedDate: a generous allowance for the difference between the two clocks.
CLOCK_SKEW = 120.0
#: Calls an exact check of one replica costs (history and tags, source and target): a target with
#: more unlisted replicas to check than its last listing's pages / this is listed instead.
EXACT_CHECK_CALLS = 4


@dataclass
class RunState:
    """Reconcile's position, kept in the source region's ``RECONCILE_STATE_PARAMETER``."""

    run: int = 0  # completed deep-check slices
    cursor: str = ""  # last deep-checked name of the current slice ("" = from the start)
    #: target region -> {"at": epoch seconds before which it was listed in full and found in sync,
    #: "cfg": fingerprint of the settings it was compared with, "pages": DescribeParameters calls}
    listed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def dumps(self) -> str:
        data: dict[str, Any] = {"run": self.run, "cursor": self.cursor}
        if self.listed:
            data["listed"] = self.listed
        return json.dumps(data, separators=(",", ":"))


def load_state(engine: Engine) -> RunState:
    ssm = engine.ssm_factory(engine.config.source_region)
    try:
        raw = engine.retry.call(ssm.get_parameter, Name=engine.config.state_parameter)["Parameter"]["Value"]
        data = json.loads(raw)
        listed = {
            str(region): {"at": float(v["at"]), "cfg": str(v["cfg"]), "pages": int(v.get("pages", 0))}
            for region, v in (data.get("listed") or {}).items()
        }
        return RunState(int(data.get("run", 0)), str(data.get("cursor", "")), listed)
    except ClientError as exc:
        if error_code(exc) != "ParameterNotFound":
            raise
    except (ValueError, TypeError, AttributeError, KeyError):
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


def fingerprint(config: Any, region: str) -> str:
    """The settings a target region's comparison depends on: a listing made under others is not trusted."""
    payload = [
        config.source_region,
        list(config.include_paths),
        list(config.exclude_paths),
        config.kms_key_for(region),
        config.copy_ec2_image,
    ]
    return f"{zlib.crc32(json.dumps(payload).encode()):08x}"


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
    listed: dict[str, int] = field(default_factory=dict)  # target region listed in full -> pages


def compare(
    engine: Engine,
    since: Mapping[str, float | None] | None = None,
    pages: Mapping[str, int] | None = None,
) -> Comparison:
    """Cheap pass: index the source, then every target (in parallel), and diff them.

    A target with a ``since`` (epoch seconds: it was listed in full and found in sync before that)
    is read by name (:func:`~.index.index_names`) instead of listed: its replicas changed after
    ``since`` or without the marker are then synced exactly, unless they would cost more than
    listing the region (``pages``: DescribeParameters calls of its last listing), which is then
    done. Without ``since`` (the default, and every operator check) every region is listed.
    """
    config = engine.config
    since = since or {}
    pages = pages or {}
    try:
        source, _ = index_region_pages(engine, config.source_region)
    except Exception as exc:
        raise RuntimeError(
            f"listing the source region {config.source_region} failed ({error_code(exc)})"
        ) from None
    out = Comparison(source_names=len(source))
    for name, entry in sorted(source.items()):
        if entry.skip:
            out.skipped[name] = entry.skip
        else:
            out.replicated.append(name)

    def index(region: str) -> tuple[str, dict[str, Entry] | str, dict[str, str], int | None]:
        try:
            if since.get(region) is None or not config.bulk_tags:
                target, listed = index_region_pages(engine, region)
                return region, target, diff(region, target, None), listed
            target = index_names(engine, region, out.replicated)
            drifted = diff(region, target, since[region])
            unlisted = sum(1 for reason in drifted.values() if reason in UNLISTED)
            if unlisted * EXACT_CHECK_CALLS <= max(1, pages.get(region, 0)):
                return region, target, drifted, None
            metas, listed = list_metas(engine, region)  # cheaper than checking each one exactly
            target = {name: with_metas(entry, metas.get(name)) for name, entry in target.items()}
            return region, target, diff(region, target, None), listed
        except Exception as exc:
            return region, error_code(exc), {}, None

    def diff(region: str, target: dict[str, Entry], mark: float | None) -> dict[str, str]:
        return {
            name: reason
            for name in out.replicated
            if (reason := drift(source[name], target.get(name), region, config, mark))
        }

    targets = list(config.target_regions)
    with ThreadPoolExecutor(max(1, len(targets)), thread_name_prefix="reconcile-index") as pool:
        results = list(pool.map(index, targets))
    for region, target, drifted, listed in results:
        if isinstance(target, str):
            out.failed_regions[region] = target
            continue
        if listed is not None:
            out.listed[region] = listed
        out.drifted[region] = drifted
        out.stale[region] = sorted(
            name
            for name, entry in target.items()
            if entry.marker == config.source_region and name not in source and config.is_included(name)
        )
    return out


def _labels_differ(engine: Engine, name: str, regions: Iterable[str]) -> list[str]:
    """Deep check: regions whose labels, existence or listed attributes differ from the source's
    (from the histories: a safety net for a target read by name between listings)."""
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
        elif _attributes_differ(src, dst, region, config):  # free here: the histories hold them
            out.append(region)
    return out


def _attributes_differ(src: Any, dst: Any, region: str, config: Any) -> bool:
    """The listed attributes a target read by name is trusted for, compared from the histories."""
    fields = ("type", "description", "allowed_pattern", "data_type", "policies")
    if any(getattr(src, f) != getattr(dst, f) for f in fields):
        return True
    if src.tier == "Advanced" and dst.tier != "Advanced":
        return True
    return src.type == "SecureString" and not key_matches(dst.key_id, config.kms_key_for(region))


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def reconcile(
    engine: Engine,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    full: bool = False,
    wall: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """One reconcile run (see module docstring). ``deadline``: a ``clock()`` value to stop before.

    ``full``: deep-check every parameter in this run (an operator's check), neither reading nor
    saving the scheduled runs' position, so their rotating slices carry on undisturbed.
    """
    config = engine.config
    engine.set_deadline(deadline, clock)
    state = RunState() if full else load_state(engine)
    every = 1 if full else config.deep_every
    current_slice = state.run % every
    # Targets are listed in full at the start of every deep-check cycle, in a full run, and when
    # no trusted listing exists; in between they are read by name (see compare()).
    cycle_start = current_slice == 0 and not state.cursor
    prints = {r: fingerprint(config, r) for r in config.target_regions}
    since: dict[str, float | None] = {
        r: None
        if full or cycle_start or r not in state.listed or state.listed[r]["cfg"] != prints[r]
        else state.listed[r]["at"]
        for r in config.target_regions
    }
    started = wall()
    comparison = compare(engine, since, {r: int(v.get("pages", 0)) for r, v in state.listed.items()})
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
    stopped_in = ""
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
            try:
                work(item)
            except DeadlineReached:  # a throttling backoff would have slept past the deadline
                return False
            return True

        return run

    processed = 0
    # Half-way into the margin, a run whose workers have not all come back saves its position and
    # returns anyway (their parameters count as not done), so Lambda's timeout never kills it first.
    hard_stop = None if deadline is None else deadline + config.time_margin / 2

    def finish(futures: list[Future[bool]]) -> list[bool]:
        while True:
            _, pending = wait(futures, timeout=HARD_STOP_POLL)
            if not pending:
                return [f.result() for f in futures]
            if hard_stop is not None and clock() >= hard_stop:
                return [f.done() and not f.cancelled() and f.result() for f in futures]

    pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="reconcile")
    hung = False
    try:
        for stage, items, work in stages:
            for chunk in _chunks(items, size):
                run_item = in_time(work)
                done = finish([pool.submit(run_item, item) for item in chunk])
                hung = not all(done) and hard_stop is not None and clock() >= hard_stop
                # The position is the end of the prefix done without a gap: what follows is redone.
                finished = next((i for i, ok in enumerate(done) if not ok), len(chunk))
                processed += finished
                if stage == "deep" and finished:
                    cursor = chunk[finished - 1]
                if finished < len(chunk):
                    stopped, stopped_in = True, stage
                    break
            if stopped:
                break
    finally:
        pool.shutdown(wait=not hung, cancel_futures=True)  # a hung worker is left behind

    # A region listed in full this run is trusted from the run's start on if every pair found there
    # was settled (no failure, stale and drifted stages complete); a region read by name keeps its
    # earlier listing (its replicas changed since are still later than it next run).
    failed = {r.region for r in engine.results if r.action == "failed"}
    listed: dict[str, dict[str, Any]] = {}
    for region in regions:
        if region in comparison.listed:
            if region not in failed and stopped_in in ("", "deep"):
                at = started - CLOCK_SKEW
                listed[region] = {"at": at, "cfg": prints[region], "pages": comparison.listed[region]}
        elif since.get(region) is not None:
            listed[region] = state.listed[region]
    next_state = RunState(state.run, cursor, listed) if stopped else RunState(state.run + 1, "", listed)
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
        listedTargets=sorted(comparison.listed),
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
