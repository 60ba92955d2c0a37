"""Is a database endpoint the master's server? Exact match, or the same RDS cluster / a read replica.

The master (admin) secret of an alternating-user secret may act only on the server where the
current login was proven. Endpoints are equal when host names match case-insensitively (a
trailing dot ignored) and ports are equal. The one other accepted case is an endpoint of the
same Amazon RDS / Aurora deployment, verified through the RDS API, never by comparing names:

* both endpoints belong to the same Aurora cluster (its writer endpoint, reader endpoint, a custom
  endpoint, or the endpoint of one of its instances), or
* the rotated secret names a read replica instance whose source is the master's instance, in the
  same Region or another one (a cross-Region replica names its source by ARN:
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.XRgn.html).

An Aurora custom endpoint (``<endpoint>.cluster-custom-<id>.<region>.rds.amazonaws.com``) starts
with the endpoint's own identifier, not the cluster's: DescribeDBClusterEndpoints names its
cluster, and that cluster must list the exact address in ``CustomEndpoints``
(https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusterEndpoints.html,
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html). Each endpoint is
looked up in the Region its DNS name carries (only to know where to ask; the answer decides).

An RDS endpoint starts with the identifier of its cluster or instance
(``<cluster>.cluster-ro-<id>.<region>.rds.amazonaws.com``, ``<instance>.<id>.<region>...``): that
first label is only used to *ask* the API (DescribeDBClusters / DescribeDBInstances); the answer
must list the exact endpoint address and port, otherwise the endpoints are not related.
See https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.Endpoints.html
and https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html.

An RDS-managed master secret (``ManageMasterUserPassword``) holds only ``username`` and
``password``; the instance or cluster it belongs to names it in ``MasterUserSecret.SecretArn``
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html,
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_MasterUserSecret.html).
:func:`managed_master_endpoints` lists every endpoint of that owner: the master password may
only be sent to one of them.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .errors import RotationError

#: IAM actions the rotation function needs for the RDS check (read only).
RDS_ACTIONS = ("rds:DescribeDBClusters", "rds:DescribeDBInstances", "rds:DescribeDBClusterEndpoints")

_NOT_FOUND = {
    "DBClusterNotFoundFault",
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBClusterEndpointNotFoundFault",
}
_RESULT_KEYS = {
    "describe_db_clusters": "DBClusters",
    "describe_db_instances": "DBInstances",
    "describe_db_cluster_endpoints": "DBClusterEndpoints",
}
# <...>.<region>.rds.amazonaws.com (or .com.cn): the Region an RDS endpoint lives in.
_ENDPOINT_REGION = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com(?:\.cn)?$")


def normalise_host(host: str) -> str:
    """Host names compare case-insensitively and without a trailing dot."""
    return host.strip().rstrip(".").lower()


def same_endpoint(host_a: str, port_a: int, host_b: str, port_b: int) -> bool:
    return port_a == port_b and normalise_host(host_a) == normalise_host(host_b)


def client(region: str | None = None) -> Any:
    """A new RDS client (only needed off the happy path, when the two endpoints differ)."""
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return boto3.client(
        "rds",
        region_name=region,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10),
    )


@dataclass(frozen=True)
class Endpoint:
    """What the RDS API says an endpoint is: a cluster endpoint or an instance endpoint."""

    cluster: str | None  # the cluster it belongs to (cluster endpoints, Aurora instances)
    instance: str | None  # the instance it is (instance endpoints)
    instance_arn: str | None
    replica_source: str | None  # ReadReplicaSourceDBInstanceIdentifier (an id, or an ARN cross-region)


def endpoint_region(host: str) -> str | None:
    """The Region in an RDS endpoint's DNS name (where to ask about it), or None."""
    found = _ENDPOINT_REGION.search(normalise_host(host))
    return found.group(1) if found else None


def _client_for(host: str, rds: Any) -> Any:
    """``rds`` when it serves the Region ``host`` names (or the name carries none), else a client there."""
    region = endpoint_region(host)
    if rds is not None and (region is None or region == rds.meta.region_name):
        return rds
    return client(region)


def _call(rds: Any, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
    key = _RESULT_KEYS[operation]
    try:
        return list(getattr(rds, operation)(**kwargs).get(key, []))
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND:
            return []
        message = exc.response.get("Error", {}).get("Message", "")
        raise RotationError(f"RDS {operation} failed: {code}: {message}") from None
    except BotoCoreError as exc:
        raise RotationError(f"RDS {operation} failed: {exc}") from None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def describe_endpoint(rds: Any, host: str, port: int) -> Endpoint | None:
    """The cluster or instance the RDS API lists ``host:port`` for, or None."""
    wanted = normalise_host(host)
    identifier = wanted.split(".", 1)[0]
    if not identifier or "." not in wanted or _is_ip(wanted):
        return None  # RDS endpoints are DNS names; an address is never one
    for cluster in _call(rds, "describe_db_clusters", DBClusterIdentifier=identifier):
        addresses = {
            cluster.get("Endpoint"),
            cluster.get("ReaderEndpoint"),
            *cluster.get("CustomEndpoints", []),
        }
        if wanted in {normalise_host(a) for a in addresses if a} and int(cluster.get("Port", -1)) == port:
            return Endpoint(cluster.get("DBClusterIdentifier"), None, None, None)
    for instance in _call(rds, "describe_db_instances", DBInstanceIdentifier=identifier):
        endpoint = instance.get("Endpoint") or {}
        address, instance_port = endpoint.get("Address"), endpoint.get("Port")
        if address and normalise_host(address) == wanted and instance_port == port:
            return Endpoint(
                instance.get("DBClusterIdentifier"),
                instance.get("DBInstanceIdentifier"),
                instance.get("DBInstanceArn"),
                instance.get("ReadReplicaSourceDBInstanceIdentifier"),
            )
    return _custom_endpoint(rds, identifier, wanted, port)


def _custom_endpoint(rds: Any, identifier: str, wanted: str, port: int) -> Endpoint | None:
    """An Aurora custom endpoint: DescribeDBClusterEndpoints names its cluster, and the cluster
    (its own answer) lists the address among its ``CustomEndpoints`` on ``port``."""
    for found in _call(rds, "describe_db_cluster_endpoints", DBClusterEndpointIdentifier=identifier):
        if found.get("EndpointType") != "CUSTOM" or normalise_host(found.get("Endpoint") or "") != wanted:
            continue
        for cluster in _call(
            rds, "describe_db_clusters", DBClusterIdentifier=found.get("DBClusterIdentifier")
        ):
            listed = {normalise_host(a) for a in cluster.get("CustomEndpoints", []) if a}
            if wanted in listed and int(cluster.get("Port", -1)) == port:
                return Endpoint(cluster.get("DBClusterIdentifier"), None, None, None)
    return None


def _scan(rds: Any, operation: str) -> list[dict[str, Any]]:
    """Every cluster or instance in the region (all pages)."""
    key = _RESULT_KEYS[operation]
    out: list[dict[str, Any]] = []
    try:
        for page in rds.get_paginator(operation).paginate():
            out.extend(page.get(key, []))
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = exc.response.get("Error", {}).get("Message", "")
        raise RotationError(f"RDS {operation} failed: {code}: {message}") from None
    except BotoCoreError as exc:
        raise RotationError(f"RDS {operation} failed: {exc}") from None
    return out


def _owned_by(resource: dict[str, Any], secret_arn: str) -> bool:
    owner = resource.get("MasterUserSecret") or {}
    return bool(secret_arn) and owner.get("SecretArn") == secret_arn


def managed_master_endpoints(rds: Any, secret_arn: str) -> set[tuple[str, int]]:
    """The endpoints (normalised host, port) of the RDS deployment whose master secret is ``secret_arn``.

    The owner is the instance or cluster whose ``MasterUserSecret.SecretArn`` is exactly that ARN.
    Its endpoints: a cluster's writer, reader and custom endpoints and its member instances; an
    instance's own endpoint; and the endpoints of read replicas of an owning instance in this
    region. Nothing is inferred from names.
    """
    endpoints: set[tuple[str, int]] = set()
    clusters = {
        str(c.get("DBClusterIdentifier")): c
        for c in _scan(rds, "describe_db_clusters")
        if _owned_by(c, secret_arn)
    }
    for cluster in clusters.values():
        port = int(cluster.get("Port") or -1)
        for address in (
            cluster.get("Endpoint"),
            cluster.get("ReaderEndpoint"),
            *cluster.get("CustomEndpoints", []),
        ):
            if address:
                endpoints.add((normalise_host(address), port))
    instances = _scan(rds, "describe_db_instances")
    owners: set[str] = set()
    for instance in instances:
        if _owned_by(instance, secret_arn) or instance.get("DBClusterIdentifier") in clusters:
            owners.update(
                str(v) for v in (instance.get("DBInstanceIdentifier"), instance.get("DBInstanceArn")) if v
            )
    for instance in instances:
        member = instance.get("DBInstanceIdentifier") in owners
        if member or instance.get("ReadReplicaSourceDBInstanceIdentifier") in owners:
            _add_endpoint(endpoints, instance)
        if member:
            endpoints |= _cross_region_replicas(instance, owners)
    return endpoints


def _add_endpoint(endpoints: set[tuple[str, int]], instance: dict[str, Any]) -> None:
    endpoint = instance.get("Endpoint") or {}
    if endpoint.get("Address") and endpoint.get("Port") is not None:
        endpoints.add((normalise_host(endpoint["Address"]), int(endpoint["Port"])))


def _cross_region_replicas(source: dict[str, Any], owners: set[str]) -> set[tuple[str, int]]:
    """Endpoints of ``source``'s replicas in other Regions: the source lists them by ARN, and each,
    described in its own Region, must name an owner as its source."""
    endpoints: set[tuple[str, int]] = set()
    for arn in source.get("ReadReplicaDBInstanceIdentifiers", []):
        parts = str(arn).split(":")
        if len(parts) < 7 or parts[0] != "arn":
            continue  # a replica in this Region: already in the scan
        for replica in _call(client(parts[3]), "describe_db_instances", DBInstanceIdentifier=arn):
            if replica.get("ReadReplicaSourceDBInstanceIdentifier") in owners:
                _add_endpoint(endpoints, replica)
    return endpoints


def owns_endpoint(secret_arn: str, host: str, port: int, rds: Any = None) -> bool:
    """True when the RDS deployment owning the managed master secret lists ``host:port``.

    RDS keeps a managed master secret in the Region of its instance or cluster, so that Region
    (the secret ARN's) is where the owner is looked for."""
    parts = secret_arn.split(":")
    region = parts[3] if len(parts) >= 7 and parts[0] == "arn" and parts[3] else None
    rds = rds or client(region)
    return (normalise_host(host), port) in managed_master_endpoints(rds, secret_arn)


def same_deployment(master_host: str, master_port: int, host: str, port: int, rds: Any = None) -> bool:
    """True when ``host:port`` is, per the RDS API, the master's cluster or a replica of its instance."""
    rds = rds or client()
    master = describe_endpoint(_client_for(master_host, rds), master_host, master_port)
    if master is None:
        return False
    other = describe_endpoint(_client_for(host, rds), host, port)
    if other is None:
        return False
    if master.cluster and other.cluster == master.cluster:
        return True
    if master.instance and other.replica_source:
        return other.replica_source in (master.instance, master.instance_arn)
    return False


__all__ = [
    "RDS_ACTIONS",
    "Endpoint",
    "describe_endpoint",
    "endpoint_region",
    "managed_master_endpoints",
    "normalise_host",
    "owns_endpoint",
    "same_deployment",
    "same_endpoint",
]
