"""Checks one printed line against the CloudWatch Embedded Metric Format specification.

"Specification: Embedded metric format"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
the root holds ``_aws`` (``Timestamp``: ms since the epoch; ``CloudWatchMetrics``: directives of
``Namespace``, ``Dimensions``, ``Metrics``), and each dimension key and metric name is a root member
(dimension values strings, metric values numbers or arrays of at most 100 numbers). A directive holds
at most 100 metrics, a dimension set at most 30 keys, a unit is one of CloudWatch's units. On top of
the specification, the project's own rules: only metrics declared in ``rotation_handlers.metrics``
with their declared unit, low-cardinality dimension values, nothing else in the line.
"""

from __future__ import annotations

import json
from typing import Any

from rotation_handlers import metrics
from rotation_handlers.engines import ENGINES
from rotation_handlers.protocol import STEPS

#: Dimension keys and the values each may take (None: the function's name).
DIMENSIONS: dict[str, frozenset[str] | None] = {
    metrics.FUNCTION_DIMENSION: None,
    "Step": frozenset({*STEPS, "invalid"}),
    "Outcome": frozenset({"succeeded", "failed"}),
    "Strategy": frozenset({"single", "alternating", "unknown"}),
    "Engine": frozenset({*ENGINES, "unknown"}),
}

#: What each function prints: tests/rotation/test_metrics.py and tests/replication/test_metrics.py
#: prove every name here is printed by the handlers; tests/infra/test_dashboard.py checks that the
#: dashboards name only these.
ROTATION_METRICS = frozenset(
    {metrics.STEP_DURATION, metrics.ROTATIONS, metrics.FAILED_LOGINS, metrics.DB_CONNECTIONS},
)
REPLICATION_METRICS = frozenset(
    {
        metrics.EVENTS_HANDLED,
        metrics.EVENTS_IGNORED,
        metrics.WRITES_WRITTEN,
        metrics.WRITES_UNCHANGED,
        metrics.WRITES_THROTTLED,
        metrics.WRITES_REFUSED,
        metrics.WRITES_FAILED,
        metrics.REPLICATION_LAG,
        metrics.DRIFT_FOUND,
        metrics.DRIFT_FIXED,
        metrics.RECONCILE_PROGRESS,
    }
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_line(line: str) -> dict[str, Any]:
    """The parsed line; AssertionError naming the first rule it breaks."""
    doc = json.loads(line)
    assert isinstance(doc, dict), "an EMF line is a JSON object"
    meta = doc.get("_aws")
    assert isinstance(meta, dict) and set(meta) == {"Timestamp", "CloudWatchMetrics"}, meta
    ts = meta["Timestamp"]
    assert isinstance(ts, int) and 1_600_000_000_000 < ts < 4_000_000_000_000, f"Timestamp in ms: {ts}"
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives, "CloudWatchMetrics: a non-empty array"
    referenced = {"_aws"}
    for d in directives:
        assert set(d) == {"Namespace", "Dimensions", "Metrics"}, d
        assert d["Namespace"] == metrics.NAMESPACE and 1 <= len(d["Namespace"]) <= 255
        assert isinstance(d["Dimensions"], list)
        for dim_set in d["Dimensions"]:
            assert isinstance(dim_set, list) and len(dim_set) <= metrics.MAX_DIMENSIONS, dim_set
            for key in dim_set:
                assert key in DIMENSIONS, f"undeclared dimension {key!r}"
                value = doc.get(key)
                assert isinstance(value, str) and 1 <= len(value) <= 1024, f"{key}={value!r}"
                allowed = DIMENSIONS[key]
                assert allowed is None or value in allowed, f"{key}={value!r} not in {sorted(allowed)}"
                referenced.add(key)
        assert isinstance(d["Metrics"], list) and 1 <= len(d["Metrics"]) <= metrics.MAX_METRICS
        for m in d["Metrics"]:
            assert set(m) <= {"Name", "Unit", "StorageResolution"} and "Name" in m, m
            name, unit = m["Name"], m.get("Unit")
            assert name in metrics.METRICS, f"undeclared metric {name!r}"
            assert unit in metrics.UNITS and unit == metrics.METRICS[name], f"{name}: unit {unit!r}"
            value = doc.get(name)
            if isinstance(value, list):
                assert 1 <= len(value) <= metrics.MAX_VALUES and all(map(_number, value)), name
            else:
                assert _number(value), f"{name}={value!r}"
            referenced.add(name)
    extra = set(doc) - referenced - set(DIMENSIONS)
    assert not extra, f"members no directive uses: {sorted(extra)}"
    return doc


def values(docs: list[dict[str, Any]], name: str, **dims: str) -> list[float]:
    """Every value of metric ``name`` in ``docs`` whose dimensions match ``dims``."""
    out: list[float] = []
    for doc in docs:
        names = {m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
        if name in names and all(doc.get(k) == v for k, v in dims.items()):
            value = doc[name]
            out.extend(value if isinstance(value, list) else [value])
    return out
