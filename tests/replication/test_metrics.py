"""The replication functions' metric lines (EMF): events, writes by outcome, lag, reconcile drift.

Every line is also checked against the EMF specification by the ``emf_lines`` fixture
(tests/conftest.py, tests/emf_spec.py) when each test ends.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from rotation_handlers import metrics, replicate
from rotation_handlers.replication import ReplicationError
from tests.emf_spec import REPLICATION_METRICS, values
from tests.replication import events as ev
from tests.replication.conftest import EU, US, Aws, secret


def at(seconds_ago: float) -> str:
    return datetime.fromtimestamp(time.time() - seconds_ago, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_event_writes_and_lag_from_the_event_time(aws: Aws, emf_lines: list) -> None:
    aws.put("/app/m1", secret())
    event = ev.put_parameter_event("/app/m1")
    event["time"] = at(120)  # the change happened two minutes before the handler ran
    replicate.handler(event, None)
    assert values(emf_lines, metrics.EVENTS_HANDLED) == [1]
    assert values(emf_lines, metrics.WRITES_WRITTEN) == [2]  # one per target region
    assert values(emf_lines, metrics.WRITES_UNCHANGED) == [0]
    lag = values(emf_lines, metrics.REPLICATION_LAG)
    assert len(lag) == 2 and all(v >= 120_000 for v in lag)
    assert all(doc[metrics.FUNCTION_DIMENSION] == "local" for doc in emf_lines)

    emf_lines.clear()
    replicate.handler(event, None)  # again: nothing to write, no lag
    assert values(emf_lines, metrics.WRITES_UNCHANGED) == [2]
    assert values(emf_lines, metrics.WRITES_WRITTEN) == [0]
    assert values(emf_lines, metrics.REPLICATION_LAG) == []


def test_ignored_event(aws: Aws, emf_lines: list) -> None:
    replicate.handler(ev.put_parameter_event("/app/x", error_code="AccessDenied"), None)
    assert values(emf_lines, metrics.EVENTS_IGNORED) == [1]
    assert values(emf_lines, metrics.EVENTS_HANDLED) == []


def test_throttled_refused_and_failed_writes(aws: Aws, env: pytest.MonkeyPatch, emf_lines: list) -> None:
    aws.put("/app/thr", secret())
    aws.inject(EU, "PutParameter", "ThrottlingException", times=2)
    replicate.handler(ev.put_parameter_event("/app/thr"), None)
    assert values(emf_lines, metrics.WRITES_THROTTLED) == [2]
    assert values(emf_lines, metrics.WRITES_WRITTEN) == [2]

    emf_lines.clear()
    aws.put("/app/theirs", secret("theirs"), region=EU)
    aws.put("/app/theirs", secret("ours"))
    replicate.handler(ev.put_parameter_event("/app/theirs"), None)
    assert values(emf_lines, metrics.WRITES_REFUSED) == [1]
    assert values(emf_lines, metrics.WRITES_WRITTEN) == [1]

    emf_lines.clear()
    env.setenv("REPLICATION_MAX_ATTEMPTS", "2")
    aws.put("/app/thr2", secret())
    aws.inject(US, "PutParameter", "ThrottlingException")
    with pytest.raises(ReplicationError):
        replicate.handler(ev.put_parameter_event("/app/thr2"), None)
    # the metrics line is printed before the invocation fails
    assert values(emf_lines, metrics.WRITES_FAILED) == [1]
    assert values(emf_lines, metrics.WRITES_THROTTLED) == [2]


def test_reconcile_drift_found_fixed_and_progress(aws: Aws, emf_lines: list) -> None:
    aws.put("/app/r1", secret())
    aws.put("/app/r2", secret())
    replicate.reconcile_handler({}, None)
    assert values(emf_lines, metrics.DRIFT_FOUND) == [4]  # two parameters missing in two regions
    assert values(emf_lines, metrics.DRIFT_FIXED) == [4]
    assert values(emf_lines, metrics.RECONCILE_PROGRESS) == [100.0]

    emf_lines.clear()
    replicate.reconcile_handler({}, None)
    assert values(emf_lines, metrics.DRIFT_FOUND) == [0]
    assert values(emf_lines, metrics.DRIFT_FIXED) == [0]
    assert values(emf_lines, metrics.WRITES_UNCHANGED) == [4]

    emf_lines.clear()
    aws.put("/app/r3", secret())
    replicate.reconcile_handler({"dryRun": True}, None)
    assert values(emf_lines, metrics.DRIFT_FOUND) == [2]
    assert values(emf_lines, metrics.DRIFT_FIXED) == [0]  # a dry run fixes nothing


def test_lag_lines_split_at_100_values(emf_lines: list) -> None:
    metrics.emit([([[]], {metrics.REPLICATION_LAG: list(range(250)), metrics.WRITES_WRITTEN: 250})])
    assert [len(doc[metrics.REPLICATION_LAG]) for doc in emf_lines] == [100, 100, 50]
    assert values(emf_lines, metrics.WRITES_WRITTEN) == [250]


def test_every_replication_metric_is_emitted(aws: Aws, emf_lines: list) -> None:
    """Together with the tests above: the names the dashboard may use are names printed here."""
    aws.put("/app/all", secret())
    aws.put("/app/theirs2", secret("theirs"), region=EU)
    aws.put("/app/theirs2", secret("ours"))
    aws.inject(US, "PutParameter", "ThrottlingException", times=1)
    replicate.handler(ev.put_parameter_event("/app/all"), None)
    replicate.handler(ev.put_parameter_event("/app/all", error_code="AccessDenied"), None)
    replicate.reconcile_handler({}, None)
    seen = {m["Name"] for doc in emf_lines for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert seen == REPLICATION_METRICS


def test_reconcile_progress_of_a_run_stopped_by_its_deadline(aws: Aws, env: pytest.MonkeyPatch) -> None:
    from rotation_handlers.replication.config import load_config
    from rotation_handlers.replication.engine import Engine
    from rotation_handlers.replication.reconcile import reconcile

    env.setenv("RECONCILE_CONCURRENCY", "1")
    env.setenv("RECONCILE_DEEP_EVERY", "1")
    for i in range(4):
        aws.put(f"/app/c{i}", secret(f"c{i}"))
    now = {"t": 0}

    def tick(model: object, **_: object) -> None:  # time passes as the writes happen
        now["t"] += 1

    aws.on(aws.ssm(EU), "before-call.ssm.PutParameter", tick)
    engine = Engine(load_config(__import__("os").environ))
    reconcile(engine, deadline=2, clock=lambda: now["t"])
    # 4 drifted parameters and 4 deep checks to do; 2 drifted ones done before the deadline
    assert engine.reconcile_metrics == {metrics.RECONCILE_PROGRESS: 25.0, metrics.DRIFT_FOUND: 8}
