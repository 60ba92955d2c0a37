"""Counts, not times: Secrets Manager calls and database connections per rotation."""

from __future__ import annotations

from rotation_handlers import secrets_manager

from .conftest import Db, Harness, new_password, unique_user


def test_single_user_rotation_costs(harness: Harness, db: Db) -> None:
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    harness.rotate(arn)  # warm up: clients created, first rotation done
    harness.counter.calls.clear()
    secrets_manager.VERSION_CACHE.clear()  # the next rotation comes weeks later: nothing cached
    before = db.server.stats()
    harness.rotate(arn)
    after = db.server.stats()
    assert dict(harness.counter.calls) == {
        "DescribeSecret": 4,
        "GetSecretValue": 2,  # pending (none yet) + current; later steps reuse them (versions are immutable)
        "PutSecretValue": 1,
        "UpdateSecretVersionStage": 2,  # AWSCURRENT to the new version, AWSPENDING off it
    }
    assert harness.counter.total == 9
    assert after["connections"] - before["connections"] == 2  # setSecret + testSecret
    assert after["failed_logins"] - before["failed_logins"] == 0


def test_cold_containers_cost_five_more_reads_and_one_more_login(harness: Harness, db: Db) -> None:
    """When every step lands in a new Lambda container, each reads the versions it needs.

    testSecret reads AWSCURRENT too: a pending value identical to it is the deploy-time test.
    finishSecret, not having seen testSecret succeed, reads the pending version and logs in with
    it once before moving AWSCURRENT (no failed login)."""
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password))
    harness.aws.cold_containers = True
    before = db.server.stats()
    harness.rotate(arn)
    after = db.server.stats()
    assert harness.counter.calls["GetSecretValue"] == 7
    assert harness.counter.total == 14
    assert after["connections"] - before["connections"] == 3
    assert after["failed_logins"] - before["failed_logins"] == 0
