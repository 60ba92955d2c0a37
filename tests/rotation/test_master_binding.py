"""The master secret acts only on the server where the current login is proven.

An alternating secret whose host/port name a server its writer controls must not lead the
master (whose secret names the real server) to create ``<user>_clone`` there: refused in
createSecret, nothing written, nothing created on either server. Real servers for the attack;
the RDS cluster / read-replica exception is checked against moto's RDS.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.aws import REGION
from rotation_handlers import rds_endpoints
from rotation_handlers.errors import InvalidSecretError

from .conftest import Db, Harness, maria_db, new_password, pg_db, unique_user
from .rds_api import answer_custom_endpoints
from .test_alternating import master_secret, user_exists
from .test_gate_and_input import assert_rotation_fails_cleanly, start_rotation_without_running_it


@pytest.fixture(params=["postgres", "mariadb"])
def real_and_other(request: pytest.FixtureRequest) -> tuple[Db, Db]:
    if request.param == "postgres":
        return pg_db(request.getfixturevalue("pg_default")), pg_db(request.getfixturevalue("pg_other"))
    return maria_db(request.getfixturevalue("maria_server")), maria_db(request.getfixturevalue("maria_other"))


def test_secret_pointing_at_another_server_cannot_use_a_shared_master(
    harness: Harness, real_and_other: tuple[Db, Db]
) -> None:
    real, other = real_and_other
    victim = unique_user("victim")
    real.make_user(victim, new_password())  # an account on the real server, password unknown to the attacker
    known = new_password()
    other.make_user(victim, known)  # the attacker's server: same name, a password the attacker knows
    master = master_secret(harness, real)  # the shared master names the real server
    arn = harness.create_secret(other.secret(victim, known, masterarn=master))
    assert_rotation_fails_cleanly(
        harness,
        arn,
        InvalidSecretError,
        f"the secret names the server 127.0.0.1:{other.server.port} but its master secret {master} "
        f"(masterarn) is for 127.0.0.1:{real.server.port}",
    )
    for db in (real, other):
        assert not user_exists(db, victim + "_clone")
    # The attacker's login still works only on the attacker's server.
    assert other.login(victim, known) and not real.login(victim, known)


def test_setsecret_refuses_a_master_changed_to_another_server(
    harness: Harness, real_and_other: tuple[Db, Db]
) -> None:
    """The binding is checked again in setSecret: the master secret may have changed since."""
    from devtools.aws import StepFailed

    real, other = real_and_other
    user, password = unique_user(), new_password()
    real.make_user(user, password)
    master = master_secret(harness, real)
    arn = harness.create_secret(real.secret(user, password, masterarn=master))
    real_harness_rotate = harness.aws.handler

    def change_master_after_create(event: dict[str, Any], context: Any) -> Any:
        result = real_harness_rotate(event, context)
        if event["Step"] == "createSecret":
            harness.sm.put_secret_value(
                SecretId=master,
                SecretString=json.dumps(other.secret(other.server.admin_user, other.server.admin_password)),
            )
        return result

    harness.aws.handler = change_master_after_create
    with pytest.raises(StepFailed) as failure:
        harness.rotate(arn)
    assert failure.value.step == "setSecret"
    assert "the master may only act on the server where the current login is proven" in str(
        failure.value.error
    )
    assert harness.value(arn)["username"] == user
    for db in (real, other):
        assert not user_exists(db, user + "_clone")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("db.example.com", 5432), ("DB.Example.COM.", 5432), True),
        (("db.example.com", 5432), ("db.example.com", 5433), False),
        (("db.example.com", 5432), ("db.example.co", 5432), False),
        (("127.0.0.1", 3306), ("localhost", 3306), False),  # no DNS: names are compared, not resolved
    ],
)
def test_endpoint_comparison(a: tuple[str, int], b: tuple[str, int], same: bool) -> None:
    assert rds_endpoints.same_endpoint(*a, *b) is same


# -- the RDS exception: verified through the RDS API (moto's RDS) --------------------------------------
@pytest.fixture
def rds(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The function's RDS client (moto; DescribeDBClusterEndpoints answered as AWS documents)."""
    answer_custom_endpoints(monkeypatch)
    return rds_endpoints.client(REGION)


def aurora(rds: Any, name: str, instances: int = 2) -> dict[str, Any]:
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword=new_password(),
    )["DBCluster"]
    for n in range(instances):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{name}-{n}",
            DBClusterIdentifier=name,
            Engine="aurora-postgresql",
            DBInstanceClass="db.r5.large",
        )
    return cluster


def instance_endpoint(rds: Any, name: str) -> str:
    return str(rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["Endpoint"]["Address"])


def test_rds_same_cluster_and_read_replica_are_accepted(rds: Any) -> None:
    orders = aurora(rds, "orders")
    billing = aurora(rds, "billing", instances=1)
    rds.create_db_instance(
        DBInstanceIdentifier="legacy",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword=new_password(),
        AllocatedStorage=20,
    )
    rds.create_db_instance_read_replica(DBInstanceIdentifier="legacy-ro", SourceDBInstanceIdentifier="legacy")
    writer, reader = orders["Endpoint"], orders["ReaderEndpoint"]
    check = rds_endpoints.same_deployment
    assert check(writer, 5432, reader, 5432, rds)
    assert check(writer, 5432, instance_endpoint(rds, "orders-1"), 5432, rds)
    assert check(instance_endpoint(rds, "orders-0"), 5432, reader, 5432, rds)
    assert check(instance_endpoint(rds, "legacy"), 5432, instance_endpoint(rds, "legacy-ro"), 5432, rds)
    # Not related: another cluster, the replica's source named the other way round, a made-up
    # name that merely starts like the cluster's, a wrong port.
    assert not check(writer, 5432, billing["ReaderEndpoint"], 5432, rds)
    assert not check(instance_endpoint(rds, "legacy-ro"), 5432, instance_endpoint(rds, "legacy"), 5432, rds)
    assert not check(writer, 5432, reader.replace("orders.", "orders.evil."), 5432, rds)
    assert not check(writer, 5432, "orders.attacker.example.com", 5432, rds)
    assert not check(writer, 5432, reader, 5433, rds)


def test_rds_reader_endpoint_passes_create_secret_another_cluster_does_not(
    harness: Harness, rds: Any
) -> None:
    """createSecret accepts a secret on the master's cluster reader endpoint and refuses another cluster."""
    orders, billing = aurora(rds, "orders", instances=1), aurora(rds, "billing", instances=1)
    master = harness.create_secret(
        {"engine": "postgres", "host": orders["Endpoint"], "username": "admin", "password": new_password()}
    )

    def secret_on(host: str) -> str:
        return harness.create_secret(
            {
                "engine": "postgres",
                "host": host,
                "username": unique_user(),
                "password": new_password(),
                "masterarn": master,
            }
        )

    assert_rotation_fails_cleanly(
        harness, secret_on(billing["ReaderEndpoint"]), InvalidSecretError, "is for " + orders["Endpoint"]
    )
    ok = secret_on(orders["ReaderEndpoint"])
    token = start_rotation_without_running_it(harness, ok)
    harness.invoke(ok, token, "createSecret")
    assert harness.value(ok, "AWSPENDING")["username"].endswith("_clone")


def test_test_secret_waits_for_a_replica_to_catch_up(
    harness: Harness, real_and_other: tuple[Db, Db], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret on a reader endpoint of the master's cluster: the pending password may reach the
    reader after setSecret. Here the secret names the real server as ``localhost`` and the master as
    ``127.0.0.1`` (the RDS answer is taken as "same cluster"); the pending password is made wrong
    on the server for the first login of testSecret, then right again (replication catching up)."""
    from rotation_handlers.engines.base import Engine
    from rotation_handlers.strategies import alternating_user

    from .test_alternating import set_password

    real, _ = real_and_other
    monkeypatch.setattr(alternating_user, "same_deployment", lambda *args: True)
    monkeypatch.setattr(alternating_user, "REPLICA_RETRY_INTERVAL", 0.2)
    user, password = unique_user(), new_password()
    real.make_user(user, password)
    master = master_secret(harness, real)
    arn = harness.create_secret(dict(real.secret(user, password, masterarn=master), host="localhost"))
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    harness.invoke(arn, token, "setSecret")
    pending = harness.value(arn, "AWSPENDING")
    lagging = new_password()
    harness.passwords.add(lagging)
    set_password(real, pending["username"], lagging)  # the reader still has an older password
    connects: list[str] = []

    def catch_up(phase: str, label: str) -> None:
        if phase == "before" and label == "connect":
            connects.append(label)
            if len(connects) == 2:  # after one rejected login, replication delivers the new password
                set_password(real, pending["username"], pending["password"])

    monkeypatch.setattr(Engine, "statement_hook", catch_up)
    harness.invoke(arn, token, "testSecret")
    assert len(connects) == 2
