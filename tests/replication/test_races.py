"""Interleaved invocations: a second invocation runs at an exact point of the first one
(botocore ``before-call.ssm.<Operation>`` hooks on the replicator's own moto clients), the way
Lambda runs several invocations at once and delivers late. Every test ends by comparing each
target with the source.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from rotation_handlers import replicate
from rotation_handlers.replication import MARKER_TAG_KEY, ConfigError, ReplicationError
from tests.replication import events as ev
from tests.replication.conftest import EU, SOURCE, TARGETS, US, Aws, secret


def once(
    aws: Aws, region: str, operation: str, action: Callable[[], None], name: str | None = None
) -> list[int]:
    """Run ``action`` the first time ``operation`` is about to be sent in ``region`` (for ``name``)."""
    fired: list[int] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        # before-call gets the serialized request: the API arguments are the JSON body
        if fired or (name is not None and json.loads(params["body"] or b"{}").get("Name") != name):
            return
        fired.append(1)
        action()

    aws.on(aws.ssm(region), f"before-call.ssm.{operation}", hook)
    return fired


def assert_targets_match_source(aws: Aws, name: str) -> None:
    source = aws.get(name, SOURCE)
    for region in TARGETS:
        target = aws.get(name, region)
        if source is None:
            assert target is None, f"{name} still in {region}"
        else:
            assert target is not None, f"{name} missing in {region}"
            assert (target["Type"], target["Value"]) == (source["Type"], source["Value"]), region
            assert aws.labels(name, region) == aws.labels(name, SOURCE), region


def test_late_invocation_does_not_overwrite_newer_replica(aws: Aws) -> None:
    aws.put("/app/late", secret("v1"))
    replicate.handler(ev.put_parameter_event("/app/late"), None)
    aws.put("/app/late", secret("v2"), Overwrite=True)

    def newer_change_fully_replicated() -> None:
        aws.put("/app/late", secret("v3"), Overwrite=True)
        replicate.handler(ev.put_parameter_event("/app/late", overwrite=True, version=3), None)

    # invocation A (for v2) read the source and the target; v3 is written and replicated; then A writes
    fired = once(aws, EU, "PutParameter", newer_change_fully_replicated)
    replicate.handler(ev.put_parameter_event("/app/late", overwrite=True, version=2), None)
    assert fired
    assert_targets_match_source(aws, "/app/late")


def test_tag_change_during_invocation_converges(aws: Aws) -> None:
    aws.put("/app/tagrace", secret(), Tags=[{"Key": "a", "Value": "1"}])
    replicate.handler(ev.put_parameter_event("/app/tagrace"), None)
    src = aws.ssm(SOURCE)
    src.add_tags_to_resource(
        ResourceType="Parameter", ResourceId="/app/tagrace", Tags=[{"Key": "b", "Value": "2"}]
    )

    def tag_removed_and_replicated() -> None:
        src.remove_tags_from_resource(ResourceType="Parameter", ResourceId="/app/tagrace", TagKeys=["b"])
        replicate.handler(ev.remove_tags_event("/app/tagrace", ["b"]), None)

    once(aws, EU, "AddTagsToResource", tag_removed_and_replicated)
    replicate.handler(ev.add_tags_event("/app/tagrace", {"b": "2"}), None)
    assert aws.tags("/app/tagrace", EU) == {"a": "1", MARKER_TAG_KEY: SOURCE}


@pytest.mark.parametrize("point", ["GetParameterHistory", "DeleteParameter"])
def test_delete_then_quick_recreate_keeps_the_live_replica(aws: Aws, point: str) -> None:
    aws.put("/app/dr", secret("old"))
    replicate.handler(ev.put_parameter_event("/app/dr"), None)
    aws.ssm(SOURCE).delete_parameter(Name="/app/dr")

    def recreated_and_replicated() -> None:
        aws.put("/app/dr", secret("new"))
        replicate.handler(ev.put_parameter_event("/app/dr"), None)

    # the delete invocation saw the source absent; the parameter is re-created and replicated
    # before the delete invocation reads the target (minutes, in reconcile) or right before it deletes
    fired = once(aws, EU, point, recreated_and_replicated, name="/app/dr")
    replicate.handler(ev.delete_parameter_event("/app/dr"), None)
    assert fired
    assert_targets_match_source(aws, "/app/dr")


@pytest.mark.parametrize("existing", [False, True], ids=["new-replica", "existing-replica"])
def test_twelve_labels_over_equal_values(aws: Aws, existing: bool) -> None:
    value = secret("same")
    aws.put("/app/many", value)
    if existing:
        replicate.handler(ev.put_parameter_event("/app/many"), None)
    aws.put("/app/many", value, Overwrite=True)  # v2: same value
    src = aws.ssm(SOURCE)
    src.label_parameter_version(Name="/app/many", ParameterVersion=1, Labels=[f"a{i}" for i in range(7)])
    src.label_parameter_version(Name="/app/many", ParameterVersion=2, Labels=[f"b{i}" for i in range(5)])
    assert len(aws.labels("/app/many", SOURCE)) == 12
    replicate.handler(ev.label_event("/app/many", 2, [f"b{i}" for i in range(5)]), None)
    assert_targets_match_source(aws, "/app/many")
    for region in TARGETS:
        assert all(len(h.get("Labels", [])) <= 10 for h in aws.history("/app/many", region))
    aws.reset_counts()
    summary = replicate.handler(ev.label_event("/app/many", 2, ["b0"]), None)
    assert summary["regions"] == {EU: {"unchanged": 1}, US: {"unchanged": 1}}
    assert aws.writes() == 0


def test_two_way_with_delete_unmanaged_does_not_delete_the_original(
    aws: Aws, env: pytest.MonkeyPatch
) -> None:
    """us-east-1 -> eu-west-1 and eu-west-1 -> us-east-1, both with DELETE_UNMANAGED_REPLICAS=true."""
    env.setenv("DELETE_UNMANAGED_REPLICAS", "true")
    env.setenv("REPLICA_REGIONS", EU)
    original = secret("orig")
    aws.put("/app/orig", original)
    aws.put("/app/other", secret())
    for name in ("/app/orig", "/app/other"):
        replicate.handler(ev.put_parameter_event(name), None)
    # someone deletes the replica in eu-west-1; eu-west-1's replicator gets the delete event
    aws.ssm(EU).delete_parameter(Name="/app/orig")
    env.setenv("AWS_REGION", EU)
    env.setenv("REPLICA_REGIONS", SOURCE)
    with pytest.raises(ConfigError, match="DELETE_UNMANAGED_REPLICAS"):
        replicate.handler(ev.parameter_store_change_event("/app/orig", "Delete", region=EU), None)
    assert aws.get("/app/orig", SOURCE)["Value"] == original


def test_reconcile_does_not_write_a_stale_source_state(aws: Aws) -> None:
    names = [f"/app/r{i}" for i in range(6)]
    for name in names:
        aws.put(name, secret())
    replicate.reconcile_handler({}, None)
    for name in names:  # drift the reconcile will find: every replica is behind
        aws.put(name, secret("drift"), Overwrite=True)

    def live_change_replicated() -> None:
        aws.put("/app/r3", secret("live"), Overwrite=True)
        replicate.handler(ev.put_parameter_event("/app/r3", overwrite=True), None)

    # while reconcile works through its queue, /app/r3 changes and its event is handled
    fired = once(aws, EU, "GetParameterHistory", live_change_replicated, name="/app/r3")
    replicate.reconcile_handler({}, None)
    assert fired
    for name in names:
        assert_targets_match_source(aws, name)


def test_source_changing_every_round_fails_loudly(aws: Aws, env: pytest.MonkeyPatch) -> None:
    env.setenv("REPLICATION_MAX_ROUNDS", "3")
    env.setenv("REPLICA_REGIONS", EU)
    aws.put("/app/busy", secret())

    def change(**_: Any) -> None:
        aws.put("/app/busy", secret("busy"), Overwrite=True)

    aws.on(aws.ssm(EU), "before-call.ssm.PutParameter", change)
    with pytest.raises(ReplicationError, match=r"/app/busy in eu-west-1 \(NotConverged\)"):
        replicate.handler(ev.put_parameter_event("/app/busy"), None)
    assert aws.count(EU, "PutParameter") == 3


def test_two_way_appearing_after_start_up_still_refuses_the_delete(aws: Aws, env: pytest.MonkeyPatch) -> None:
    def as_replicator(source: str, target: str, delete_unmanaged: bool) -> None:
        env.setenv("AWS_REGION", source)
        env.setenv("REPLICA_REGIONS", target)
        env.setenv("DELETE_UNMANAGED_REPLICAS", str(delete_unmanaged).lower())

    # eu-west-1 -> us-east-1 starts (and passes its start-up check) before the reverse direction exists
    as_replicator(EU, SOURCE, True)
    aws.put("/app/eu-own", secret(), region=EU)
    replicate.handler(ev.parameter_store_change_event("/app/eu-own", "Create", region=EU), None)
    # then us-east-1 -> eu-west-1 replicates two originals
    as_replicator(SOURCE, EU, False)
    original = secret("orig")
    aws.put("/app/orig", original)
    aws.put("/app/other", secret())
    for name in ("/app/orig", "/app/other"):
        replicate.handler(ev.put_parameter_event(name), None)
    aws.ssm(EU).delete_parameter(Name="/app/orig")  # someone deletes a replica
    as_replicator(EU, SOURCE, True)
    with pytest.raises(ReplicationError, match=r"/app/orig in us-east-1 \(ConfigError\)"):
        replicate.handler(ev.parameter_store_change_event("/app/orig", "Delete", region=EU), None)
    assert aws.get("/app/orig", SOURCE)["Value"] == original
