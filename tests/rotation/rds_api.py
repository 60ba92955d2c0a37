"""moto's RDS as the rotation function sees it, with what moto 5.2.5 lacks answered as AWS documents.

Aurora custom endpoints: ``DescribeDBClusterEndpoints`` (not implemented by moto) is answered by a
``before-call`` hook with the documented response shape ("DBClusterEndpoint",
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterEndpoint.html; an unknown
identifier is ``DBClusterEndpointNotFoundFault``), and each ``DescribeDBClusters`` answer gets the
cluster's ``CustomEndpoints`` ("DBCluster", https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from devtools.aws import REGION
from rotation_handlers import rds_endpoints


class CustomEndpoints:
    """Custom endpoints as the RDS API reports them, answered on every RDS client the function makes."""

    def __init__(self) -> None:
        self.endpoints: list[dict[str, Any]] = []

    def add(self, cluster: dict[str, Any], name: str, region: str = REGION) -> str:
        # The documented address shape: <endpoint>.cluster-custom-<id>.<region>.rds.amazonaws.com
        suffix = cluster["Endpoint"].split(".cluster-", 1)[1]
        address = f"{name}.cluster-custom-{suffix}"
        self.endpoints.append(
            {
                "DBClusterEndpointIdentifier": name,
                "DBClusterIdentifier": cluster["DBClusterIdentifier"],
                "DBClusterEndpointResourceIdentifier": "cluster-endpoint-" + name.upper(),
                "Endpoint": address,
                "Status": "available",
                "EndpointType": "CUSTOM",
                "CustomEndpointType": "READER",
                "StaticMembers": [],
                "ExcludedMembers": [],
                "DBClusterEndpointArn": f"arn:aws:rds:{region}:123456789012:cluster-endpoint:{name}",
            }
        )
        return address

    def answer(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        """before-call.rds.DescribeDBClusterEndpoints: the documented response, never moto's."""
        wanted = params.get("DBClusterEndpointIdentifier")
        cluster = params.get("DBClusterIdentifier")
        found = [
            e
            for e in self.endpoints
            if (wanted is None or e["DBClusterEndpointIdentifier"] == wanted)
            and (cluster is None or e["DBClusterIdentifier"] == cluster)
        ]
        if wanted is not None and not found:
            raise ClientError(
                {"Error": {"Code": "DBClusterEndpointNotFoundFault", "Message": f"{wanted} not found"}},
                "DescribeDBClusterEndpoints",
            )
        return _http_ok(), {"DBClusterEndpoints": found}

    def list_on_clusters(self, parsed: dict[str, Any], **_: Any) -> None:
        """after-call.rds.DescribeDBClusters: each cluster lists its custom endpoints (moto omits them)."""
        for cluster in parsed.get("DBClusters", []):
            cluster["CustomEndpoints"] = [
                e["Endpoint"]
                for e in self.endpoints
                if e["DBClusterIdentifier"] == cluster["DBClusterIdentifier"]
            ]

    def install(self, rds: Any) -> Any:
        rds.meta.events.register("before-call.rds.DescribeDBClusterEndpoints", self.answer)
        rds.meta.events.register("after-call.rds.DescribeDBClusters", self.list_on_clusters)
        return rds


def _http_ok() -> Any:
    return AWSResponse("https://rds.amazonaws.com/", 200, {}, None)


def managed_cluster(rds: Any, name: str) -> dict[str, Any]:
    """An Aurora PostgreSQL cluster whose master password RDS keeps in Secrets Manager."""
    return dict(
        rds.create_db_cluster(
            DBClusterIdentifier=name,
            Engine="aurora-postgresql",
            MasterUsername="admin",
            ManageMasterUserPassword=True,
        )["DBCluster"]
    )


def answer_custom_endpoints(monkeypatch: pytest.MonkeyPatch) -> CustomEndpoints:
    """Every RDS client the function makes from now on answers as above (within ``harness``'s moto)."""
    endpoints = CustomEndpoints()
    made: Callable[..., Any] = rds_endpoints.client
    monkeypatch.setattr(rds_endpoints, "client", lambda region=None: endpoints.install(made(region)))
    return endpoints


__all__ = ["REGION", "CustomEndpoints", "answer_custom_endpoints", "managed_cluster"]
