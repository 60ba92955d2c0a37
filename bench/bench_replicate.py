"""Benchmark of the SSM replication Lambda against moto (in-process, no network).

Part 1 - burst: N changes (value overwrites, tag adds/changes, tag removals, deletes and
re-creates) over M parameters in the source region, applied at once; then one EventBridge
event per change is delivered, shuffled (late and out of order), by C concurrent
"invocations" of ``rotation_handlers.replicate.handler``. A failed invocation is re-invoked
twice (Lambda async retries), then counted as dead-lettered. Each target region's writes are
capped by a token bucket (``--rate`` per second, burst ``--burst``) in a botocore
``before-call`` hook that raises ``ThrottlingException`` when the bucket is empty - the way
Parameter Store answers, so the replicator's own retry loop is what is measured. Reports the
time against the lower bound (minimum writes / rate), writes issued against the minimum
(computed independently from the initial and final source states) and lost or wrong
parameters (every target compared to the source at the end; must be 0).

Part 2 - reconcile: R parameters in the source, empty targets: a full reconcile (creates
everything), then a second one (everything in sync): API calls and time. No write cap here.

    .venv/bin/python bench/bench_replicate.py [--changes 1000 --params 100 --regions 3 --rate 10]
                                              [--reconcile 10000]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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

from rotation_handlers import replicate  # noqa: E402
from rotation_handlers.replication import MARKER_TAG_KEY, clients  # noqa: E402
from rotation_handlers.replication.events import CLOUDTRAIL_EVENT_NAMES  # noqa: E402
from tests.replication import events as ev  # noqa: E402

SOURCE = "us-east-1"
ALL_TARGETS = ["eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1", "ap-northeast-1"]
#: The SSM calls that change a parameter: the ones the replicator writes with.
WRITE_OPS = frozenset(CLOUDTRAIL_EVENT_NAMES)


def _patch_moto_page_size() -> None:
    """moto pages DescribeParameters by 10 whatever MaxResults says; AWS honours up to 50."""
    original = SimpleSystemManagerResponse.describe_parameters

    def describe_parameters(self: SimpleSystemManagerResponse) -> Any:
        page_size = int(self._get_param("MaxResults") or 10)
        token = int(str(self._get_param("NextToken") or "0").strip() or 0)
        result = self.ssm_backend.describe_parameters(
            self._get_param("Filters"), self._get_param("ParameterFilters")
        )
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

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
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


def install(regions: list[str], counter: CallCounter, buckets: dict[str, TokenBucket]) -> None:
    for region in regions:
        client = clients.ssm(region)
        client.meta.events.register("before-call.ssm", counter.hook(region))
        bucket = buckets.get(region)
        if bucket is None:
            continue

        def limit(model: Any, bucket: TokenBucket = bucket, **_: Any) -> None:
            if model.name in WRITE_OPS and not bucket.take():
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, model.name
                )

        client.meta.events.register("before-call.ssm", limit)


# -- model of the source, to compute the minimum number of writes independently ---------------
Model = dict[str, tuple[str, str, dict[str, str]] | None]  # name -> (type, value, tags) or None


def min_writes(initial: Model, final: Model) -> int:
    """Fewest write calls that take a replica from ``initial`` to ``final`` (per region)."""
    total = 0
    for name in set(initial) | set(final):
        before, after = initial.get(name), final.get(name)
        if after is None:
            total += before is not None  # one DeleteParameter
        elif before is None:
            total += 1  # one PutParameter with tags
        else:
            total += (before[0], before[1]) != (after[0], after[1])  # PutParameter (Overwrite)
            total += any(before[2].get(k) != v for k, v in after[2].items())  # AddTagsToResource
            total += any(k not in after[2] for k in before[2])  # RemoveTagsFromResource
    return total


def burst(args: argparse.Namespace, targets: list[str]) -> dict[str, Any]:
    rng = random.Random(args.seed)
    ssm = clients.ssm(SOURCE)
    model: Model = {}
    types = ["String", "SecureString", "StringList"]
    for i in range(args.params):
        name = f"/bench/app{i % 10}/param{i:04d}"
        type_ = types[i % 3]
        tags = {"team": f"t{i % 4}"} if i % 2 else {}
        value = f"initial-{i}-{rng.random():.6f}"
        ssm.put_parameter(
            Name=name, Value=value, Type=type_, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
        model[name] = (type_, value, dict(tags))
    replicate.reconcile_handler({}, None)  # initial sync, not measured, no cap
    initial: Model = {k: (v[0], v[1], dict(v[2])) if v else None for k, v in model.items()}

    events: list[dict[str, Any]] = []
    names = sorted(model)
    kinds = Counter[str]()
    for n in range(args.changes):
        name = rng.choice(names)
        state = model[name]
        roll = rng.random()
        if state is None:  # deleted earlier in the burst: re-create it
            value = f"recreated-{n}"
            ssm.put_parameter(Name=name, Value=value, Type="String")
            model[name] = ("String", value, {})
            events.append(ev.put_parameter_event(name))
            kinds["recreate"] += 1
        elif roll < 0.70:
            value = f"value-{n}-{rng.random():.6f}"
            ssm.put_parameter(Name=name, Value=value, Type=state[0], Overwrite=True)
            model[name] = (state[0], value, state[2])
            events.append(ev.put_parameter_event(name, state[0], overwrite=True))
            kinds["overwrite"] += 1
        elif roll < 0.85:
            key, val = f"k{rng.randrange(3)}", f"v{n}"
            ssm.add_tags_to_resource(
                ResourceType="Parameter", ResourceId=name, Tags=[{"Key": key, "Value": val}]
            )
            model[name] = (state[0], state[1], {**state[2], key: val})
            events.append(ev.add_tags_event(name, {key: val}))
            kinds["add-tag"] += 1
        elif roll < 0.95 and state[2]:
            key = rng.choice(sorted(state[2]))
            ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=[key])
            model[name] = (state[0], state[1], {k: v for k, v in state[2].items() if k != key})
            events.append(ev.remove_tags_event(name, [key]))
            kinds["remove-tag"] += 1
        else:
            ssm.delete_parameter(Name=name)
            model[name] = None
            events.append(ev.delete_parameter_event(name))
            kinds["delete"] += 1
    rng.shuffle(events)  # CloudTrail delivery is late and unordered

    counter = CallCounter()
    buckets = {r: TokenBucket(args.rate, args.burst) for r in targets}
    install([SOURCE, *targets], counter, buckets)

    invocations = Counter[str]()
    dead: list[str] = []
    lock = threading.Lock()

    def deliver(event: dict[str, Any]) -> None:
        for attempt in range(3):  # Lambda async invocation: 1 try + 2 retries, then the DLQ
            with lock:
                invocations["total"] += 1
            try:
                replicate.handler(event, None)
                return
            except Exception:
                with lock:
                    invocations["failed"] += 1
                if attempt == 2:
                    with lock:
                        dead.append(event["id"])

    start = time.monotonic()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(deliver, events))
    elapsed = time.monotonic() - start

    lost = wrong = 0
    for name, state in model.items():
        for region in targets:
            client = clients.ssm(region)
            try:
                got = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]
                tags = client.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
                tag_map = {t["Key"]: t["Value"] for t in tags if t["Key"] != MARKER_TAG_KEY}
            except ClientError:
                got = None
            if state is None:
                wrong += got is not None
            elif got is None:
                lost += 1
            elif (got["Type"], got["Value"], tag_map) != state:
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
                "lower_bound_s": max(0.0, (minimum - args.burst) / args.rate),
            }
        )
    return {
        "kinds": dict(kinds),
        "events": len(events),
        "elapsed": elapsed,
        "lower_bound": minimum / args.rate,
        "rows": rows,
        "invocations": dict(invocations),
        "dead": len(dead),
        "lost": lost,
        "wrong": wrong,
        "source_reads": counter.total(SOURCE),
    }


def reconcile_bench(count: int, targets: list[str]) -> dict[str, Any]:
    ssm = clients.ssm(SOURCE)
    t0 = time.monotonic()
    for i in range(count):
        extra: dict[str, Any] = {"Tags": [{"Key": "owner", "Value": f"o{i % 7}"}]} if i % 3 == 0 else {}
        ssm.put_parameter(
            Name=f"/fleet/svc{i % 50:02d}/p{i:05d}",
            Value=f"v{i}",
            Type=("String", "SecureString")[i % 2],
            **extra,
        )
    setup = time.monotonic() - t0
    out: dict[str, Any] = {"setup_s": setup, "runs": []}
    for label in ("initial (targets empty)", "second (in sync)"):
        counter = CallCounter()
        install([SOURCE, *targets], counter, {})
        start = time.monotonic()
        summary = replicate.reconcile_handler({}, None)
        elapsed = time.monotonic() - start
        out["runs"].append(
            {
                "label": label,
                "elapsed": elapsed,
                "calls": counter.total(),
                "writes": counter.total(ops=WRITE_OPS),
                "by_op_total": Counter(op for (_, op), n in counter.calls.items() for _ in range(n)),
                "actions": summary["regions"],
            }
        )
        clients.reset()  # drop this run's hooks
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
    parser.add_argument(
        "--reconcile",
        type=int,
        default=2000,
        help="parameters for the reconcile runs (0: skip; 10000 takes about 5 minutes under moto)",
    )
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    args.burst = args.rate if args.burst is None else args.burst
    targets = ALL_TARGETS[: args.regions]

    # per-parameter lines off; failures (e.g. throttling exhausted, then re-invoked) are counted instead
    logging.getLogger("rotation_handlers").setLevel(logging.CRITICAL)
    os.environ["REPLICA_REGIONS"] = ",".join(targets)
    os.environ["REPLICATOR_ROLE_ARN"] = ev.role_arn(ev.ROLE_NAME_REPLICATOR)
    _patch_moto_page_size()

    cmd = " ".join(["bench/bench_replicate.py", *sys.argv[1:]])
    print(f"command: .venv/bin/python {cmd}")
    print(
        f"burst: {args.changes} changes over {args.params} parameters, {SOURCE} -> {','.join(targets)}, "
        f"write cap {args.rate:g}/s per region (bucket {args.burst:g}), "
        f"{args.concurrency} concurrent invocations"
    )
    if args.changes:
        with mock_aws():
            clients.reset()
            res = burst(args, targets)
        print(f"changes applied: {res['kinds']}; events delivered: {res['events']} (shuffled)")
        print(
            f"{'region':<16}{'min writes':>11}{'issued':>8}{'throttled':>10}{'reads':>8}"
            f"{'lower bound s':>15}{'elapsed s':>11}"
        )
        for row in res["rows"]:
            print(
                f"{row['region']:<16}{row['min_writes']:>11}{row['writes_issued']:>8}{row['throttled']:>10}"
                f"{row['reads']:>8}{row['lower_bound_s']:>15.1f}{res['elapsed']:>11.1f}"
            )
        print(
            f"source reads: {res['source_reads']}; invocations: {res['invocations']}; "
            f"dead-lettered: {res['dead']}; lost parameters: {res['lost']}; wrong parameters: {res['wrong']}"
        )
        print(
            f"time {res['elapsed']:.1f} s vs lower bound {res['lower_bound']:.1f} s (min writes / rate; "
            f"{max(r['lower_bound_s'] for r in res['rows']):.1f} s counting the initial bucket)"
        )
    if args.reconcile:
        with mock_aws():
            clients.reset()
            rec = reconcile_bench(args.reconcile, targets)
        print(f"\nreconcile: {args.reconcile} parameters (setup {rec['setup_s']:.1f} s), no write cap")
        print(f"{'run':<26}{'time s':>8}{'API calls':>11}{'writes':>8}  calls by operation")
        for run in rec["runs"]:
            ops = ", ".join(f"{op} {n}" for op, n in sorted(run["by_op_total"].items()))
            print(f"{run['label']:<26}{run['elapsed']:>8.1f}{run['calls']:>11}{run['writes']:>8}  {ops}")
        print(f"actions (second run): {rec['runs'][-1]['actions']}")
    print(f"\ncommand: .venv/bin/python {cmd}")


if __name__ == "__main__":
    main()
