"""A CloudWatch dashboard per stack, and alarms on the functions' own metrics.

The functions publish their metrics as Embedded Metric Format lines (``rotation_handlers/metrics.py``):
namespace ``SecretsRotation``, every series carries the ``FunctionName`` dimension, so two stacks in
one account and region never mix. Only metric *names* come from the handler code (as DESIGN.md
allows); periods, statistics, thresholds and layout are written here.

Layout (docs/metrics.md has the picture): one row per question, 24 grid units wide.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.alerts import OperationsAlerts
from rotation_handlers import metrics as m

PERIOD = Duration.minutes(5)
#: The replication-lag alarm's bound when the configuration sets none (``lagAlarmSeconds``).
DEFAULT_LAG_ALARM_SECONDS = 900


def metric(
    fn: lambda_.IFunction, name: str, statistic: str = "Sum", *, alarm: bool = False, **dims: str
) -> cw.Metric:
    """One of our EMF metrics, for ``fn``'s series (``alarm``: without a label, so the alarm
    names the metric directly instead of through a metric-math query)."""
    label = " ".join([name, *dims.values(), "" if statistic == "Sum" else f"({statistic})"]).strip()
    return cw.Metric(
        namespace=m.NAMESPACE,
        metric_name=name,
        dimensions_map={m.FUNCTION_DIMENSION: fn.function_name, **dims},
        statistic=statistic,
        period=PERIOD,
        label=None if alarm else label,
    )


def search(fn: lambda_.IFunction, name: str, dims: tuple[str, ...], label: str) -> cw.MathExpression:
    """Every series of ``name`` split by ``dims`` (e.g. rotations by strategy and engine)."""
    keys = ",".join((m.NAMESPACE, m.FUNCTION_DIMENSION, *dims))
    query = f'{{{keys}}} MetricName="{name}" {m.FUNCTION_DIMENSION}="{fn.function_name}"'
    return cw.MathExpression(
        expression=f"SEARCH('{query}', 'Sum', 300)",
        label=label,
        period=PERIOD,
    )


def _graph(title: str, left: list[Any], width: int = 8, **kw: Any) -> cw.GraphWidget:
    return cw.GraphWidget(title=title, left=left, width=width, height=6, **kw)


def _function_row(functions: dict[str, lambda_.IFunction]) -> list[cw.IWidget]:
    errors = [
        fn.metric_errors(period=PERIOD, statistic="Sum", label=f"{n} errors") for n, fn in functions.items()
    ]
    durations = [
        fn.metric_duration(period=PERIOD, statistic=stat, label=f"{n} duration ({stat})")
        for n, fn in functions.items()
        for stat in ("p50", "Maximum")
    ]
    return [_graph("Function errors", errors, 12), _graph("Function durations (ms)", durations, 12)]


class RotationDashboard(Construct):
    """Rotations by outcome, strategy and engine; step durations; failed logins; function health."""

    def __init__(
        self, scope: Construct, construct_id: str, *, alerts: OperationsAlerts, function: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        failed = metric(function, m.ROTATIONS, Outcome="failed")
        self.failed_rotations_alarm = cw.Alarm(
            self,
            "FailedRotationsAlarm",
            alarm_description="A rotation step failed (Rotations, Outcome=failed)",
            metric=metric(function, m.ROTATIONS, alarm=True, Outcome="failed"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alerts.notify_on(self.failed_rotations_alarm)
        steps = ("createSecret", "setSecret", "testSecret", "finishSecret")
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.days(1))
        self.dashboard.add_widgets(
            _graph("Rotations by outcome", [metric(function, m.ROTATIONS, Outcome="succeeded"), failed]),
            _graph(
                "Rotations by strategy and engine",
                [search(function, m.ROTATIONS, ("Outcome", "Strategy", "Engine"), "")],
            ),
            _graph(
                "Failed logins (expected 0) and DB connections",
                [metric(function, m.FAILED_LOGINS)],
                right=[metric(function, m.DB_CONNECTIONS)],
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "Step duration (ms, p90)",
                [metric(function, m.STEP_DURATION, "p90", Step=s) for s in steps],
                24,
            )
        )
        self.dashboard.add_widgets(*_function_row({"rotation": function}))
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(alerts.alarms), width=24, height=3)
        )


class ReplicationDashboard(Construct):
    """Events, writes by outcome, lag, reconcile drift and progress, the DLQ, function health."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alerts: OperationsAlerts,
        replicator: Any,  # infra.replication.ParameterReplicator (function, reconcile_function, DLQ)
        lag_alarm_seconds: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        events_fn: lambda_.IFunction = replicator.function
        reconcile_fn: lambda_.IFunction = replicator.reconcile_function
        bound = lag_alarm_seconds or DEFAULT_LAG_ALARM_SECONDS
        lag_max = metric(events_fn, m.REPLICATION_LAG, "Maximum")
        self.lag_alarm = cw.Alarm(
            self,
            "ReplicationLagAlarm",
            alarm_description=f"A replica was written more than {bound} s after its source changed",
            metric=metric(events_fn, m.REPLICATION_LAG, "Maximum", alarm=True),
            threshold=bound * 1000,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alerts.notify_on(self.lag_alarm)
        writes = (m.WRITES_WRITTEN, m.WRITES_UNCHANGED, m.WRITES_THROTTLED, m.WRITES_REFUSED, m.WRITES_FAILED)
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.days(1))
        self.dashboard.add_widgets(
            _graph("Events", [metric(events_fn, m.EVENTS_HANDLED), metric(events_fn, m.EVENTS_IGNORED)]),
            _graph("Writes by outcome (events)", [metric(events_fn, w) for w in writes]),
            _graph(
                "Replication lag (ms)",
                [metric(events_fn, m.REPLICATION_LAG, "p50"), lag_max],
                left_annotations=[cw.HorizontalAnnotation(value=bound * 1000, label="alarm")],
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "Reconcile drift", [metric(reconcile_fn, m.DRIFT_FOUND), metric(reconcile_fn, m.DRIFT_FIXED)]
            ),
            _graph("Writes by outcome (reconcile)", [metric(reconcile_fn, w) for w in writes]),
            _graph(
                "Reconcile progress (%) and dead-letter queue",
                [metric(reconcile_fn, m.RECONCILE_PROGRESS, "Minimum")],
                right=[
                    replicator.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum", label="DLQ messages"
                    )
                ],
            ),
        )
        self.dashboard.add_widgets(*_function_row({"events": events_fn, "reconcile": reconcile_fn}))
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(alerts.alarms), width=24, height=3)
        )
