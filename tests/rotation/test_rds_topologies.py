"""The master acts on Aurora custom endpoints and cross-Region read replicas of its own deployment.

Both relations are taken from the RDS API, never from names:

* An Aurora custom endpoint (``<name>.cluster-custom-<id>.<region>.rds.amazonaws.com``) starts
  with the endpoint's own name, not the cluster's. ``DescribeDBClusterEndpoints`` names the
  cluster it belongs to ("DBClusterEndpoint": ``DBClusterIdentifier``, ``Endpoint``,
  ``EndpointType`` CUSTOM, https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterEndpoint.html,
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusterEndpoints.html),
  and that cluster lists the address in ``CustomEndpoints``
  (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html). moto 5.2.5 has
  neither, so a botocore hook on the function's RDS client answers both as documented.
* A cross-Region read replica lives in another Region; its ``ReadReplicaSourceDBInstanceIdentifier``
  is the source's ARN and the source lists the replica's ARN in ``ReadReplicaDBInstanceIdentifiers``
  ("Creating a read replica in a different AWS Region",
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.XRgn.html; DBInstance,
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBInstance.html). Each endpoint
  is looked up in the Region its DNS name carries (only used to ask; the answer must list the
  exact address). moto keeps cross-Region replicas as AWS describes them.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from devtools.aws import REGION
from rotation_handlers import rds_endpoints
from rotation_handlers.errors import InvalidSecretError

from .conftest import Harness, new_password, unique_user
from .rds_api import CustomEndpoints, answer_custom_endpoints, managed_cluster
from .test_gate_and_input import assert_rotation_fails_cleanly, start_rotation_without_running_it
from .test_master_binding import aurora, instance_endpoint

OTHER_REGION = "eu-west-1"


@pytest.fixture
def custom(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> CustomEndpoints:
    return answer_custom_endpoints(monkeypatch)


# -- custom endpoints ----------------------------------------------------------------------------------
def test_a_custom_endpoint_of_the_masters_cluster_is_the_same_deployment(custom: CustomEndpoints) -> None:
    rds = rds_endpoints.client()
    orders, billing = aurora(rds, "orders", instances=1), aurora(rds, "billing", instances=1)
    analytics = custom.add(orders, "analytics")
    reports = custom.add(billing, "reports")
    check = rds_endpoints.same_deployment
    assert check(orders["Endpoint"], 5432, analytics, 5432, rds)
    assert check(analytics, 5432, orders["ReaderEndpoint"], 5432, rds)  # the master on a custom endpoint
    assert not check(orders["Endpoint"], 5432, reports, 5432, rds)  # another cluster's custom endpoint
    assert not check(orders["Endpoint"], 5432, analytics, 5433, rds)  # the cluster's port only
    # A name shaped like a custom endpoint that the API does not list.
    assert not check(orders["Endpoint"], 5432, analytics.replace("analytics.", "analytics2."), 5432, rds)
    # The API lists an endpoint whose address is not the one asked about.
    custom.endpoints[0]["Endpoint"] = "analytics.cluster-custom-other.us-east-1.rds.amazonaws.com"
    assert not check(orders["Endpoint"], 5432, analytics, 5432, rds)


def test_create_secret_accepts_a_custom_endpoint_of_the_masters_cluster(
    harness: Harness, custom: CustomEndpoints
) -> None:
    rds = rds_endpoints.client()
    orders, billing = aurora(rds, "orders", instances=1), aurora(rds, "billing", instances=1)
    master = harness.create_secret(
        {"engine": "postgres", "host": orders["Endpoint"], "username": "admin", "password": new_password()}
    )

    def secret_on(host: str) -> str:
        return harness.create_secret(
            {"engine": "postgres", "host": host, "username": unique_user(), "password": new_password()}
            | {"masterarn": master}
        )

    assert_rotation_fails_cleanly(
        harness, secret_on(custom.add(billing, "reports")), InvalidSecretError, "is for " + orders["Endpoint"]
    )
    ok = secret_on(custom.add(orders, "analytics"))
    token = start_rotation_without_running_it(harness, ok)
    harness.invoke(ok, token, "createSecret")
    assert harness.value(ok, "AWSPENDING")["username"].endswith("_clone")


def test_a_custom_endpoint_of_a_cluster_owning_a_managed_master_secret(custom: CustomEndpoints) -> None:
    rds = rds_endpoints.client()
    cluster = managed_cluster(rds, "ledger")
    analytics = custom.add(cluster, "ledger-analytics")
    secret_arn = cluster["MasterUserSecret"]["SecretArn"]
    assert rds_endpoints.owns_endpoint(secret_arn, analytics, 5432)
    assert not rds_endpoints.owns_endpoint(secret_arn, analytics, 3306)


# -- cross-Region read replicas ------------------------------------------------------------------------
def source_and_replica(rds: Any, name: str, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    source = rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        AllocatedStorage=20,
        **(extra or {"MasterUserPassword": new_password()}),
    )["DBInstance"]
    far = boto3.client("rds", region_name=OTHER_REGION)
    replica = far.create_db_instance_read_replica(
        DBInstanceIdentifier=name + "-dr", SourceDBInstanceIdentifier=source["DBInstanceArn"]
    )["DBInstance"]
    return source, replica


def test_a_cross_region_read_replica_of_the_masters_instance_is_the_same_deployment(
    custom: CustomEndpoints,
) -> None:
    rds = rds_endpoints.client()
    _, legacy_dr = source_and_replica(rds, "legacy")
    _, other_dr = source_and_replica(rds, "other")
    assert OTHER_REGION in legacy_dr["Endpoint"]["Address"]
    check = rds_endpoints.same_deployment
    assert check(instance_endpoint(rds, "legacy"), 5432, legacy_dr["Endpoint"]["Address"], 5432, rds)
    # Another instance's replica, the replica as master of its source, a wrong port: not related.
    assert not check(instance_endpoint(rds, "legacy"), 5432, other_dr["Endpoint"]["Address"], 5432, rds)
    assert not check(legacy_dr["Endpoint"]["Address"], 5432, instance_endpoint(rds, "legacy"), 5432, rds)
    assert not check(instance_endpoint(rds, "legacy"), 5432, legacy_dr["Endpoint"]["Address"], 5433, rds)


def test_create_secret_in_the_replicas_region_accepts_its_source_as_master(
    harness: Harness, custom: CustomEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rotation function runs in the replica's Region (next to the application); the master
    secret names the source in its own Region: both are looked up where they live."""
    rds = boto3.client("rds", region_name=REGION)
    legacy, legacy_dr = source_and_replica(rds, "legacy")
    monkeypatch.setenv("AWS_REGION", OTHER_REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", OTHER_REGION)
    assert rds_endpoints.same_deployment(
        legacy["Endpoint"]["Address"], 5432, legacy_dr["Endpoint"]["Address"], 5432
    )
    master = harness.create_secret(
        {
            "engine": "postgres",
            "host": legacy["Endpoint"]["Address"],
            "username": "admin",
            "password": "x" * 12,
        }
    )
    arn = harness.create_secret(
        {
            "engine": "postgres",
            "host": legacy_dr["Endpoint"]["Address"],
            "username": unique_user(),
            "password": new_password(),
            "masterarn": master,
        }
    )
    token = start_rotation_without_running_it(harness, arn)
    harness.invoke(arn, token, "createSecret")
    assert harness.value(arn, "AWSPENDING")["username"].endswith("_clone")


def test_a_cross_region_replica_of_an_instance_owning_a_managed_master_secret(
    custom: CustomEndpoints,
) -> None:
    rds = boto3.client("rds", region_name=REGION)
    billing, billing_dr = source_and_replica(rds, "billing", ManageMasterUserPassword=True)
    _, other_dr = source_and_replica(rds, "other")
    secret_arn = billing["MasterUserSecret"]["SecretArn"]
    owned = rds_endpoints.managed_master_endpoints(rds_endpoints.client(), secret_arn)
    assert (billing["Endpoint"]["Address"], 5432) in owned
    assert (billing_dr["Endpoint"]["Address"], 5432) in owned
    assert (other_dr["Endpoint"]["Address"], 5432) not in owned
