"""CloudWatch metrics as Embedded Metric Format (EMF) lines on stdout: no API call, no dependency.

Lambda sends stdout to CloudWatch Logs, and CloudWatch Logs turns every line that follows the EMF
specification into metrics ("Using the embedded metric format with Lambda",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Lambda.html).
One line is one JSON object: an ``_aws`` member with ``Timestamp`` (ms since the epoch) and
``CloudWatchMetrics`` (directives of ``Namespace``, ``Dimensions`` and ``Metrics``), and the
dimension and metric values as members of the root ("Specification: Embedded metric format",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
Limits from that page, enforced here: at most 100 metrics per directive, 30 dimension keys per
set, 100 values per metric, units from the CloudWatch ``MetricDatum`` list.

Every metric this project publishes is declared in :data:`METRICS` (name -> unit): :func:`emit`
refuses any other name, the dashboard (``infra/dashboard.py``) takes its names from there, and the
tests check every printed line against the specification. Dimension values are short words from
fixed sets (step, outcome, strategy, engine) and the function's name: never a secret name, ARN,
parameter name or value (each distinct dimension value is a billed custom metric).

Lines are written straight to stdout, not through ``logging``: a raised log level
(``AWS_LAMBDA_LOG_LEVEL=WARN``) hides the INFO lines but must not drop the metrics. With the
functions' JSON log format, Lambda wraps only records of the ``logging`` module; other stdout output
is sent as it is ("Log and monitor Python Lambda functions",
https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html), so each line stays an EMF document.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence

NAMESPACE = "SecretsRotation"
#: The function that printed the line: separates deployments (stacks) in one account and region.
FUNCTION_DIMENSION = "FunctionName"

#: Units CloudWatch accepts in a MetricDatum (PutMetricData reference, "Unit").
UNITS = frozenset(
    "Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits "
    "Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second "
    "Gigabytes/Second Terabytes/Second Bits/Second Kilobits/Second Megabits/Second Gigabits/Second "
    "Terabits/Second Count/Second None".split()
)
MAX_METRICS = 100
MAX_DIMENSIONS = 30
MAX_VALUES = 100

# -- rotation (one line per step invocation) -----------------------------------------------------
STEP_DURATION = "StepDuration"
ROTATIONS = "Rotations"  # a rotation ended: finishSecret succeeded, or a step failed
FAILED_LOGINS = "FailedLogins"  # logins the database rejected (expected 0)
DB_CONNECTIONS = "DbConnections"
# -- replication (one line per event / reconcile run) --------------------------------------------
EVENTS_HANDLED = "EventsHandled"
EVENTS_IGNORED = "EventsIgnored"
WRITES_WRITTEN = "WritesWritten"
WRITES_UNCHANGED = "WritesUnchanged"
WRITES_THROTTLED = "WritesThrottled"
WRITES_REFUSED = "WritesRefused"
WRITES_FAILED = "WritesFailed"
REPLICATION_LAG = "ReplicationLag"  # the source change (event time) to the target write
DRIFT_FOUND = "DriftFound"
DRIFT_FIXED = "DriftFixed"
RECONCILE_PROGRESS = "ReconcileProgress"

METRICS: dict[str, str] = {
    STEP_DURATION: "Milliseconds",
    ROTATIONS: "Count",
    FAILED_LOGINS: "Count",
    DB_CONNECTIONS: "Count",
    EVENTS_HANDLED: "Count",
    EVENTS_IGNORED: "Count",
    WRITES_WRITTEN: "Count",
    WRITES_UNCHANGED: "Count",
    WRITES_THROTTLED: "Count",
    WRITES_REFUSED: "Count",
    WRITES_FAILED: "Count",
    REPLICATION_LAG: "Milliseconds",
    DRIFT_FOUND: "Count",
    DRIFT_FIXED: "Count",
    RECONCILE_PROGRESS: "Percent",
}

#: Where lines go: stdout (what Lambda ships to CloudWatch Logs). The local run and tests replace it.
SINK: Callable[[str], None] | None = None

Value = float | int | Sequence[float | int]


def function_name() -> str:
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "local"


def _write(line: str) -> None:
    if SINK is not None:
        SINK(line)
        return
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):  # a closed or broken stdout must not fail a rotation
        pass


def emit(
    groups: Sequence[tuple[Sequence[Sequence[str]], Mapping[str, Value]]],
    dimensions: Mapping[str, str] | None = None,
) -> None:
    """Print EMF line(s): each group is (dimension sets, {metric: value or list of values}).

    Every dimension set also gets ``FunctionName``. Lists longer than 100 values continue on
    further lines. Nothing here raises at run time for a bad value: a metric is never worth a
    failed rotation, so a wrong name or unit is a programming error the tests catch.
    """
    dims = {FUNCTION_DIMENSION: function_name(), **(dimensions or {})}
    pending = [
        ([[FUNCTION_DIMENSION, *s] for s in sets], {k: _values(v) for k, v in metrics.items()})
        for sets, metrics in groups
        if metrics
    ]
    while pending:
        root: dict[str, object] = dict(dims)
        directives = []
        rest = []
        for sets, metrics in pending:
            now = {k: v[:MAX_VALUES] for k, v in metrics.items()}
            later = {k: v[MAX_VALUES:] for k, v in metrics.items() if len(v) > MAX_VALUES}
            names = [k for k, v in now.items() if v]
            if later:
                rest.append((sets, later))
            if not names:
                continue
            directives.append(
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": sets,
                    "Metrics": [{"Name": n, "Unit": METRICS[n]} for n in names],
                }
            )
            root.update({n: now[n][0] if len(now[n]) == 1 else now[n] for n in names})
        pending = rest
        if directives:
            root["_aws"] = {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}
            _write(json.dumps(root, separators=(",", ":")))


def _word(value: object) -> str:
    """A dimension value from a short fixed set (engine, strategy); anything else is "unknown"."""
    text = str(value) if value else ""
    return text if 0 < len(text) <= 32 and text.replace("-", "").replace("_", "").isalnum() else "unknown"


def emit_rotation_step(
    step: str,
    status: str,
    duration_ms: float,
    *,
    ended: bool,
    strategy: object = None,
    engine: object = None,
    connections: object = 0,
    failed_logins: object = 0,
) -> None:
    """One rotation step's line: its duration, connections and rejected logins per step, and
    ``Rotations`` by outcome (and by strategy and engine) when the step ended a rotation."""
    emit(
        [
            (
                [["Step"], []],
                {
                    STEP_DURATION: duration_ms,
                    DB_CONNECTIONS: connections if isinstance(connections, int) else 0,
                    FAILED_LOGINS: failed_logins if isinstance(failed_logins, int) else 0,
                },
            ),
            ([["Outcome"], ["Outcome", "Strategy", "Engine"]], {ROTATIONS: 1} if ended else {}),
        ],
        {
            "Step": step,
            "Outcome": "succeeded" if status == "ok" else "failed",
            "Strategy": _word(strategy),
            "Engine": _word(engine),
        },
    )


def _values(value: Value) -> list[float | int]:
    if isinstance(value, int | float):
        return [value]
    return [v for v in value]


__all__ = ["METRICS", "NAMESPACE", "emit"]
