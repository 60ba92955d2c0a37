"""Reconcile mode: full sync, stale replica deletion, dry run, API call efficiency."""

from __future__ import annotations

import json

import pytest

from rotation_handlers import replicate
from rotation_handlers.replication import MARKER_TAG_KEY, engine
from tests.replication.conftest import EU, SOURCE, TARGETS, US, Aws, secret


def seed(aws: Aws) -> dict[str, str]:
    values = {f"/app/p{i}": secret(f"p{i}") for i in range(12)}
    for name, value in values.items():
        aws.put(name, value, Tags=[{"Key": "n", "Value": name}])
    return values


def test_reconcile_creates_updates_and_deletes(aws: Aws) -> None:
    values = seed(aws)
    aws.put("/cdk/context/x", secret())  # /cdk/ is fine, only /cdk/exports/ is excluded
    aws.put("/cdk/exports/Stack/out", "x")  # always excluded
    aws.put("/cdk-bootstrap/hnb659fds/version", "21")  # always excluded
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"][EU] == {"created": 13}
    assert summary["parameters"] == 13
    assert aws.get("/cdk-bootstrap/hnb659fds/version", EU) is None
    for name, value in values.items():
        for region in TARGETS:
            assert aws.get(name, region)["Value"] == value

    # drift: a missed update, a missed tag removal, a missed delete, a replica with no source,
    # and an unmanaged parameter in the target (must survive)
    new = secret("new")
    aws.put("/app/p0", new, Overwrite=True)
    aws.ssm(SOURCE).remove_tags_from_resource(ResourceType="Parameter", ResourceId="/app/p1", TagKeys=["n"])
    aws.ssm(SOURCE).delete_parameter(Name="/app/p2")
    aws.put("/app/expired", secret(), region=EU, Tags=[{"Key": MARKER_TAG_KEY, "Value": SOURCE}])
    aws.put("/app/theirs", secret(), region=EU)
    aws.put("/app/other-source", secret(), region=EU, Tags=[{"Key": MARKER_TAG_KEY, "Value": "ap-south-1"}])
    aws.reset_counts()
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"][EU] == {"deleted": 2, "tagged": 1, "unchanged": 10, "updated": 1}
    assert summary["regions"][US] == {"deleted": 1, "tagged": 1, "unchanged": 10, "updated": 1}
    assert aws.get("/app/p0", EU)["Value"] == new
    assert "n" not in aws.tags("/app/p1", US)
    assert aws.get("/app/p2", EU) is None and aws.get("/app/expired", EU) is None
    assert aws.get("/app/theirs", EU) is not None and aws.get("/app/other-source", EU) is not None
    assert {(c["parameter"], c["region"]) for c in summary["changes"]} >= {("/app/p0", EU), ("/app/p2", US)}
    assert aws.writes(EU) == 4 and aws.writes(US) == 3


def test_reconcile_in_sync_costs_only_reads(aws: Aws) -> None:
    seed(aws)
    replicate.reconcile_handler({}, None)
    aws.reset_counts()
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"] == {EU: {"unchanged": 12}, US: {"unchanged": 12}}
    assert aws.writes() == 0
    # per parameter and region: history + tags; listing is batched (moto pages by 10, AWS by 50)
    assert aws.count(EU, "GetParameterHistory") == 12 and aws.count(EU, "ListTagsForResource") == 12
    assert aws.count(SOURCE, "DescribeParameters") == 2
    assert aws.count(EU, "DescribeParameters") == 2  # marker-tagged replicas listing
    assert aws.count() == 12 * 2 * 3 + 2 + 2 * 2


@pytest.mark.parametrize("how", ["event", "env"])
def test_dry_run_changes_nothing(aws: Aws, env: pytest.MonkeyPatch, how: str) -> None:
    values = seed(aws)
    aws.put("/app/stale", secret(), region=US, Tags=[{"Key": MARKER_TAG_KEY, "Value": SOURCE}])
    aws.reset_counts()
    if how == "env":
        env.setenv("RECONCILE_DRY_RUN", "true")
        summary = replicate.reconcile_handler({}, None)
    else:
        summary = replicate.reconcile_handler({"dryRun": True}, None)
    assert summary["dryRun"] is True
    assert aws.writes() == 0
    assert summary["regions"][EU] == {"created": 12}
    assert summary["regions"][US] == {"created": 12, "deleted": 1}
    assert len(summary["changes"]) == 25
    assert {"region": US, "parameter": "/app/stale", "action": "deleted", "reason": "source deleted"} in [
        {k: c[k] for k in ("region", "parameter", "action", "reason")} for c in summary["changes"]
    ]
    text = json.dumps(summary)
    assert not any(v in text for v in values.values())
    assert aws.get("/app/p0", EU) is None and aws.get("/app/stale", US) is not None


def test_reconcile_respects_paths(aws: Aws, env: pytest.MonkeyPatch) -> None:
    env.setenv("REPLICATE_PATHS", "/team")
    env.setenv("EXCLUDE_PATHS", "/team/private")
    aws.put("/team/a", secret())
    aws.put("/team/private/b", secret())
    aws.put("/teamster", secret())
    aws.put("/other/c", secret())
    summary = replicate.reconcile_handler({}, None)
    assert summary["parameters"] == 1
    assert aws.get("/team/a", EU) is not None
    assert aws.get("/team/private/b", EU) is None and aws.get("/teamster", EU) is None


def test_reconcile_region_failure_reported(aws: Aws) -> None:
    seed(aws)
    aws.inject(US, "PutParameter", "AccessDeniedException")
    with pytest.raises(engine.ReplicationError, match="us-west-2") as info:
        replicate.reconcile_handler({}, None)
    assert "eu-west-1" not in str(info.value)
    assert aws.get("/app/p5", EU) is not None
