"""Benchmark of the SSM replication Lambda against moto (in-process, no network).

Part 1 - burst: N changes (value overwrites, tag adds/changes, tag removals, deletes and
re-creates) over M parameters in the source region, applied at once; then one EventBridge
event per change is delivered, shuffled (late and out of order), by C concurrent
"invocations" of ``rotation_handlers.replicate.handler``. A failed invocation is re-invoked
twice (Lambda async retries), then counted as dead-lettered. Each target region's writes are
capped by a token bucket (``--rate`` per second, burst ``--burst``) in a botocore
``before-call`` hook that raises ``ThrottlingException`` when the bucket is empty - the way
Parameter Store answers, so the replicator's own retry loop is what is measured. Reports the
time against the lower bound (the largest of: last event delivered, minimum writes / rate,
and each minimum write issued no earlier than the change it carries, see ``release_bound``),
writes issued against the minimum (computed independently from the initial and final source
states), each write sorted as duplicate / stale / current (``WriteLog``), the backoff slept
and the write capacity left idle, and lost or wrong parameters (every target compared to the
source at the end; must be 0).

Part 2 - reconcile: R parameters in the source, empty targets: a full reconcile (creates
everything), then a second one (everything in sync): API calls and time. No write cap here.

    .venv/bin/python bench/bench_replicate.py [--changes 1000 --params 100 --regions 3 --rate 10]
                                              [--reconcile 10000]
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import os
import random
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_SESSION_TOKEN="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
)
for _var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM"):
    os.environ.pop(_var, None)

from botocore.exceptions import ClientError  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.ssm.responses import SimpleSystemManagerResponse  # noqa: E402

from rotation_handlers import metrics, replicate  # noqa: E402
from rotation_handlers.replication import MARKER_TAG_KEY, clients, engine  # noqa: E402
from rotation_handlers.replication import reconcile as reconcile_module  # noqa: E402
from rotation_handlers.replication.events import CLOUDTRAIL_EVENT_NAMES  # noqa: E402
from tests.replication import events as ev  # noqa: E402

SOURCE = "us-east-1"
ALL_TARGETS = ["eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1", "ap-northeast-1"]
#: The SSM calls that change a parameter: the ones the replicator writes with.
WRITE_OPS = frozenset(CLOUDTRAIL_EVENT_NAMES)


def _patch_moto_page_size() -> None:
    """moto pages DescribeParameters by 10 whatever MaxResults says; AWS honours up to 50.

    moto also filters every parameter again for each page (quadratic at 50,000 parameters); the
    listing is computed on the first page of a pass and reused for its next pages.
    """
    original = SimpleSystemManagerResponse.describe_parameters

    listings: dict[tuple[int, str], list[Any]] = {}  # one filtered listing per paging pass

    def describe_parameters(self: SimpleSystemManagerResponse) -> Any:
        page_size = int(self._get_param("MaxResults") or 10)
        token = int(str(self._get_param("NextToken") or "0").strip() or 0)
        key = (id(self.ssm_backend), repr((self._get_param("Filters"), self._get_param("ParameterFilters"))))
        if token == 0 or key not in listings:  # moto filters all parameters for every page: once is enough
            listings[key] = self.ssm_backend.describe_parameters(
                self._get_param("Filters"), self._get_param("ParameterFilters")
            )
        result = listings[key]
        page = result[token : token + page_size]
        response: dict[str, Any] = {"Parameters": [p.describe_response_object(False) for p in page]}
        if token + page_size < len(result):
            response["NextToken"] = str(token + page_size)
        from moto.core.responses import ActionResult

        return ActionResult(response)

    describe_parameters.__wrapped__ = original  # type: ignore[attr-defined]
    SimpleSystemManagerResponse.describe_parameters = describe_parameters  # type: ignore[method-assign]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` stored. Thread-safe; never sleeps."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()
        self.lock = threading.Lock()
        self.granted = 0
        self.throttled = 0
        self.idle = 0.0  # tokens that overflowed a full bucket: write capacity left unused

    def refill(self) -> None:
        now = time.monotonic()
        filled = self.tokens + (now - self.stamp) * self.rate
        self.idle += max(0.0, filled - self.burst)
        self.tokens = min(self.burst, filled)
        self.stamp = now

    def take(self) -> bool:
        with self.lock:
            self.refill()
            if self.tokens >= 1:
                self.tokens -= 1
                self.granted += 1
                return True
            self.throttled += 1
            return False


@dataclass
class CallCounter:
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, region: str) -> Callable[..., None]:
        def count(model: Any, **_: Any) -> None:
            with self.lock:
                self.calls[(region, model.name)] += 1

        return count

    def total(self, region: str | None = None, ops: set[str] | None = None) -> int:
        return sum(
            n for (r, op), n in self.calls.items() if region in (None, r) and (ops is None or op in ops)
        )


def install(
    regions: list[str],
    counter: CallCounter,
    buckets: dict[str, TokenBucket],
    on_write: Callable[[str, str, dict[str, Any]], None] | None = None,
) -> None:
    last_params = threading.local()
    for region in regions:
        client = clients.ssm(region)
        client.meta.events.register("before-call.ssm", counter.hook(region))
        bucket = buckets.get(region)
        if bucket is None:
            continue

        def keep_params(params: dict[str, Any], **_: Any) -> None:
            last_params.value = dict(params)  # the API parameters (before-call sees the wire form)

        client.meta.events.register("before-parameter-build.ssm", keep_params)

        def limit(model: Any, bucket: TokenBucket = bucket, region: str = region, **_: Any) -> None:
            if model.name not in WRITE_OPS:
                return
            if not bucket.take():
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, model.name
                )
            if on_write is not None:
                on_write(region, model.name, last_params.value)

        client.meta.events.register("before-call.ssm", limit)


# -- model of the source, to compute the minimum number of writes independently ---------------
Model = dict[str, tuple[str, str, dict[str, str]] | None]  # name -> (type, value, tags) or None


def min_writes(initial: Model, final: Model) -> int:
    """Fewest write calls that take a replica from ``initial`` to ``final`` (per region).

    A type change is a delete and a create: Parameter Store refuses ``PutParameter`` with
    ``Overwrite`` that changes the type (HierarchyTypeMismatchException), so the replicator
    re-creates the replica.
    """
    total = 0
    for name in set(initial) | set(final):
        before, after = initial.get(name), final.get(name)
        if after is None:
            total += before is not None  # one DeleteParameter
        elif before is None:
            total += 1  # one PutParameter with tags
        elif before[0] != after[0]:  # Parameter Store refuses a type change on overwrite
            total += 2  # DeleteParameter, then PutParameter with the tags
        else:
            total += before[1] != after[1]  # PutParameter (Overwrite)
            total += any(before[2].get(k) != v for k, v in after[2].items())  # AddTagsToResource
            total += any(k not in after[2] for k in before[2])  # RemoveTagsFromResource
    return total


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _moto_state(region: str, name: str) -> tuple[str, str, dict[str, str]] | None:
    """A parameter straight from moto's backend (no API call, so nothing is counted or capped)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ssm.models import ssm_backends

    backend = ssm_backends[DEFAULT_ACCOUNT_ID][region]
    param = backend.get_parameter(name)
    if param is None:
        return None
    value = param.decrypt(param.value)
    tags = dict(backend._resource_tags.get("Parameter", {}).get(param.name, {}))
    tags.pop(MARKER_TAG_KEY, None)
    return param.parameter_type, str(value), tags


class WriteLog:
    """Sorts every granted write: already in the target (duplicate), already outdated in the source
    when issued (stale), or the source's state at that moment (current; intermediate or final)."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, region: str, op: str, params: dict[str, Any]) -> None:
        name = params.get("Name") or params.get("ResourceId") or ""
        target, source = _moto_state(region, name), _moto_state(SOURCE, name)

        def same(state: tuple[str, str, dict[str, str]] | None) -> bool:
            if op == "PutParameter":
                return state is not None and state[:2] == (params.get("Type", state[0]), params["Value"])
            if op == "DeleteParameter":
                return state is None
            if op == "AddTagsToResource":
                tags = {t["Key"]: t["Value"] for t in params["Tags"] if t["Key"] != MARKER_TAG_KEY}
                return state is not None and all(state[2].get(k) == v for k, v in tags.items())
            if op == "RemoveTagsFromResource":
                return state is not None and not set(params["TagKeys"]) & set(state[2])
            return False

        if op == "DeleteParameter" and source and target and source[0] != target[0]:
            kind = "current"  # the delete before re-creating a replica with the source's type
        elif op == "AddTagsToResource" and all(t["Key"] == MARKER_TAG_KEY for t in params["Tags"]):
            kind = "current"  # the replica marker alone
        else:
            kind = "duplicate" if same(target) else "current" if same(source) else "stale"
        with self.lock:
            self.kinds[kind] += 1


def release_bound(initial: Model, final: Model, times: dict[tuple[str, str], float], args: Any) -> float:
    """Earliest end for any replicator, even one that knows the future and writes only final states.

    Each minimum write can be issued at the earliest when the source change it carries was made
    (a value or type change, a tag key's last change, a delete); writes are then drained through
    the same token bucket (full at the start). Intermediate states cost nothing here, so this is
    a lower bound, tighter than "last event" or "minimum writes / rate" alone.
    """
    releases: list[float] = []
    for name in set(initial) | set(final):
        before, after = initial.get(name), final.get(name)
        value_t = times.get((name, ""), 0.0)

        def tag_t(keys: Any, name: str = name) -> float:
            return max((times.get((name, k), 0.0) for k in keys), default=0.0)

        if after is None:
            releases += [value_t] if before is not None else []
        elif before is None:
            releases.append(max(value_t, tag_t(after[2])))
        elif before[0] != after[0]:  # delete, then create with the final tags
            releases += [value_t, max(value_t, tag_t(after[2]))]
        else:
            if before[1] != after[1]:
                releases.append(value_t)
            added = [k for k, v in after[2].items() if before[2].get(k) != v]
            removed = [k for k in before[2] if k not in after[2]]
            releases += [tag_t(added)] if added else []
            releases += [tag_t(removed)] if removed else []
    now, tokens, stamp = 0.0, float(args.burst), 0.0
    for release in sorted(releases):
        now = max(now, release)
        tokens = min(float(args.burst), tokens + (now - stamp) * args.rate)
        if tokens < 1:
            now += (1 - tokens) / args.rate
            tokens = 1.0
        tokens, stamp = tokens - 1, now
    return now


class Producer:
    """Applies random changes to the source (as a user would) and schedules each one's event."""

    def __init__(self, args: argparse.Namespace, model: Model, rng: random.Random) -> None:
        self.args, self.model, self.rng = args, model, rng
        self.ssm = clients.ssm(SOURCE)
        self.names = sorted(model)
        hot = max(1, len(self.names) // 10)
        self.hot = self.names[:hot]  # half of the changes hit these: overlapping invocations
        self.kinds = Counter[str]()
        #: (name, "") -> when its value/type/existence last changed; (name, key) -> when that tag did
        self.times: dict[tuple[str, str], float] = {}
        self.start = time.monotonic()

    def _stamp(self, name: str, *keys: str) -> None:
        now = time.monotonic() - self.start
        for key in keys:
            self.times[(name, key)] = now

    def change(self, n: int) -> list[dict[str, Any]]:
        rng, model, ssm = self.rng, self.model, self.ssm
        name = rng.choice(self.hot if rng.random() < 0.5 else self.names)
        state = model[name]
        roll = rng.random()
        if state is None:  # deleted earlier: re-create it
            value = f"recreated-{n}"
            ssm.put_parameter(Name=name, Value=value, Type="String")
            model[name] = ("String", value, {})
            self._stamp(name, "")
            self.kinds["recreate"] += 1
            return [ev.put_parameter_event(name)]
        if roll < 0.70:
            value = f"value-{n}-{rng.random():.6f}"
            ssm.put_parameter(Name=name, Value=value, Type=state[0], Overwrite=True)
            model[name] = (state[0], value, state[2])
            self._stamp(name, "")
            self.kinds["overwrite"] += 1
            return [ev.put_parameter_event(name, state[0], overwrite=True)]
        if roll < 0.85:
            key, val = f"k{rng.randrange(3)}", f"v{n}"
            ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=_tag_list({key: val}))
            model[name] = (state[0], state[1], {**state[2], key: val})
            self._stamp(name, key)
            self.kinds["add-tag"] += 1
            return [ev.add_tags_event(name, {key: val})]
        if roll < 0.95 and state[2]:
            key = rng.choice(sorted(state[2]))
            ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=[key])
            model[name] = (state[0], state[1], {k: v for k, v in state[2].items() if k != key})
            self._stamp(name, key)
            self.kinds["remove-tag"] += 1
            return [ev.remove_tags_event(name, [key])]
        ssm.delete_parameter(Name=name)
        model[name] = None
        self._stamp(name, "", *state[2])
        self.kinds["delete"] += 1
        return [ev.delete_parameter_event(name)]


def seed_burst(args: argparse.Namespace, rng: random.Random) -> Model:
    ssm = clients.ssm(SOURCE)
    model: Model = {}
    types = ["String", "SecureString", "StringList"]
    for i in range(args.params):
        name = f"/bench/app{i % 10}/param{i:04d}"
        type_ = types[i % 3]
        tags = {"team": f"t{i % 4}"} if i % 2 else {}
        value = f"initial-{i}-{rng.random():.6f}"
        ssm.put_parameter(Name=name, Value=value, Type=type_, Tags=_tag_list(tags))
        model[name] = (type_, value, dict(tags))
    replicate.reconcile_handler({}, None)  # initial sync, not measured, no cap
    return model


def burst(args: argparse.Namespace, targets: list[str]) -> dict[str, Any]:
    """Concurrent burst: changes keep arriving while events are handled (see module docstring)."""
    rng = random.Random(args.seed)
    model = seed_burst(args, rng)
    initial: Model = {k: (v[0], v[1], dict(v[2])) if v else None for k, v in model.items()}
    producer = Producer(args, model, rng)

    counter = CallCounter()
    buckets = {r: TokenBucket(args.rate, args.burst) for r in targets}
    writes = WriteLog()
    install([SOURCE, *targets], counter, buckets, writes)
    slept = {"s": 0.0}
    sleep_lock = threading.Lock()

    def sleep(seconds: float) -> None:  # the replicator's throttling backoff, summed over threads
        with sleep_lock:
            slept["s"] += seconds
        time.sleep(seconds)

    engine.SLEEP = sleep

    queue: list[tuple[float, int, int, dict[str, Any]]] = []  # (due, seq, attempt, event)
    cond = threading.Condition()
    state = {"seq": 0, "produced": False, "busy": 0, "last_due": 0.0}
    invocations = Counter[str]()
    dead: list[str] = []
    start = producer.start = time.monotonic()

    def schedule(event: dict[str, Any], delay: float, attempt: int = 0) -> None:
        with cond:
            due = time.monotonic() + delay
            state["last_due"] = max(state["last_due"], due - start)
            state["seq"] += 1
            heapq.heappush(queue, (due, state["seq"], attempt, event))
            cond.notify()

    def produce() -> None:
        interval = 1.0 / args.arrival if args.arrival > 0 else 0.0
        for n in range(args.changes):
            target_time = start + n * interval
            pause = target_time - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            for event in producer.change(n):
                late = rng.uniform(0, args.late)
                schedule(event, late)
                if rng.random() < args.duplicates:  # EventBridge delivers at least once
                    schedule(event, late + rng.uniform(0, args.late))
        with cond:
            state["produced"] = True
            cond.notify_all()

    def worker() -> None:
        while True:
            with cond:
                while True:
                    if queue and queue[0][0] <= time.monotonic():
                        _, _, attempt, event = heapq.heappop(queue)
                        state["busy"] += 1
                        break
                    if not queue and state["produced"] and state["busy"] == 0:
                        cond.notify_all()
                        return
                    cond.wait(timeout=min(0.05, max(0.0, queue[0][0] - time.monotonic())) if queue else 0.05)
                invocations["total"] += 1
            try:
                replicate.handler(event, None)
            except Exception:
                with cond:
                    invocations["failed"] += 1
                    if attempt < 2:  # Lambda async: 2 retries, then the dead-letter queue
                        state["seq"] += 1
                        heapq.heappush(
                            queue, (time.monotonic() + args.retry_delay, state["seq"], attempt + 1, event)
                        )
                    else:
                        dead.append(event["id"])
            finally:
                with cond:
                    state["busy"] -= 1
                    cond.notify_all()

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    if args.sequential:  # the old shape: every change applied before any event is handled
        produce()
    for t in threads:
        t.start()
    if not args.sequential:
        produce()
    produced_at = time.monotonic() - start
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    for bucket in buckets.values():
        with bucket.lock:
            bucket.refill()

    lost = wrong = 0
    for name, expected in model.items():
        for region in targets:
            client = clients.ssm(region)
            try:
                got = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]
                tags = client.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
                tag_map = {t["Key"]: t["Value"] for t in tags if t["Key"] != MARKER_TAG_KEY}
            except ClientError:
                got = None
            if expected is None:
                wrong += got is not None
            elif got is None:
                lost += 1
            elif (got["Type"], got["Value"], tag_map) != expected:
                wrong += 1

    minimum = min_writes(initial, model)
    rows = []
    for region in targets:
        bucket = buckets[region]
        rows.append(
            {
                "region": region,
                "min_writes": minimum,
                "writes_issued": bucket.granted,
                "throttled": bucket.throttled,
                "reads": counter.total(region) - counter.total(region, WRITE_OPS),
            }
        )
    write_bound = max(0.0, (minimum - args.burst) / args.rate)
    release = release_bound(initial, model, producer.times, args)
    return {
        "release_bound": release,
        "write_kinds": dict(writes.kinds),
        "backoff_s": slept["s"],
        "idle_s": sum(b.idle for b in buckets.values()) / len(buckets) / args.rate,
        "kinds": dict(producer.kinds),
        "events": state["seq"],
        "produced_at": produced_at,
        "last_due": state["last_due"],
        "elapsed": elapsed,
        "lower_bound": max(state["last_due"], write_bound, release),
        "write_bound": write_bound,
        "rows": rows,
        "invocations": dict(invocations),
        "dead": len(dead),
        "lost": lost,
        "wrong": wrong,
        "source_reads": counter.total(SOURCE),
    }


#: Where ``--other-tagged`` puts its parameters (outside REPLICATE_PATHS=/fleet).
UNRELATED = "/unrelated"


def short_describe_pages(ssm: Any, most: int, rng: random.Random) -> None:
    """DescribeParameters answers 0..``most`` results a page, as AWS may: "The number of items
    returned, however, can be between zero and the value of MaxResults" (MaxResults 1 to 50; the
    replicator asks for 50; DescribeParameters API reference,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeParameters.html).
    ``most`` = 10 draws 0..10 (5 on average), a tenth of what AWS may return. moto's tokens are offsets."""
    offset = {"n": 0}

    def remember(params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        offset["n"] = int(body.get("NextToken") or 0)

    def truncate(parsed: dict[str, Any], **_: Any) -> None:
        found = parsed.get("Parameters") or []
        if len(found) > 1 or parsed.get("NextToken"):
            size = rng.randint(0, min(most, len(found)))
            parsed["Parameters"] = found[:size]
            parsed["NextToken"] = str(offset["n"] + size)

    ssm.meta.events.register("before-call.ssm.DescribeParameters", remember)
    ssm.meta.events.register("after-call.ssm.DescribeParameters", truncate)


def reconcile_bench(args: argparse.Namespace, targets: list[str]) -> dict[str, Any]:
    """R parameters; runs: initial (targets empty), in sync, 1 % drift, then until fully deep-checked."""
    count = args.reconcile
    ssm = clients.ssm(SOURCE)
    t0 = time.monotonic()
    for i in range(count):
        tags = [{"Key": "owner", "Value": f"o{i % 7}"}] if i % 3 == 0 else []
        kwargs = {
            "Name": f"/fleet/svc{i % 50:02d}/p{i:05d}",
            "Value": f"v{i}",
            "Type": ("String", "SecureString")[i % 2],
        }
        ssm.put_parameter(**kwargs, **({"Tags": tags} if tags else {}))
        if args.presync:  # replicas written directly (as a previous reconcile would have)
            for region in targets:
                marker = [{"Key": MARKER_TAG_KEY, "Value": SOURCE}]
                clients.ssm(region).put_parameter(**kwargs, Tags=tags + marker)
    for i in range(args.other_tagged):  # tagged parameters that are not replicated, in every region
        for region in [SOURCE, *targets]:
            clients.ssm(region).put_parameter(
                Name=f"{UNRELATED}/p{i:05d}", Value="x", Type="String", Tags=[{"Key": "team", "Value": "t"}]
            )
    out: dict[str, Any] = {"setup_s": time.monotonic() - t0, "runs": []}
    rng = random.Random(args.seed)
    deep_checked = 0

    def run(label: str, measure_memory: bool = False) -> dict[str, Any]:
        nonlocal deep_checked
        counter = CallCounter()
        install([SOURCE, *targets], counter, {})
        for region in [SOURCE, *targets]:
            clients.client("resourcegroupstaggingapi", region).meta.events.register(
                "before-call", counter.hook(region)
            )
        if args.short_pages:
            for region in [SOURCE, *targets]:
                short_describe_pages(clients.ssm(region), args.short_pages, rng)
        if measure_memory:
            tracemalloc.start()
        start = time.monotonic()
        summary = replicate.reconcile_handler({}, None)
        elapsed = time.monotonic() - start
        peak = 0
        if measure_memory:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        deep_checked += summary["deepCheck"]["parameters"]
        row = {
            "label": label,
            "elapsed": elapsed,
            "calls": counter.total(),
            # writes to the targets (the source only gets the small state parameter)
            "writes": sum(n for (r, op), n in counter.calls.items() if op in WRITE_OPS and r != SOURCE),
            "per_param_region": counter.total() / (count * len(targets)),
            "by_op_total": Counter(op for (_, op), n in counter.calls.items() for _ in range(n)),
            "actions": summary["regions"],
            "deep": summary["deepCheck"],
            "peak_mb": peak / 1e6,
        }
        out["runs"].append(row)
        clients.reset()  # drop this run's hooks
        return row

    # The runs follow each other within seconds here (hours apart on the schedule): no clock-skew
    # allowance, or every replica written minutes before a run would look changed since the listing.
    reconcile_module.CLOCK_SKEW = 0.0
    if not args.presync:
        run("initial (targets empty)")
    listing = run("in sync", measure_memory=args.memory)
    steady = run("in sync (read by name)")
    out["amortized"] = (
        listing["per_param_region"] + (args.deep_every - 1) * steady["per_param_region"]
    ) / max(1, args.deep_every)
    drifted = rng.sample(range(count), max(1, count // 100))
    for i in drifted:  # 1 % drift in the first target: a value edited there
        clients.ssm(targets[0]).put_parameter(
            Name=f"/fleet/svc{i % 50:02d}/p{i:05d}",
            Value=f"drift{i}",
            Type=("String", "SecureString")[i % 2],
            Overwrite=True,
        )
    run("1 % drift (1st region)")
    runs = 3 if args.presync else 4
    while runs < min(max(args.deep_every, 3), args.max_runs):  # slices 0..K-1: one full deep check
        run("in sync (deep slice)")
        runs += 1
    out["runs_for_full_deep_check"] = args.deep_every
    out["deep_checked_total"] = deep_checked
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--params", type=int, default=100)
    parser.add_argument("--regions", type=int, default=3, choices=range(1, len(ALL_TARGETS) + 1))
    parser.add_argument("--rate", type=float, default=10.0, help="write calls per second per target region")
    parser.add_argument("--burst", type=float, default=None, help="token bucket size (default: = rate)")
    parser.add_argument("--concurrency", type=int, default=10, help="concurrent handler invocations")
    parser.add_argument("--arrival", type=float, default=100.0, help="changes per second (0: all at once)")
    parser.add_argument(
        "--sequential", action="store_true", help="apply every change before handling any event (no overlap)"
    )
    parser.add_argument(
        "--late", type=float, default=2.0, help="events are delivered 0..LATE s after the change"
    )
    parser.add_argument("--duplicates", type=float, default=0.05, help="share of events delivered twice")
    parser.add_argument(
        "--retry-delay", type=float, default=1.0, help="seconds before a failed event is retried"
    )
    parser.add_argument(
        "--reconcile", type=int, default=2000, help="parameters for the reconcile runs (0: skip)"
    )
    parser.add_argument(
        "--deep-every", type=int, default=4, help="RECONCILE_DEEP_EVERY for the reconcile runs"
    )
    parser.add_argument("--max-runs", type=int, default=8, help="stop the reconcile runs after this many")
    parser.add_argument(
        "--short-pages",
        type=int,
        default=0,
        help="reconcile: DescribeParameters returns a random 0..N results a page (0: off)",
    )
    parser.add_argument(
        "--other-tagged",
        type=int,
        default=0,
        help="reconcile: N other tagged, not replicated parameters in every region",
    )
    parser.add_argument(
        "--presync", action="store_true", help="write the replicas directly instead of an initial reconcile"
    )
    parser.add_argument("--memory", action="store_true", help="trace the in-sync run's peak memory (slower)")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    args.burst = args.rate if args.burst is None else args.burst
    targets = ALL_TARGETS[: args.regions]

    # per-parameter lines off; failures (e.g. throttling exhausted, then re-invoked) are counted instead
    logging.getLogger("rotation_handlers").setLevel(logging.CRITICAL)
    metrics.SINK = lambda _line: None  # the handlers' metric lines too (they ignore the log level)
    os.environ["REPLICA_REGIONS"] = ",".join(targets)
    os.environ["REPLICATOR_ROLE_ARN"] = ev.role_arn(ev.ROLE_NAME_REPLICATOR)
    os.environ["RECONCILE_REQUESTS_PER_SECOND"] = "0"  # moto: measure calls, not the budget
    os.environ["RECONCILE_DEEP_EVERY"] = str(args.deep_every)
    if args.other_tagged:  # replicate /fleet only: the others are filtered out by DescribeParameters
        os.environ["REPLICATE_PATHS"] = "/fleet"
    _patch_moto_page_size()

    cmd = " ".join(["bench/bench_replicate.py", *sys.argv[1:]])
    print(f"command: .venv/bin/python {cmd}")
    if args.changes:
        print(
            f"burst: {args.changes} changes over {args.params} parameters (half on the hottest 10 %), "
            f"arriving at {args.arrival:g}/s, events 0-{args.late:g} s late, "
            f"{args.duplicates:.0%} duplicated; "
            f"{SOURCE} -> {','.join(targets)}, write cap {args.rate:g}/s per region (bucket {args.burst:g}), "
            f"{args.concurrency} concurrent invocations"
        )
        with mock_aws():
            clients.reset()
            res = burst(args, targets)
        print(f"changes applied: {res['kinds']}; events delivered: {res['events']}")
        print(f"{'region':<16}{'min writes':>11}{'issued':>8}{'throttled':>10}{'reads':>8}")
        for row in res["rows"]:
            print(
                f"{row['region']:<16}{row['min_writes']:>11}{row['writes_issued']:>8}{row['throttled']:>10}"
                f"{row['reads']:>8}"
            )
        print(
            f"source reads: {res['source_reads']}; invocations: {res['invocations']}; "
            f"dead-lettered: {res['dead']}; lost: {res['lost']}; wrong: {res['wrong']}"
        )
        print(
            f"time {res['elapsed']:.1f} s vs lower bound {res['lower_bound']:.1f} s "
            f"= {res['elapsed'] / max(res['lower_bound'], 1e-9):.2f}x (bound: last event due at "
            f"{res['last_due']:.1f} s, min writes / rate {res['write_bound']:.1f} s; changes done at "
            f"{res['produced_at']:.1f} s; each final write no earlier than its change "
            f"{res['release_bound']:.1f} s)"
        )
        print(
            f"writes issued (all regions): {res['write_kinds']} (duplicate: the target already held it; "
            f"stale: the source had moved on); backoff slept {res['backoff_s']:.0f} thread-s; "
            f"write capacity left idle {res['idle_s']:.1f} s per region"
        )
    if args.reconcile:
        with mock_aws():
            clients.reset()
            rec = reconcile_bench(args, targets)
        print(
            f"\nreconcile: {args.reconcile} parameters to {len(targets)} regions "
            f"(setup {rec['setup_s']:.1f} s), "
            f"RECONCILE_DEEP_EVERY={args.deep_every}, no write cap"
        )
        print(
            f"{'run':<26}{'time s':>8}{'calls':>8}{'/param/region':>14}{'writes':>8}{'deep':>6}"
            f"{'peak MB':>8}  by operation"
        )
        for row in rec["runs"]:
            ops = ", ".join(f"{op} {n}" for op, n in sorted(row["by_op_total"].items()))
            peak = f"{row['peak_mb']:.1f}" if row["peak_mb"] else "-"
            print(
                f"{row['label']:<26}{row['elapsed']:>8.1f}{row['calls']:>8}{row['per_param_region']:>14.3f}"
                f"{row['writes']:>8}{row['deep']['parameters']:>6}{peak:>8}  {ops}"
            )
        print(
            f"in sync over a cycle of {args.deep_every} runs (targets listed in full once, then read by "
            f"name): {rec['amortized']:.3f} calls per parameter per region"
        )
        print(
            f"deep-checked over the runs: {rec['deep_checked_total']} parameter checks; every parameter is "
            f"deep-checked once every {rec['runs_for_full_deep_check']} runs"
        )
    print(f"\ncommand: .venv/bin/python {cmd}")


if __name__ == "__main__":
    main()
