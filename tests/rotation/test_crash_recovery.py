"""A crash before or after every API call and SQL statement, then a retry: the rotation still ends right.

The crash points are discovered by recording one clean rotation (every Secrets Manager
call and every database connect/statement, before and after), then each point is
replayed: the rotation is cut there (as if the Lambda died), the invariant "AWSCURRENT
or AWSPENDING logs in" is checked at that instant, and Secrets Manager's retry is
played: the failed step again, then the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from devtools.aws import StepFailed
from rotation_handlers import secrets_manager
from rotation_handlers.engines.base import Engine

from .conftest import Db, Harness, new_password, unique_user

STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]


class SimulatedCrash(BaseException):
    pass


class CrashPlan:
    def __init__(self, at: int | None = None) -> None:
        self.at = at
        self.points: list[str] = []

    def point(self, name: str) -> None:
        self.points.append(name)
        if self.at is not None and len(self.points) == self.at + 1:
            raise SimulatedCrash(name)

    def api_before(self, model: Any, **_: Any) -> None:
        self.point(f"before {model.name}")

    def api_after(self, model: Any, **_: Any) -> None:
        self.point(f"after {model.name}")

    def db(self, phase: str, label: str) -> None:
        self.point(f"{phase} {label}")


def install(plan: CrashPlan, region: str) -> None:
    events = secrets_manager.client(region).meta.events
    events.register("before-call.secrets-manager", plan.api_before, unique_id="crash-before")
    events.register("after-call.secrets-manager", plan.api_after, unique_id="crash-after")
    Engine.statement_hook = plan.db


def uninstall(region: str) -> None:
    events = secrets_manager.client(region).meta.events
    events.unregister("before-call.secrets-manager", unique_id="crash-before")
    events.unregister("after-call.secrets-manager", unique_id="crash-after")
    Engine.statement_hook = None


def record_points(harness: Harness, arn: str) -> list[str]:
    """Every crash point of one clean rotation of ``arn``, in order."""
    recorder = CrashPlan()
    install(recorder, harness.aws.region)
    try:
        harness.rotate(arn)
    finally:
        uninstall(harness.aws.region)
    return recorder.points


def crash_then_retry(
    harness: Harness, arn: str, at: int, cold_retry: bool, at_crash: Callable[[], None]
) -> str:
    """Cut a rotation of ``arn`` at point ``at``, run ``at_crash`` (the invariant at that instant),
    then play Secrets Manager's retry: the failed step again, then the rest. Returns the token
    after checking the labels ended right."""
    region = harness.aws.region
    plan = CrashPlan(at)
    install(plan, region)
    try:
        with pytest.raises(StepFailed) as failure:
            harness.rotate(arn)
    finally:
        uninstall(region)
    name = plan.points[-1]
    assert isinstance(failure.value.error, SimulatedCrash), f"crash at {name}: {failure.value}"
    token = harness.aws.invocations[-1].token
    at_crash()
    if cold_retry:
        secrets_manager.VERSION_CACHE.clear()
    for step in STEPS[STEPS.index(failure.value.step) :]:
        harness.invoke(arn, token, step)
    versions = harness.versions(arn)
    assert versions[token] == ["AWSCURRENT"], (name, versions)
    assert not any("AWSPENDING" in s for s in versions.values()), (name, versions)
    return token


def logs_in(db: Db, harness: Harness, arn: str, stage: str) -> bool:
    try:
        value = harness.value(arn, stage)
    except Exception:
        return False
    return db.login(value["username"], value["password"])


@pytest.mark.parametrize("cold_retry", [False, True], ids=["warm-retry", "cold-retry"])
def test_crash_at_every_point_then_retry(harness: Harness, db: Db, cold_retry: bool) -> None:
    user = unique_user()
    db.make_user(user, new_password())
    probe = harness.create_secret(db.secret(user, "x" * 8))  # placeholder, replaced below
    harness.sm.put_secret_value(SecretId=probe, SecretString=json.dumps(db.secret(user, new_password())))
    db.make_user(user, harness.value(probe)["password"])
    points = record_points(harness, probe)
    assert any(p.startswith("before PutSecretValue") for p in points)
    assert any(p == "after alter role" or p == "after set password" for p in points)
    assert len(points) >= 20

    for at, name in enumerate(points):
        user = unique_user()
        password = new_password()
        db.make_user(user, password)
        arn = harness.create_secret(db.secret(user, password))
        original = harness.value(arn)

        def at_crash(arn: str = arn, name: str = name) -> None:
            # At every instant AWSCURRENT or AWSPENDING logs in.
            assert logs_in(db, harness, arn, "AWSCURRENT") or logs_in(db, harness, arn, "AWSPENDING"), name

        crash_then_retry(harness, arn, at, cold_retry, at_crash)
        assert harness.value(arn, "AWSPREVIOUS") == original, name
        current = harness.value(arn)
        assert db.login(user, current["password"]), name
        assert not db.login(user, password), name
        # The next rotation starts cleanly from there.
        harness.rotate(arn)
        assert db.login(user, harness.value(arn)["password"]), name


@pytest.mark.parametrize("stage", ["AWSCURRENT", "AWSPENDING"])
def test_label_move_done_but_its_response_lost(harness: Harness, db: Db, stage: str) -> None:
    """UpdateSecretVersionStage succeeds, its response is lost (a 503), the client retries: the retry
    finds the move already made, and finishSecret still succeeds instead of failing the rotation."""
    from devtools.aws import error_response, wrap_requests

    lost: list[str] = []

    def lose_first_answer(request: Any, answer: Callable[[], Any]) -> Any:
        response = answer()
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        if target.endswith("UpdateSecretVersionStage") and f'"{stage}"' in request.body.decode() and not lost:
            lost.append(target)
            return error_response(request, 503, "ServiceUnavailable", "response lost")
        return response

    wrap_requests(secrets_manager.client(harness.aws.region), lose_first_answer)
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    token = harness.rotate(arn)
    assert lost
    assert harness.versions(arn)[token] == ["AWSCURRENT"]
    assert db.login(user, harness.value(arn)["password"])
