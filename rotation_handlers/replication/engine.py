"""Fan-out of parameter syncs over target regions; logging, summaries and failures.

For each (parameter, region) pair the engine reads the target, plans, applies (unless dry
run) and logs exactly one line. Regions run in parallel and independently: an error in
one region is recorded and the others continue. After everything ran, any failure raises
:class:`ReplicationError` naming the parameters and regions, so that Lambda retries the
event and, finally, sends it to the dead-letter queue. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from rotation_handlers import metrics
from rotation_handlers.logs import get_logger, log
from rotation_handlers.replication import clients
from rotation_handlers.replication.config import MARKER_TAG_KEY, ReplicationConfig
from rotation_handlers.replication.events import RoleIdentity
from rotation_handlers.replication.guards import refuse_two_way_delete_unmanaged
from rotation_handlers.replication.retry import DeadlineReached, RetryPolicy, error_code, is_throttling
from rotation_handlers.replication.state import ParameterState, read_parameter
from rotation_handlers.replication.sync import (
    EC2_IMAGE_DATA_TYPE,
    UNMANAGED_DELETE_REASON,
    Plan,
    apply_plan,
    plan_sync,
)

LOGGER = get_logger("replication")
MAX_LISTED_CHANGES = 1000
#: Another invocation (or a user) changed the target between our read and our write: re-plan.
#: HierarchyTypeMismatchException: the target was re-created with another type meanwhile.
_RACE_CODES = {
    "ParameterAlreadyExists",
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "HierarchyTypeMismatchException",
}
#: Actions that wrote to a target (``WritesWritten``; ``ReplicationLag`` from the event time).
WRITE_ACTIONS = frozenset({"created", "updated", "tagged", "labelled", "deleted"})
#: ``sync_pair`` reads the source itself (right before reading the target).
UNREAD = object()

SsmFactory = Callable[[str], Any]

#: Sleep used between throttling retries; tests replace it (``monkeypatch.setattr(engine, "SLEEP", ...)``).
SLEEP: Callable[[float], None] = time.sleep


def _sleep(seconds: float) -> None:
    SLEEP(seconds)


class ReplicaKeyUnusable(RuntimeError):
    """The target region's KMS key for a SecureString replica does not exist or is not Enabled."""


class Ec2ImageNotAccepted(RuntimeError):
    """An aws:ec2:image write returned success but the target does not hold the value."""


#: Reads of the target after an aws:ec2:image write, and the pause before each re-read (seconds).
EC2_IMAGE_CHECKS = 3
EC2_IMAGE_WAIT = 2.0


class NotConverged(RuntimeError):
    """The source changed during every round of a sync; the invocation fails and is retried."""


class ReplicationError(RuntimeError):
    """Some parameter/region pairs could not be synced. The message holds names, regions, codes."""

    def __init__(self, failures: list[Result]) -> None:
        self.failures = failures
        by_param: dict[tuple[str, str], list[str]] = {}
        for f in failures:
            by_param.setdefault((f.name, f.error or "error"), []).append(f.region)
        parts = [
            f"{name} in {', '.join(sorted(regions))} ({code})" for (name, code), regions in by_param.items()
        ]
        super().__init__(
            f"replication failed for {len(failures)} parameter/region pair(s): " + "; ".join(parts)
        )


@dataclass
class Result:
    name: str
    region: str
    action: str
    reason: str = ""
    operations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def as_change(self) -> dict[str, Any]:
        change: dict[str, Any] = {"region": self.region, "parameter": self.name, "action": self.action}
        if self.reason:
            change["reason"] = self.reason
        if self.operations:
            change["operations"] = self.operations
        if self.warnings:
            change["warnings"] = self.warnings
        if self.error:
            change["error"] = self.error
        return change


def result_from_plan(plan: Plan) -> Result:
    return Result(
        plan.name,
        plan.region,
        plan.action,
        plan.reason,
        [op.describe() for op in plan.operations],
        plan.warnings,
    )


_own_role_lock = threading.Lock()
_own_role_cache: dict[str, RoleIdentity | None] = {}


def resolve_own_role(config: ReplicationConfig, env: Mapping[str, str] | None = None) -> RoleIdentity | None:
    """The replicator's role: ``REPLICATOR_ROLE_ARN``, else (in Lambda) ``sts:GetCallerIdentity`` once."""
    env = os.environ if env is None else env
    if config.replicator_role_arn:
        return RoleIdentity.from_role_arn(config.replicator_role_arn)
    if not env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return None
    with _own_role_lock:
        if "identity" not in _own_role_cache:
            identity: RoleIdentity | None = None
            try:
                arn = clients.client("sts", config.source_region).get_caller_identity()["Arn"]
                identity = RoleIdentity.from_assumed_role_arn(arn)
            except (ClientError, KeyError) as exc:
                log(LOGGER, "cannot derive own role", logging.WARNING, error=error_code(exc))
            if identity is None:
                log(
                    LOGGER,
                    "REPLICATOR_ROLE_ARN unset and own role unknown: own calls are not filtered; "
                    "loops are still broken by the replica marker tag",
                    logging.WARNING,
                )
            _own_role_cache["identity"] = identity
        return _own_role_cache["identity"]


class Engine:
    def __init__(
        self,
        config: ReplicationConfig,
        *,
        ssm_factory: SsmFactory = clients.ssm,
        client_factory: Callable[[str, str], Any] = clients.client,
        retry: RetryPolicy | None = None,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        self.ssm_factory = ssm_factory
        self.client_factory = client_factory
        self.retry = retry or RetryPolicy(
            config.max_attempts, config.backoff_base, config.backoff_cap, sleep=_sleep
        )
        self._write_retry = self.retry.once()
        self.dry_run = dry_run
        self.results: list[Result] = []
        #: Pairs found in sync without a per-parameter read (reconcile's cheap pass): counted, not logged.
        self.in_sync: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.write_times: list[float] = []  # time.time() of each pair's last write (lag metric)
        self.write_throttles = 0  # writes Parameter Store throttled (each re-planned after a backoff)
        self.reconcile_metrics: dict[str, float | int] = {}  # set by reconcile()

    def set_deadline(self, deadline: float | None, clock: Callable[[], float]) -> None:
        """No throttling backoff may sleep past ``deadline`` (a ``clock()`` value): it raises
        :class:`~.retry.DeadlineReached` instead, which no handler here records as a failure."""
        for policy in (self.retry, self._write_retry):
            policy.deadline, policy.clock = deadline, clock

    # -- single pair ---------------------------------------------------------------------
    def record(self, result: Result) -> Result:
        fields: dict[str, Any] = {
            "parameter": result.name,
            "region": result.region,
            "source_region": self.config.source_region,
            "action": result.action,
        }
        if result.reason:
            fields["reason"] = result.reason
        if result.operations:
            fields["operations"] = result.operations
        if self.dry_run:
            fields["dry_run"] = True
        level = logging.INFO
        if result.error:
            fields["error"] = result.error
            level = logging.ERROR
        log(LOGGER, "planned" if self.dry_run else "replicated", level, **fields)
        for warning in result.warnings:
            reason, _, text = warning.partition(": ")
            log(
                LOGGER,
                text or warning,
                logging.WARNING,
                parameter=result.name,
                region=result.region,
                action="skipped",
                reason=reason,
            )
        with self._lock:
            self.results.append(result)
            if not self.dry_run and result.action in WRITE_ACTIONS:
                self.write_times.append(time.time())
        return result

    def read_source(self, name: str) -> ParameterState | None:
        return read_parameter(self.ssm_factory(self.config.source_region), name, self.retry)

    def sync_pair(self, region: str, name: str, source: ParameterState | object | None = UNREAD) -> Result:
        """Make ``name`` in ``region`` match the source; never raises (errors go in the result).

        Converges: after writing, the source is read again and, if it changed meanwhile (another
        invocation may have replicated a newer state before our late write landed), the target is
        re-read and synced again, at most ``config.max_rounds`` times. A delete re-checks that the
        source is still absent right before deleting and verifies it after. So when the last
        invocation for a parameter ends, the target holds the source's state as read after the
        last write. ``source`` is the state read by the caller, or ``UNREAD`` to read it here.
        """
        try:
            ssm = self.ssm_factory(region)
            applied: list[Plan] = []
            rounds = throttled = 0
            while True:
                if source is UNREAD:
                    source = self.read_source(name)
                state = source if isinstance(source, ParameterState) else None
                target = read_parameter(ssm, name, self.retry)
                plan = plan_sync(name, state, target, region, self.config)
                if self.dry_run or not plan.operations:
                    return self.record(self._outcome(plan, applied))
                if rounds >= self.config.max_rounds:
                    raise NotConverged(f"source kept changing for {rounds} rounds")
                rounds += 1
                if state is None and plan.action == "deleted":
                    source = self._confirm_absent(name, plan)
                    if source is not None:  # re-created since we read it: sync that instead
                        continue
                elif plan.recreates:
                    fresh = self._confirm_recreate(ssm, region, name, state, target)
                    if fresh is not UNREAD:  # source or target moved since we read them: re-plan
                        source = fresh
                        continue
                try:
                    apply_plan(ssm, plan, self._write_retry)
                    applied.append(plan)
                    if state is not None and state.data_type == EC2_IMAGE_DATA_TYPE:
                        self._verify_ec2_image(ssm, name, state, plan)
                except ClientError as exc:
                    if is_throttling(exc):
                        # A throttled write is re-planned after the backoff, not replayed: by then
                        # the source may have moved on, or another invocation written it already.
                        throttled += 1
                        with self._lock:
                            self.write_throttles += 1
                        if throttled >= self.retry.max_attempts:
                            raise
                        self.retry.backoff(throttled - 1)
                        rounds -= 1
                    elif error_code(exc) not in _RACE_CODES:
                        raise
                    # else: another invocation changed the target between our read and write
                    source = UNREAD
                    continue
                verified = self.read_source(name)
                if verified == state:
                    return self.record(self._outcome(None, applied))
                source = verified  # the source moved while we wrote: sync again
        except DeadlineReached:
            raise  # not a failure: reconcile stops here and saves its position
        except Exception as exc:
            return self.record(Result(name, region, "failed", "error", error=error_code(exc)))

    def _confirm_absent(self, name: str, plan: Plan) -> ParameterState | None:
        """Right before a delete: the source again (``None`` = still absent), and the two-way guard."""
        source = self.read_source(name)
        if source is None and plan.reason == UNMANAGED_DELETE_REASON:
            refuse_two_way_delete_unmanaged(self.config, self.ssm_factory, self.retry)
        return source

    def _confirm_recreate(
        self,
        ssm: Any,
        region: str,
        name: str,
        state: ParameterState | None,
        target: ParameterState | None,
    ) -> ParameterState | object | None:
        """Right before deleting a replica to re-create it with the source's type.

        First checks what the create will need that can be checked (the target's KMS key);
        raises :class:`ReplicaKeyUnusable` before anything is deleted. Then reads the source
        and the target again: ``UNREAD`` if both are still as planned (go on), else the fresh
        source to re-plan with, so that a replica another invocation already re-created is not
        deleted again. An unmanaged target also passes the two-way guard.
        """
        if state is not None and state.type == "SecureString":
            self._check_replica_key(region)
        fresh = self.read_source(name)
        if fresh != state or read_parameter(ssm, name, self.retry) != target:
            return fresh
        if target is not None and target.tags.get(MARKER_TAG_KEY) != self.config.source_region:
            refuse_two_way_delete_unmanaged(self.config, self.ssm_factory, self.retry)
        return UNREAD

    def _verify_ec2_image(self, ssm: Any, name: str, state: ParameterState, plan: Plan) -> None:
        """After an aws:ec2:image write, make sure the target holds the value; else raise.

        Parameter Store validates aws:ec2:image values asynchronously: PutParameter returns
        success and, if the AMI is not available in that region's account, the parameter is not
        created or updated (PutParameter, DataType,
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
        The target is read again, up to ``EC2_IMAGE_CHECKS`` times, until it holds the value.
        """
        if not any(op.kind in ("create", "overwrite") for op in plan.operations):
            return
        for attempt in range(EC2_IMAGE_CHECKS):
            if attempt:
                _sleep(EC2_IMAGE_WAIT * attempt)
            target = read_parameter(ssm, name, self.retry, with_tags=False)
            if target is not None and target.value == state.value:
                return
        raise Ec2ImageNotAccepted(
            f"{name}: the aws:ec2:image write returned success but the target does not hold the AMI "
            "(not available in that region, or validation still running)"
        )

    def _check_replica_key(self, region: str) -> None:
        """Raise :class:`ReplicaKeyUnusable` if the configured key in ``region`` cannot encrypt.

        Only a key set in REPLICA_KMS_KEYS is checked: the AWS managed ``alias/aws/ssm`` key is
        created by Parameter Store on first use. A key must be Enabled to be used ("Key states of
        AWS KMS keys", https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html).
        Without kms:DescribeKey (older stacks) nothing can be told: the create then goes ahead and,
        should it fail, the previous replica is put back (:func:`~.sync.apply_plan`).
        """
        key = self.config.kms_keys.get(region)
        if not key:
            return
        try:
            meta = self.retry.call(self.client_factory("kms", region).describe_key, KeyId=key)["KeyMetadata"]
        except ClientError as exc:
            code = error_code(exc)
            if code in ("AccessDeniedException", "AccessDenied"):
                return
            if code == "NotFoundException":
                raise ReplicaKeyUnusable(f"replica KMS key {key} not found in {region}") from None
            raise
        if meta.get("KeyState") != "Enabled":
            raise ReplicaKeyUnusable(f"replica KMS key {key} in {region} is {meta.get('KeyState')}")

    @staticmethod
    def _outcome(last: Plan | None, applied: list[Plan]) -> Result:
        """One result per pair: the last applied change (all operations), else the plan."""
        if not applied:
            assert last is not None
            return result_from_plan(last)
        result = result_from_plan(applied[-1])
        result.operations = [op.describe() for plan in applied for op in plan.operations]
        if len(applied) > 1:
            result.reason += f" (source changed while syncing; {len(applied)} rounds)"
        return result

    def skip_excluded(self, name: str, reason: str) -> None:
        for region in self.config.target_regions:
            self.record(Result(name, region, "skipped", f"excluded: {reason}"))

    # -- batches ---------------------------------------------------------------------------
    def sync_names(self, names: Iterable[str]) -> None:
        """Event path: read each source once, then sync all names in every region in parallel."""
        states: dict[str, ParameterState | None] = {}
        for name in dict.fromkeys(names):
            reason = self.config.exclusion_reason(name)
            if reason:
                self.skip_excluded(name, reason)
                continue
            try:
                states[name] = self.read_source(name)
            except Exception as exc:
                code = f"source read failed: {error_code(exc)}"
                for region in self.config.target_regions:
                    self.record(Result(name, region, "failed", "source read failed", error=code))
        if not states:
            return

        def run_region(region: str) -> None:
            for name, state in states.items():
                self.sync_pair(region, name, state)

        regions = self.config.target_regions
        with ThreadPoolExecutor(max_workers=len(regions), thread_name_prefix="replicate") as pool:
            list(pool.map(run_region, regions))

    # -- reporting -----------------------------------------------------------------------
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.action == "failed"]

    def summary(self, **extra: Any) -> dict[str, Any]:
        counts: dict[str, Counter[str]] = {region: Counter() for region in self.config.target_regions}
        for region, n in self.in_sync.items():
            if n:
                counts[region]["unchanged"] += n
        for r in self.results:
            counts.setdefault(r.region, Counter())[r.action] += 1
            for warning in r.warnings:
                counts[r.region][warning.partition(":")[0]] += 1
        out: dict[str, Any] = {
            "sourceRegion": self.config.source_region,
            "dryRun": self.dry_run,
            "regions": {region: dict(sorted(c.items())) for region, c in counts.items()},
            "throttleRetries": self.retry.retries,
        }
        out.update(extra)
        return out

    def emit_metrics(self, event_time: float | None = None, **extra: float | int) -> None:
        """One EMF line (``rotation_handlers.metrics``) of this invocation's writes by outcome, the
        lag of each write since ``event_time`` (epoch seconds), and ``extra`` metrics."""
        refused = sum(
            1 for r in self.results if any(w.startswith("unmanaged-target-refused") for w in r.warnings)
        )
        written = 0 if self.dry_run else len(self.write_times)
        values: dict[str, Any] = {
            metrics.WRITES_WRITTEN: written,
            metrics.WRITES_UNCHANGED: sum(1 for r in self.results if r.action == "unchanged")
            + sum(self.in_sync.values()),
            metrics.WRITES_THROTTLED: self.write_throttles,
            metrics.WRITES_REFUSED: refused,
            metrics.WRITES_FAILED: len(self.failures()),
            **extra,
        }
        if event_time is not None and self.write_times:
            values[metrics.REPLICATION_LAG] = [
                round(max(0.0, t - event_time) * 1000, 1) for t in self.write_times
            ]
        metrics.emit([([[]], values)])

    def changes(self) -> tuple[list[dict[str, Any]], int]:
        """Planned/applied changes (everything but ``unchanged``), capped at MAX_LISTED_CHANGES."""
        changed = [r.as_change() for r in self.results if r.action != "unchanged"]
        changed.sort(key=lambda c: (c["parameter"], c["region"]))
        return changed[:MAX_LISTED_CHANGES], max(0, len(changed) - MAX_LISTED_CHANGES)

    def raise_on_failure(self) -> None:
        failures = self.failures()
        if failures:
            raise ReplicationError(failures)
