"""Alternating users: a crash before or after every API call and statement, then a retry.

Same approach as ``test_crash_recovery``: one clean rotation is recorded, then each point
is replayed on a fresh secret; the rotation is cut there, the application's login
(AWSCURRENT) must keep working at that instant, and Secrets Manager's retry (the failed
step again, then the rest) must end in the same state as a clean rotation. Both the
first rotation (the clone is created) and the second (the secret alternates back to an
existing user) are cut.
"""

from __future__ import annotations

import os

import pytest

from .conftest import Db, Harness
from .test_alternating import assert_same_privileges, make_app
from .test_crash_recovery import crash_then_retry, logs_in, record_points

#: Each case replays 40+ crash points (13 to 19 s). Without ``FULL_CRASH_MATRIX=1`` (``.ci/run`` sets
#: it), each engine runs one of the two cases, crossed (PostgreSQL the second rotation with a cold
#: retry, MariaDB the first with a warm one), so the README's test command still covers both cases
#: and both engines within its time budget.
FULL_MATRIX = os.environ.get("FULL_CRASH_MATRIX") == "1"


@pytest.mark.parametrize(
    ("rotation", "cold_retry"),
    [(1, False), (2, True)],
    ids=["first-warm-retry", "second-cold-retry"],
)
def test_crash_at_every_point_then_retry(harness: Harness, db: Db, rotation: int, cold_retry: bool) -> None:
    if not FULL_MATRIX and (db.name == "postgres") != (rotation == 2):
        pytest.skip("the other case runs on the other engine; FULL_CRASH_MATRIX=1 runs both")
    arn, _, _ = make_app(harness, db)
    for _ in range(rotation - 1):
        harness.rotate(arn)
    points = record_points(harness, arn)
    assert sum(p.startswith("before connect") for p in points) == 3
    assert any(p.startswith("before PutSecretValue") for p in points)
    assert len(points) >= 40

    for at, name in enumerate(points):
        arn, user, _ = make_app(harness, db)
        for _ in range(rotation - 1):
            harness.rotate(arn)
        before = harness.value(arn)

        def at_crash(arn: str = arn, name: str = name) -> None:
            # The application's credentials never stop working.
            assert logs_in(db, harness, arn, "AWSCURRENT"), name

        crash_then_retry(harness, arn, at, cold_retry, at_crash)
        assert harness.value(arn, "AWSPREVIOUS") == before, name
        current = harness.value(arn)
        assert current["username"] == (user + "_clone" if rotation == 1 else user), name
        assert logs_in(db, harness, arn, "AWSCURRENT"), name
        assert db.login(before["username"], before["password"]), name  # previous keeps working
        assert_same_privileges(db, user)
        # The next rotation starts cleanly from there.
        harness.rotate(arn)
        assert logs_in(db, harness, arn, "AWSCURRENT"), name
        assert_same_privileges(db, user)
