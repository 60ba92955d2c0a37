"""Batched reads and the request budget: counted API calls, never timed."""

from __future__ import annotations

import pytest

from secretsctl import params
from secretsctl.desired_state import DesiredParameter, DesiredState
from tests.cli.params_support import prefix, value


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_budget_lets_a_burst_through_then_paces_at_the_rate() -> None:
    clock = FakeClock()
    budget = params.RequestBudget(rate=10, burst=10, clock=clock, sleep=clock.sleep)
    for _ in range(30):
        budget.acquire()
    assert budget.waits == 20  # the first 10 pass at once, the next 20 wait
    assert clock.now == pytest.approx(2.0)  # 20 more requests at 10 per second (virtual clock)
    with pytest.raises(ValueError):
        params.RequestBudget(rate=0)


def test_plan_reads_in_batches_and_counts_every_call(emulated) -> None:
    ssm = emulated.client("ssm")
    p = prefix()
    names = [f"{p}n{i:02d}" for i in range(25)]
    for name in names:
        ssm.put_parameter(Name=name, Value=value(), Type="String")
    desired = DesiredState(
        "inline",
        (p,),
        {
            n: DesiredParameter(n, "String", value(), tags={"team": "a"} if i < 2 else None)
            for i, n in enumerate([*names, f"{p}new"])
        },
    )
    clock = FakeClock()
    budget = params.RequestBudget(rate=10, burst=10, clock=clock, sleep=clock.sleep)
    plan = params.plan(budget.attach(emulated.client("ssm")), desired)
    assert plan.counts() == {"create": 1, "modify": 25, "unchanged": 0, "delete": 0}
    # 25 existing names: one listing of the path (moto pages it by 10 whatever MaxResults says, AWS
    # by up to 50), 3 GetParameters (10 names each), and tags only for the 2 parameters whose tags
    # the file manages. Nothing per parameter otherwise.
    assert budget.report()["byOperation"] == {
        "DescribeParameters": 3,
        "GetParameters": 3,
        "ListTagsForResource": 2,
    }
