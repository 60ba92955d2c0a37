"""The dashboards and metric alarms: every widget names a metric the handlers really print.

Both functions are driven here and what they print is collected (``emf_lines``, tests/conftest.py,
which also checks every line against the EMF specification); the synthesized dashboards must name
exactly those metrics, each for its own stack's function.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from rotation_handlers import metrics, replicate
from rotation_handlers.errors import RotationError
from rotation_handlers.protocol import handle
from tests.emf_spec import REPLICATION_METRICS, ROTATION_METRICS
from tests.infra.conftest import Synth
from tests.replication import events as ev
from tests.replication.conftest import Aws, aws, env, secret  # noqa: F401  (fixtures: moto, environment)


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


@pytest.fixture
def moto(aws: Aws) -> Aws:  # noqa: F811  (the imported fixture)
    """tests/replication/conftest.py's emulated AWS in three regions, with the replicator's environment."""
    return aws


def printed_names(lines: list[dict[str, Any]]) -> set[str]:
    return {m["Name"] for doc in lines for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def test_widgets_name_only_metrics_the_handlers_print(example: Synth, moto: Aws, emf_lines: list) -> None:
    # Both functions, driven here: a rotation step that fails (no database needed), a replicated
    # change, an ignored event and a reconcile run (moto). ``emf_lines`` holds what they printed.
    with pytest.raises(RotationError):
        handle({})
    rotation_printed = printed_names(emf_lines)
    emf_lines.clear()
    moto.put("/app/dashboard", secret())
    replicate.handler(ev.put_parameter_event("/app/dashboard"), None)
    replicate.handler(ev.put_parameter_event("/app/dashboard", error_code="AccessDenied"), None)
    replicate.reconcile_handler({}, None)
    replication_printed = printed_names(emf_lines)
    assert rotation_printed == ROTATION_METRICS and replication_printed == REPLICATION_METRICS

    for prefix, printed, functions in (
        ("SecretsRotation", rotation_printed, 1),
        ("ParameterReplication", replication_printed, 2),
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
