"""The dashboards and metric alarms: every widget names a metric the handlers really print.

The handler tests (tests/rotation/test_metrics.py, tests/replication/test_metrics.py) prove that each
name in ``ROTATION_METRICS`` / ``REPLICATION_METRICS`` is printed, and every printed line is checked
against the EMF specification (tests/emf_spec.py); here the synthesized dashboards may name only
those, each for its own stack's function, and must show all of them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rotation_handlers import metrics
from tests.emf_spec import REPLICATION_METRICS, ROTATION_METRICS
from tests.infra.conftest import Synth


def _resources(raw: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == kind}


def _text(value: Any) -> str:
    """A DashboardBody (``Fn::Join`` of strings and ``Ref``s) as text; a Ref becomes ``<Ref:Id>``."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_text(p) for p in parts)
    if "Ref" in value:
        return f"<Ref:{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<GetAtt:{'.'.join(value['Fn::GetAtt'])}>"
    return json.dumps(value)


def dashboard(raw: dict[str, Any]) -> dict[str, Any]:
    (resource,) = _resources(raw, "AWS::CloudWatch::Dashboard").values()
    return json.loads(_text(resource["Properties"]["DashboardBody"]))


def our_metrics(body: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """(metric name, dimensions) of every SecretsRotation metric a widget names, searches included."""
    found: list[tuple[str, dict[str, str]]] = []
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if row and row[0] == metrics.NAMESPACE:
                dims = [x for x in row[2:] if isinstance(x, str)]
                found.append((row[1], dict(zip(dims[::2], dims[1::2], strict=True))))
            elif row and isinstance(row[0], dict) and "expression" in row[0]:
                expr = row[0]["expression"]
                for name, fn in re.findall(r'MetricName="([^"]+)" FunctionName="([^"]+)"', expr):
                    assert expr.startswith(f"SEARCH('{{{metrics.NAMESPACE},"), expr
                    found.append((name, {metrics.FUNCTION_DIMENSION: fn}))
    return found


def test_widgets_name_only_metrics_the_handlers_print(example: Synth) -> None:
    for prefix, printed, functions in (
        ("SecretsRotation", ROTATION_METRICS, 1),
        ("ParameterReplication", REPLICATION_METRICS, 2),
    ):
        raw = example.raw(prefix)
        body = dashboard(raw)
        named = our_metrics(body)
        assert {name for name, _ in named} == printed, prefix  # all of them, and no other
        lambdas = {f"<Ref:{k}>" for k in _resources(raw, "AWS::Lambda::Function")}
        owners = {dims[metrics.FUNCTION_DIMENSION] for _, dims in named}
        assert len(owners) == functions and owners <= lambdas, (owners, lambdas)
        titles = [w["properties"].get("title") for w in body["widgets"]]
        assert "Function errors" in titles and "Alarms" in titles
        widths = [w["width"] for w in body["widgets"]]
        assert all(0 < w <= 24 for w in widths)


def test_replication_dashboard_shows_the_dead_letter_queue_and_function_health(example: Synth) -> None:
    body = dashboard(example.raw("ParameterReplication"))
    rows = [row for w in body["widgets"] for row in w["properties"].get("metrics", [])]
    assert any(row[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"] for row in rows)
    assert sum(row[:2] == ["AWS/Lambda", "Errors"] for row in rows) == 2
    alarms_widget = next(w for w in body["widgets"] if w["properties"].get("title") == "Alarms")
    assert len(alarms_widget["properties"]["alarms"]) == 4  # 2 errors, DLQ, lag


def test_metric_alarms_notify_the_alert_topic(example: Synth) -> None:
    lag_bound = example.config.replications[0].lag_alarm_seconds if example.config.replications else 900
    for prefix, name, threshold in (
        ("SecretsRotation", metrics.ROTATIONS, 1),
        ("ParameterReplication", metrics.REPLICATION_LAG, lag_bound * 1000),
    ):
        raw = example.raw(prefix)
        ours = [
            a["Properties"]
            for a in _resources(raw, "AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Namespace") == metrics.NAMESPACE
        ]
        assert [a["MetricName"] for a in ours] == [name]
        (alarm,) = ours
        assert alarm["Threshold"] == threshold
        assert alarm["TreatMissingData"] == "notBreaching"
        (topic,) = _resources(raw, "AWS::SNS::Topic")
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert set(dims) <= {metrics.FUNCTION_DIMENSION, "Outcome"}
