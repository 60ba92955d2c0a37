"""Alternating users: Secrets Manager calls and database connections per rotation (counts, not times)."""

from __future__ import annotations

from rotation_handlers import secrets_manager

from .conftest import Db, Harness
from .test_alternating import make_app

EXPECTED_CALLS = {
    "DescribeSecret": 4,
    # pending (none yet) + current, later steps reuse them; the master secret in createSecret
    # (validation) and setSecret (its AWSCURRENT may have rotated meanwhile: never cached)
    "GetSecretValue": 4,
    "PutSecretValue": 1,
    "UpdateSecretVersionStage": 2,  # AWSCURRENT to the new version, AWSPENDING off it
}


def test_alternating_rotation_costs(harness: Harness, db: Db) -> None:
    arn, _, _ = make_app(harness, db)
    harness.rotate(arn)  # warm up: clients created, the clone exists
    for _ in range(2):  # both directions: to the base user and to the clone
        harness.counter.calls.clear()
        secrets_manager.VERSION_CACHE.clear()  # the next rotation comes weeks later: nothing cached
        before = db.server.stats()
        harness.rotate(arn)
        after = db.server.stats()
        assert dict(harness.counter.calls) == EXPECTED_CALLS
        assert harness.counter.total == 11
        # current (proof) + master in setSecret, pending in testSecret
        assert after["connections"] - before["connections"] == 3
        assert after["failed_logins"] - before["failed_logins"] == 0


def test_first_rotation_creating_the_clone_costs_the_same(harness: Harness, db: Db) -> None:
    arn, _, _ = make_app(harness, db)
    before = db.server.stats()
    harness.rotate(arn)
    after = db.server.stats()
    assert dict(harness.counter.calls) == EXPECTED_CALLS
    assert after["connections"] - before["connections"] == 3
    assert after["failed_logins"] - before["failed_logins"] == 0


def test_cold_containers_cost_five_more_reads_and_one_more_login(harness: Harness, db: Db) -> None:
    """When every step lands in a new Lambda container, each reads the versions it needs.

    testSecret reads AWSCURRENT too: a pending value identical to it is the deploy-time test.
    finishSecret, not having seen testSecret succeed, reads the pending version and logs in with
    it once before moving AWSCURRENT (no failed login)."""
    arn, _, _ = make_app(harness, db)
    harness.aws.cold_containers = True
    before = db.server.stats()
    harness.rotate(arn)
    after = db.server.stats()
    assert harness.counter.calls["GetSecretValue"] == 9
    assert harness.counter.total == 16
    assert after["connections"] - before["connections"] == 4
    assert after["failed_logins"] - before["failed_logins"] == 0
