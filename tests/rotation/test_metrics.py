"""The rotation function's metric lines (EMF): step durations, rotations by outcome, failed logins.

Every line is also checked against the EMF specification by the ``emf_lines`` fixture
(tests/conftest.py, tests/emf_spec.py) when each test ends.
"""

from __future__ import annotations

import json

import pytest

from devtools.aws import StepFailed
from rotation_handlers import metrics
from rotation_handlers.protocol import STEPS, handle
from tests.emf_spec import ROTATION_METRICS, values

from .conftest import Db, Harness, new_password, unique_user


def names(docs: list) -> set[str]:
    return {m["Name"] for doc in docs for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def test_a_rotation_prints_one_line_per_step_and_one_success(
    harness: Harness, pg: Db, emf_lines: list
) -> None:
    user, password = unique_user(), new_password()
    pg.make_user(user, password)
    arn = harness.create_secret(pg.secret(user, password, dbname="postgres"))
    token = harness.rotate(arn)
    assert [doc["Step"] for doc in emf_lines] == list(STEPS)
    assert all(len(values([doc], metrics.STEP_DURATION)) == 1 for doc in emf_lines)
    assert values(emf_lines, metrics.ROTATIONS) == [1]
    succeeded = {"Outcome": "succeeded", "Strategy": "single", "Engine": "postgres"}
    assert values(emf_lines, metrics.ROTATIONS, **succeeded) == [1]
    assert sum(values(emf_lines, metrics.FAILED_LOGINS)) == 0
    assert sum(values(emf_lines, metrics.DB_CONNECTIONS)) == 2  # setSecret and testSecret log in once
    assert names(emf_lines) == ROTATION_METRICS
    # no secret name, ARN, user or password anywhere in a metric line
    text = "\n".join(json.dumps(doc) for doc in emf_lines)
    assert arn not in text and user not in text and "db-" not in text
    assert not any(pw in text for pw in harness.passwords)

    emf_lines.clear()
    harness.invoke(arn, token, "finishSecret")
    assert values(emf_lines, metrics.ROTATIONS) == []  # a repeated finishSecret is not a rotation


def test_a_rejected_login_counts_as_failed_login_and_failed_rotation(
    harness: Harness, pg: Db, emf_lines: list
) -> None:
    user = unique_user()
    pg.make_user(user, new_password())
    arn = harness.create_secret(pg.secret(user, "Wrong-" + new_password(), dbname="postgres"))
    with pytest.raises(StepFailed):
        harness.rotate(arn)
    assert values(emf_lines, metrics.ROTATIONS, Outcome="failed", Step="setSecret") == [1]
    assert sum(values(emf_lines, metrics.FAILED_LOGINS, Step="setSecret")) >= 1


def test_an_invalid_event_has_a_fixed_step_dimension(emf_lines: list) -> None:
    with pytest.raises(Exception, match="invalid rotation event"):
        handle({"SecretId": "x", "ClientRequestToken": "t" * 32, "Step": "arn:aws:secret-name-as-step"})
    assert [doc["Step"] for doc in emf_lines] == ["invalid"]
    assert values(emf_lines, metrics.ROTATIONS, Outcome="failed", Strategy="unknown", Engine="unknown") == [1]


def test_metrics_are_printed_whatever_the_log_level(monkeypatch: pytest.MonkeyPatch, emf_lines: list) -> None:
    import logging

    monkeypatch.setattr(logging.getLogger("rotation_handlers"), "level", logging.CRITICAL)
    with pytest.raises(Exception, match="invalid rotation event"):
        handle({})
    assert values(emf_lines, metrics.ROTATIONS) == [1]
