"""Benchmark of ``secretsctl param plan`` over a large desired-state file (moto, in process).

N parameters exist under one path (a tenth of them SecureString, a twentieth with tags managed
by the file, a tenth with a different value); the desired state lists all of them plus N/100 new
ones. ``plan`` runs under the CLI's request budget with a virtual clock, so the figure reported
as "time at the budget" is what the same calls take against AWS at that rate (the emulator itself
answers in microseconds), and the budget's peak rate is checked against Parameter Store's default
40 transactions per second for GetParameter/GetParameters/GetParametersByPath.

    .venv/bin/python bench/bench_param_plan.py [--params 2000] [--rate 10] [--burst 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.update(
    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
)


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=10)
    args = parser.parse_args()

    import boto3
    from moto import mock_aws

    from secretsctl import params
    from secretsctl.desired_state import DesiredParameter, DesiredState

    n = args.params
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        desired: dict[str, DesiredParameter] = {}
        for i in range(n):
            name = f"/bench/app/p{i:05d}"
            kind = "SecureString" if i % 10 == 0 else "String"
            value = f"value-{i}"
            tags = {"team": "bench"} if i % 20 == 0 else None
            ssm.put_parameter(
                Name=name,
                Value=value,
                Type=kind,
                **({"Tags": [{"Key": "team", "Value": "x"}]} if tags else {}),
            )
            desired[name] = DesiredParameter(name, kind, value + ("-new" if i % 10 == 5 else ""), tags=tags)
        for i in range(n // 100):
            name = f"/bench/app/new{i:04d}"
            desired[name] = DesiredParameter(name, "String", f"new-{i}")
        state = DesiredState("bench", ("/bench/app/",), desired)

        clock = VirtualClock()
        budget = params.RequestBudget(args.rate, args.burst, clock=clock, sleep=clock.sleep)
        times: list[float] = []
        original = budget.acquire

        def acquire() -> None:
            original()
            times.append(clock.now)

        budget.acquire = acquire  # type: ignore[method-assign]
        started = time.perf_counter()
        plan = params.plan(budget.attach(ssm), state, prune=True)
        wall = time.perf_counter() - started

    report = budget.report()
    peak = max(sum(1 for t in times if start <= t < start + 1.0) for start in times) if times else 0
    print(f"parameters: {n} existing + {n // 100} new; plan: {plan.counts()}")
    print(f"API calls: {report['total']} {report['byOperation']}")
    print(f"time at the budget ({args.rate:g}/s, burst {args.burst}): {clock.now:.1f} s (virtual clock)")
    print(f"peak requests in any 1-second window: {peak} (Parameter Store default read quota: 40/s)")
    print(f"wall time against moto in process: {wall:.1f} s")


if __name__ == "__main__":
    main()
