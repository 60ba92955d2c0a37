"""An RDS-managed master secret (no host) acts only on the RDS deployment that owns it.

With ``ManageMasterUserPassword`` RDS keeps the master password in a secret holding only
``username`` and ``password``; the instance or cluster names that secret in its
``MasterUserSecret.SecretArn`` (RDS API reference, DescribeDBInstances / DescribeDBClusters,
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_MasterUserSecret.html, and
"Password management with Amazon RDS and AWS Secrets Manager",
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html).

Whoever can write the application secret chooses its host, port and ``ssl``. The master password
therefore goes only to an endpoint that the RDS API lists for the instance or cluster owning the
master secret (or a read replica of it), and always over TLS unless the master secret itself opts
out. moto's RDS keeps ``MasterUserSecret`` as AWS does; moto's endpoints are DNS names that do not
resolve here, so the positive cases rewrite the listed address to the real test server's
(an ``after-call`` hook on the RDS client, nothing else changed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from devtools.aws import REGION, StepFailed
from rotation_handlers import rds_endpoints
from rotation_handlers.errors import ConfigurationError, ConnectError, InvalidSecretError

from .conftest import Db, Harness, maria_db, new_password, pg_db, unique_user
from .rds_api import managed_cluster
from .test_alternating import user_exists
from .test_gate_and_input import assert_rotation_fails_cleanly, start_rotation_without_running_it


@pytest.fixture(params=["postgres", "mariadb"])
def real_and_other(request: pytest.FixtureRequest) -> tuple[Db, Db]:
    if request.param == "postgres":
        return pg_db(request.getfixturevalue("pg_default")), pg_db(request.getfixturevalue("pg_other"))
    return maria_db(request.getfixturevalue("maria_server")), maria_db(request.getfixturevalue("maria_other"))


Rewrites = dict[str, tuple[str, int]]


@pytest.fixture
def rds_at(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Rewrites]:
    """moto's RDS, as the rotation function sees it; ``rewrites`` maps an RDS address to a local server."""
    rewrites: Rewrites = {}

    def answer_with_local_addresses(parsed: dict[str, Any], **_: Any) -> None:
        for instance in parsed.get("DBInstances", []):
            endpoint = instance.get("Endpoint") or {}
            if endpoint.get("Address") in rewrites:
                endpoint["Address"], endpoint["Port"] = rewrites[endpoint["Address"]]
        for cluster in parsed.get("DBClusters", []):
            for key in ("Endpoint", "ReaderEndpoint"):
                if cluster.get(key) in rewrites:
                    cluster[key], cluster["Port"] = rewrites[cluster[key]]

    made: Callable[..., Any] = rds_endpoints.client

    def client(region: str | None = None) -> Any:
        rds = made(region)
        rds.meta.events.register("after-call.rds.*", answer_with_local_addresses)
        return rds

    monkeypatch.setattr(rds_endpoints, "client", client)
    return boto3.client("rds", region_name=REGION), rewrites


@pytest.fixture
def verified_tls(tls_files: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rotation function verifies server certificates (``DB_CA_BUNDLE``, the test servers' CA)."""
    monkeypatch.setenv("DB_CA_BUNDLE", str(tls_files.ca_cert))


def managed_instance(
    harness: Harness, rds: Any, db: Db, name: str | None = None
) -> tuple[dict[str, Any], str]:
    """An RDS instance with a managed master secret that holds the real server's admin login."""
    instance = rds.create_db_instance(
        DBInstanceIdentifier=name or "orders-" + unique_user("db").split("_")[1],
        Engine="postgres" if db.name == "postgres" else "mysql",  # moto has no "mariadb" engine
        DBInstanceClass="db.t3.micro",
        MasterUsername=db.server.admin_user,
        ManageMasterUserPassword=True,
    )["DBInstance"]
    arn = instance["MasterUserSecret"]["SecretArn"]
    harness.sm.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps({"username": db.server.admin_user, "password": db.server.admin_password}),
    )
    harness.remember({"password": db.server.admin_password})
    return instance, arn


def test_hostless_master_refused_when_no_rds_deployment_owns_it(
    harness: Harness, real_and_other: tuple[Db, Db], rds_at: tuple[Any, Rewrites]
) -> None:
    """The application secret points at the attacker's server with ``"ssl": false``: refused in
    createSecret, before the master password is sent anywhere."""
    real, other = real_and_other
    victim, known = unique_user("victim"), new_password()
    other.make_user(victim, known)
    master = harness.create_secret(
        {"username": real.server.admin_user, "password": real.server.admin_password}
    )
    arn = harness.create_secret(other.secret(victim, known, masterarn=master, ssl=False))
    before = other.server.stats()
    assert_rotation_fails_cleanly(
        harness,
        arn,
        InvalidSecretError,
        f"the master secret {master} (masterarn) holds no host (an RDS-managed master secret)",
    )
    assert other.server.stats()["connections"] == before["connections"], "a login reached the attacker"
    assert not user_exists(other, victim + "_clone")


def test_hostless_master_refused_for_a_server_its_instance_does_not_list(
    harness: Harness, real_and_other: tuple[Db, Db], rds_at: tuple[Any, Rewrites]
) -> None:
    """The master secret belongs to a real RDS instance, but the secret names another server."""
    real, other = real_and_other
    rds, rewrites = rds_at
    instance, master = managed_instance(harness, rds, real)
    rewrites[instance["Endpoint"]["Address"]] = (real.server.host, real.server.port)
    victim, known = unique_user("victim"), new_password()
    other.make_user(victim, known)
    arn = harness.create_secret(other.secret(victim, known, masterarn=master, ssl=False))
    before = other.server.stats()
    assert_rotation_fails_cleanly(
        harness,
        arn,
        InvalidSecretError,
        f"no RDS instance or cluster whose MasterUserSecret is {master} lists "
        f"{other.server.host}:{other.server.port}",
    )
    assert other.server.stats()["connections"] == before["connections"], "a login reached the attacker"
    assert not user_exists(other, victim + "_clone")
    assert not user_exists(real, victim + "_clone")


def test_hostless_master_rotates_on_the_instance_that_owns_it(
    harness: Harness, db: Db, rds_at: tuple[Any, Rewrites], verified_tls: None
) -> None:
    rds, rewrites = rds_at
    instance, master = managed_instance(harness, rds, db)
    rewrites[instance["Endpoint"]["Address"]] = (db.server.host, db.server.port)
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password, masterarn=master))
    harness.rotate(arn)
    harness.rotate(arn)
    current = harness.value(arn)
    assert current["username"] == user and db.login(user, current["password"])
    assert "host" not in harness.value(master)


def test_hostless_master_rotates_on_a_read_replica_and_a_cluster_reader(rds_at: tuple[Any, Rewrites]) -> None:
    """Endpoints the RDS API lists for the owner: its replicas, and a cluster's writer/reader/members."""
    rds, _ = rds_at
    instance = rds.create_db_instance(
        DBInstanceIdentifier="billing",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        ManageMasterUserPassword=True,
    )["DBInstance"]
    replica = rds.create_db_instance_read_replica(
        DBInstanceIdentifier="billing-replica", SourceDBInstanceIdentifier="billing"
    )["DBInstance"]
    cluster = managed_cluster(rds, "ledger")
    rds.create_db_instance(
        DBInstanceIdentifier="ledger-1",
        DBClusterIdentifier="ledger",
        Engine="aurora-postgresql",
        DBInstanceClass="db.r5.large",
    )
    member = rds.describe_db_instances(DBInstanceIdentifier="ledger-1")["DBInstances"][0]["Endpoint"]
    own = rds_endpoints.managed_master_endpoints(
        rds_endpoints.client(), instance["MasterUserSecret"]["SecretArn"]
    )
    assert (instance["Endpoint"]["Address"], 5432) in own
    assert (replica["Endpoint"]["Address"], 5432) in own
    assert (cluster["Endpoint"], 5432) not in own
    ledger = rds_endpoints.managed_master_endpoints(
        rds_endpoints.client(), cluster["MasterUserSecret"]["SecretArn"]
    )
    assert {
        (cluster["Endpoint"], 5432),
        (cluster["ReaderEndpoint"], 5432),
        (member["Address"], 5432),
    } <= ledger
    assert (instance["Endpoint"]["Address"], 5432) not in ledger


def test_hostless_master_keeps_tls_when_the_application_secret_opts_out(
    harness: Harness, pg_server: Any, pg_plain: Any, rds_at: tuple[Any, Rewrites], verified_tls: None
) -> None:
    """``"ssl": false`` in the application secret does not reach the master's connection: on a
    server without TLS, the master's login fails (TLS required) and nothing changes."""
    rds, rewrites = rds_at
    plain = pg_db(pg_plain)
    instance, master = managed_instance(harness, rds, plain)
    rewrites[instance["Endpoint"]["Address"]] = (pg_plain.host, pg_plain.port)
    user, password = unique_user(), new_password()
    plain.make_user(user, password)
    arn = harness.create_secret(plain.secret(user, password, masterarn=master, ssl=False))
    before = harness.sm.get_secret_value(SecretId=arn)["SecretString"]
    with pytest.raises(StepFailed) as failure:
        harness.rotate(arn)
    assert failure.value.step == "setSecret", failure.value.error
    # The application's own login (TLS optional, as its secret says) worked; the master's did not
    # even start: libpq refuses a server without TLS before sending anything.
    assert isinstance(failure.value.error, ConnectError), failure.value.error
    assert f"cannot connect to {pg_plain.host}:{pg_plain.port} as {pg_plain.admin_user}" in str(
        failure.value.error
    ), failure.value.error
    assert harness.sm.get_secret_value(SecretId=arn)["SecretString"] == before
    assert not user_exists(plain, user + "_clone")


def test_hostless_master_needs_a_verified_certificate(
    harness: Harness, db: Db, rds_at: tuple[Any, Rewrites]
) -> None:
    """Without ``DB_CA_BUNDLE`` the certificate of the endpoint cannot be verified, so a DNS or
    network attacker could stand in for the RDS endpoint: refused before any login, unless the
    master secret itself says ``"ssl": false``."""
    rds, rewrites = rds_at
    instance, master = managed_instance(harness, rds, db)
    rewrites[instance["Endpoint"]["Address"]] = (db.server.host, db.server.port)
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password, masterarn=master))
    before = db.server.stats()
    assert_rotation_fails_cleanly(
        harness,
        arn,
        ConfigurationError,
        f"the master secret {master} (masterarn) holds no host (an RDS-managed master secret), so its "
        "password is only sent over TLS with a verified certificate, and DB_CA_BUNDLE is not set",
    )
    assert db.server.stats()["connections"] == before["connections"]
    assert not user_exists(db, user + "_clone")

    # The master secret's own opt-out is honoured (its owner chose it, not the application's writer).
    harness.sm.put_secret_value(
        SecretId=master,
        SecretString=json.dumps(
            {"username": db.server.admin_user, "password": db.server.admin_password, "ssl": False}
        ),
    )
    harness.rotate(arn)
    assert harness.value(arn)["username"] == user + "_clone"


def test_setsecret_checks_the_rds_owner_again_before_the_master_logs_in(
    harness: Harness, db: Db, rds_at: tuple[Any, Rewrites], verified_tls: None
) -> None:
    """createSecret found the endpoint on the owning instance; by setSecret the RDS API no longer
    lists it (the instance was replaced, the endpoint moved): setSecret refuses before any login."""
    rds, rewrites = rds_at
    instance, master = managed_instance(harness, rds, db)
    rewrites[instance["Endpoint"]["Address"]] = (db.server.host, db.server.port)
    user, password = unique_user(), new_password()
    db.make_user(user, password)
    arn = harness.create_secret(db.secret(user, password, masterarn=master))
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    rewrites.clear()
    before = db.server.stats()
    with pytest.raises(InvalidSecretError) as failure:
        harness.invoke(arn, token, "setSecret")
    assert f"no RDS instance or cluster whose MasterUserSecret is {master} lists" in str(failure.value)
    assert db.server.stats()["connections"] == before["connections"]
    assert not user_exists(db, user + "_clone")
