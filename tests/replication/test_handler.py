"""Event-driven replication: rotation_handlers.replicate.handler against moto in three regions."""

from __future__ import annotations

import json

import pytest

from rotation_handlers import replicate
from rotation_handlers.replication import MARKER_TAG_KEY, ReplicationError
from tests.replication import events as ev
from tests.replication.conftest import EU, REPLICATOR_ROLE, SOURCE, TARGETS, US, Aws, secret

EXPIRY = [{"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2099-12-31T00:00:00.000Z"}}]


def run(event: dict) -> dict:
    return replicate.handler(event, None)


def test_string_created_with_attributes_and_marker(aws: Aws) -> None:
    value = secret()
    aws.put(
        "/app/db/host",
        value,
        Description="database host",
        AllowedPattern="^val-.*$",
        Tags=[{"Key": "team", "Value": "core"}],
    )
    summary = run(ev.put_parameter_event("/app/db/host"))
    assert summary["regions"] == {EU: {"created": 1}, US: {"created": 1}}
    assert value not in json.dumps(summary)
    for region in TARGETS:
        assert aws.get("/app/db/host", region)["Value"] == value
        meta = aws.describe("/app/db/host", region)
        assert meta["Description"] == "database host"
        assert meta["AllowedPattern"] == "^val-.*$"
        assert meta["Type"] == "String"
        assert aws.tags("/app/db/host", region) == {"team": "core", MARKER_TAG_KEY: SOURCE}


def test_string_list(aws: Aws) -> None:
    value = f"{secret('a')},{secret('b')}"
    aws.put("/app/hosts", value, Type="StringList")
    run(ev.put_parameter_event("/app/hosts", "StringList"))
    for region in TARGETS:
        param = aws.get("/app/hosts", region)
        assert (param["Type"], param["Value"]) == ("StringList", value)


def test_secure_string_uses_per_region_kms_key(aws: Aws, env: pytest.MonkeyPatch) -> None:
    env.setenv("REPLICA_KMS_KEYS", json.dumps({EU: "alias/eu-replica"}))
    value = secret()
    aws.put("/app/db/password", value, Type="SecureString", KeyId="alias/source-key")
    run(ev.put_parameter_event("/app/db/password", "SecureString"))
    assert aws.get("/app/db/password", EU)["Value"] == value
    assert aws.get("/app/db/password", US)["Value"] == value
    assert aws.describe("/app/db/password", EU)["KeyId"] == "alias/eu-replica"
    assert aws.describe("/app/db/password", US)["KeyId"] == "alias/aws/ssm"
    aws.reset_counts()
    assert run(ev.put_parameter_event("/app/db/password", "SecureString"))["regions"][EU] == {"unchanged": 1}
    assert aws.writes() == 0


def test_advanced_tier_with_policy(aws: Aws) -> None:
    aws.put("/app/cert", secret(), Tier="Advanced", Policies=json.dumps(EXPIRY))
    run(ev.put_parameter_event("/app/cert"))
    for region in TARGETS:
        meta = aws.describe("/app/cert", region)
        assert meta["Tier"] == "Advanced"
        assert len(meta["Policies"]) == 1
        assert "2099-12-31" in meta["Policies"][0]["PolicyText"]


def test_overwrite_then_unchanged_costs_only_reads(aws: Aws) -> None:
    aws.put("/app/flag", secret())
    run(ev.put_parameter_event("/app/flag"))
    new = secret()
    aws.put("/app/flag", new, Overwrite=True)
    aws.reset_counts()
    summary = run(ev.put_parameter_event("/app/flag", overwrite=True, version=2))
    assert summary["regions"] == {EU: {"updated": 1}, US: {"updated": 1}}
    assert aws.get("/app/flag", EU)["Value"] == new
    assert aws.writes(EU) == 1 and aws.writes(US) == 1
    aws.reset_counts()
    summary = run(ev.put_parameter_event("/app/flag", overwrite=True, version=2))
    assert summary["regions"] == {EU: {"unchanged": 1}, US: {"unchanged": 1}}
    assert aws.writes() == 0
    # reads: source history+tags once, each target history+tags
    assert aws.count(SOURCE) == 2
    assert aws.count(EU) == 2 and aws.count(US) == 2


def test_tags_added_and_removed_marker_kept(aws: Aws) -> None:
    aws.put("/app/t", secret(), Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    run(ev.put_parameter_event("/app/t"))
    src = aws.ssm(SOURCE)
    src.add_tags_to_resource(ResourceType="Parameter", ResourceId="/app/t", Tags=[{"Key": "c", "Value": "3"}])
    src.add_tags_to_resource(ResourceType="Parameter", ResourceId="/app/t", Tags=[{"Key": "a", "Value": "9"}])
    assert run(ev.add_tags_event("/app/t", {"c": "3"}))["regions"][EU] == {"tagged": 1}
    src.remove_tags_from_resource(ResourceType="Parameter", ResourceId="/app/t", TagKeys=["b"])
    aws.reset_counts()
    run(ev.remove_tags_event("/app/t", ["b"]))
    assert aws.count(EU, "RemoveTagsFromResource") == 1
    assert aws.count(EU, "PutParameter") == 0
    for region in TARGETS:
        assert aws.tags("/app/t", region) == {"a": "9", "c": "3", MARKER_TAG_KEY: SOURCE}


def test_tags_event_with_arn_resource_id(aws: Aws) -> None:
    aws.put("/app/arn", secret())
    run(ev.put_parameter_event("/app/arn"))
    aws.ssm(SOURCE).add_tags_to_resource(
        ResourceType="Parameter", ResourceId="/app/arn", Tags=[{"Key": "k", "Value": "v"}]
    )
    run(ev.add_tags_event(ev.parameter_arn("/app/arn"), {"k": "v"}))
    assert aws.tags("/app/arn", EU)["k"] == "v"


def test_name_without_leading_slash(aws: Aws) -> None:
    value = secret()
    aws.put("plainname", value)
    summary = run(ev.put_parameter_event("plainname"))
    assert summary["regions"][EU] == {"created": 1}
    assert aws.get("plainname", EU)["Value"] == value
    # the ARN of a root-level name is ambiguous ("plainname" or "/plainname"): both are checked
    summary = run(ev.add_tags_event(ev.parameter_arn("plainname"), {}))
    assert summary["regions"][EU] == {"unchanged": 2}


def test_label_and_unlabel(aws: Aws) -> None:
    v1, v2 = secret("v1"), secret("v2")
    aws.put("/app/l", v1)
    run(ev.put_parameter_event("/app/l"))
    aws.put("/app/l", v2, Overwrite=True)
    run(ev.put_parameter_event("/app/l", overwrite=True, version=2))
    src = aws.ssm(SOURCE)
    src.label_parameter_version(Name="/app/l", ParameterVersion=1, Labels=["stable"])
    src.label_parameter_version(Name="/app/l", ParameterVersion=2, Labels=["latest"])
    aws.reset_counts()
    assert run(ev.label_event("/app/l", 1, ["stable"]))["regions"][EU] == {"labelled": 1}
    assert aws.count(EU, "PutParameter") == 0  # both values already exist as target versions
    for region in TARGETS:
        assert aws.labels("/app/l", region) == {"stable": v1, "latest": v2}
    src.unlabel_parameter_version(Name="/app/l", ParameterVersion=1, Labels=["stable"])
    run(ev.unlabel_event("/app/l", 1, ["stable"]))
    for region in TARGETS:
        assert aws.labels("/app/l", region) == {"latest": v2}
        assert aws.get("/app/l", region)["Value"] == v2


def test_label_on_value_the_target_never_had(aws: Aws) -> None:
    v1, v2, v3 = secret("v1"), secret("v2"), secret("v3")
    aws.put("/app/old", v1)
    aws.put("/app/old", v2, Overwrite=True)
    aws.put("/app/old", v3, Overwrite=True)
    aws.ssm(SOURCE).label_parameter_version(Name="/app/old", ParameterVersion=1, Labels=["first"])
    # the replica only ever got the latest value
    run(ev.put_parameter_event("/app/old", overwrite=True, version=3))
    assert aws.labels("/app/old", EU) == {"first": v1}  # created: v1 written, labelled, then v3
    assert aws.get("/app/old", EU)["Value"] == v3
    assert aws.tags("/app/old", EU) == {MARKER_TAG_KEY: SOURCE}
    # existing replica: move the label to a value it lacks
    aws.ssm(SOURCE).label_parameter_version(Name="/app/old", ParameterVersion=2, Labels=["first"])
    run(ev.label_event("/app/old", 2, ["first"]))
    for region in TARGETS:
        assert aws.labels("/app/old", region) == {"first": v2}
        assert aws.get("/app/old", region)["Value"] == v3


def test_native_parameter_store_change_events(aws: Aws) -> None:
    value = secret()
    aws.put("/app/native", value)
    assert run(ev.parameter_store_change_event("/app/native", "Create"))["regions"][EU] == {"created": 1}
    new = secret()
    aws.put("/app/native", new, Overwrite=True)
    run(ev.parameter_store_change_event("/app/native", "update"))  # operation case does not matter
    assert aws.get("/app/native", US)["Value"] == new
    aws.ssm(SOURCE).label_parameter_version(Name="/app/native", ParameterVersion=2, Labels=["x"])
    run(ev.parameter_store_change_event("/app/native", "LabelParameterVersion", labels=["x"]))
    assert aws.labels("/app/native", EU) == {"x": new}
    aws.ssm(SOURCE).delete_parameter(Name="/app/native")
    assert run(ev.parameter_store_change_event("/app/native", "Delete"))["regions"][EU] == {"deleted": 1}
    assert aws.get("/app/native", EU) is None


def test_delete_and_batch_delete(aws: Aws) -> None:
    for name in ("/app/d1", "/app/d2", "/app/d3"):
        aws.put(name, secret())
        run(ev.put_parameter_event(name))
    src = aws.ssm(SOURCE)
    src.delete_parameter(Name="/app/d1")
    assert run(ev.delete_parameter_event("/app/d1"))["regions"][US] == {"deleted": 1}
    src.delete_parameters(Names=["/app/d2", "/app/d3"])
    assert run(ev.delete_parameters_event(["/app/d2", "/app/d3"]))["regions"][EU] == {"deleted": 2}
    for name in ("/app/d1", "/app/d2", "/app/d3"):
        assert aws.get(name, EU) is None and aws.get(name, US) is None


def test_delete_of_unmanaged_target(aws: Aws, env: pytest.MonkeyPatch) -> None:
    aws.put("/app/own", secret(), region=EU)  # created in the target by someone else
    aws.put("/app/own", secret(), region=US)
    summary = run(ev.delete_parameter_event("/app/own"))
    assert summary["regions"] == {EU: {"skipped": 1}, US: {"skipped": 1}}
    assert aws.get("/app/own", EU) is not None
    env.setenv("DELETE_UNMANAGED_REPLICAS", "true")
    assert run(ev.delete_parameter_event("/app/own"))["regions"][EU] == {"deleted": 1}
    assert aws.get("/app/own", EU) is None


def test_failed_call_ignored(aws: Aws) -> None:
    aws.put("/app/f", secret())
    aws.reset_counts()
    summary = run(
        ev.cloudtrail_event("PutParameter", {"name": "/app/f"}, error_code="ParameterAlreadyExists")
    )
    assert summary["ignored"] == "failed-call"
    assert aws.count() == 0
    assert aws.get("/app/f", EU) is None


@pytest.mark.parametrize("via", ["session-issuer", "assumed-role-arn"])
def test_own_call_ignored(aws: Aws, via: str) -> None:
    aws.put("/app/own-call", secret())
    if via == "session-issuer":
        event = ev.put_parameter_event(
            "/app/own-call", user_arn=ev.assumed_role_arn("whatever", "fn"), issuer_arn=REPLICATOR_ROLE
        )
    else:
        event = ev.put_parameter_event("/app/own-call", user_arn=ev.assumed_role_arn(ev.ROLE_NAME_REPLICATOR))
        event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"] = {}
    aws.reset_counts()
    assert run(event)["ignored"] == "own-call"
    assert aws.count() == 0


def test_bidirectional_replicas_are_not_sent_back(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """eu-west-1 also replicates to us-east-1: a replica there (marker from us-east-1) is not copied back."""
    value = secret()
    aws.put("/app/bi", value)
    run(ev.put_parameter_event("/app/bi"))
    env.setenv("AWS_REGION", EU)
    env.setenv("REPLICA_REGIONS", SOURCE)
    # native events carry no identity: the marker tag breaks the loop
    summary = run(ev.parameter_store_change_event("/app/bi", "Update", region=EU))
    assert summary["regions"] == {SOURCE: {"skipped": 1}}
    assert aws.tags("/app/bi", SOURCE) == {}  # the marker is never copied back
    assert aws.history("/app/bi", SOURCE)[-1]["Version"] == 1


def test_duplicated_and_out_of_order_events_converge(aws: Aws) -> None:
    v1, v2 = secret("v1"), secret("v2")
    aws.put("/app/o", v1)
    aws.put("/app/o", v2, Overwrite=True)
    events = [
        ev.put_parameter_event("/app/o", overwrite=True, version=2),
        ev.put_parameter_event("/app/o", version=1),
        ev.put_parameter_event("/app/o", overwrite=True, version=2),
    ]
    for event in events:
        run(event)
    for region in TARGETS:
        assert aws.get("/app/o", region)["Value"] == v2
        assert aws.writes(region) == 1


def test_source_deleted_before_event_handled(aws: Aws) -> None:
    aws.put("/app/gone", secret())
    run(ev.put_parameter_event("/app/gone"))
    aws.ssm(SOURCE).delete_parameter(Name="/app/gone")
    # a late PutParameter event: the source no longer has it, so the managed replica goes
    assert run(ev.put_parameter_event("/app/gone", overwrite=True))["regions"][EU] == {"deleted": 1}
    assert aws.get("/app/gone", EU) is None
    assert run(ev.put_parameter_event("/app/never"))["regions"][EU] == {"unchanged": 1}


@pytest.mark.parametrize(
    "name",
    ["/aws/service/foo", "/cdk-bootstrap/hnb659fds/version", "/cdk/exports/Stack/x", "/secret/x", "/other"],
)
def test_excluded_paths(aws: Aws, env: pytest.MonkeyPatch, name: str) -> None:
    env.setenv("REPLICATE_PATHS", "/aws,/cdk-bootstrap,/cdk,/secret")
    env.setenv("EXCLUDE_PATHS", "/secret/")
    if not name.startswith("/aws/"):  # reserved: cannot be created (moto enforces it too)
        aws.put(name, secret())
    aws.reset_counts()
    summary = run(ev.put_parameter_event(name))
    assert summary["regions"] == {EU: {"skipped": 1}, US: {"skipped": 1}}
    assert aws.count(EU) == aws.count(US) == 0
    assert aws.get(name, EU) is None


def test_ec2_image_data_type(aws: Aws, env: pytest.MonkeyPatch) -> None:
    aws.put("/app/ami", "ami-0123456789abcdef0", DataType="aws:ec2:image")
    assert run(ev.put_parameter_event("/app/ami"))["regions"][EU] == {"skipped": 1}
    assert aws.get("/app/ami", EU) is None
    env.setenv("COPY_EC2_IMAGE_PARAMETERS", "true")
    run(ev.put_parameter_event("/app/ami"))
    assert aws.describe("/app/ami", EU)["DataType"] == "aws:ec2:image"


def test_advanced_target_is_not_downgraded(aws: Aws, log_capture) -> None:
    marker = [{"Key": MARKER_TAG_KEY, "Value": SOURCE}]
    aws.put("/app/tier", secret(), region=EU, Tier="Advanced", Tags=marker)
    value = secret()
    aws.put("/app/tier", value)
    summary = run(ev.put_parameter_event("/app/tier"))
    assert summary["regions"][EU] == {"tier-downgrade-skipped": 1, "updated": 1}
    assert aws.describe("/app/tier", EU)["Tier"] == "Advanced"
    assert aws.get("/app/tier", EU)["Value"] == value
    assert any('"reason": "tier-downgrade-skipped"' in line for line in log_capture.lines)
    aws.reset_counts()
    run(ev.put_parameter_event("/app/tier"))
    assert aws.writes() == 0  # no ping-pong


def test_throttling_is_retried_with_backoff(aws: Aws) -> None:
    value = secret()
    aws.put("/app/thr", value)
    fired = aws.inject(EU, "PutParameter", "ThrottlingException", times=3)
    aws.inject(US, "GetParameterHistory", "TooManyUpdates", times=2)
    summary = run(ev.put_parameter_event("/app/thr"))
    assert fired() == 3
    assert summary["throttleRetries"] == 5
    assert len(aws.sleeps) == 5 and all(s >= 0 for s in aws.sleeps)
    assert aws.get("/app/thr", EU)["Value"] == value
    assert aws.get("/app/thr", US)["Value"] == value


def test_throttling_exhausted_fails_the_invocation(aws: Aws, env: pytest.MonkeyPatch) -> None:
    env.setenv("REPLICATION_MAX_ATTEMPTS", "3")
    aws.put("/app/thr2", secret())
    aws.inject(US, "PutParameter", "ThrottlingException")
    with pytest.raises(ReplicationError, match=r"/app/thr2 in us-west-2 \(ThrottlingException\)"):
        run(ev.put_parameter_event("/app/thr2"))
    assert aws.get("/app/thr2", EU) is not None
    assert aws.count(US, "PutParameter") == 3


def test_one_region_failing_does_not_block_others(aws: Aws, log_capture) -> None:
    value = secret()
    aws.put("/app/part", value)
    # error messages may echo values (e.g. ParameterPatternMismatch): they must not be logged/raised
    aws.inject(EU, "PutParameter", "ParameterPatternMismatch", message=f"value {value} does not match")
    with pytest.raises(ReplicationError) as info:
        run(ev.put_parameter_event("/app/part"))
    message = str(info.value)
    assert "/app/part" in message and EU in message and US not in message
    assert value not in message
    assert aws.get("/app/part", US)["Value"] == value
    assert aws.get("/app/part", EU) is None
    failed = [json.loads(line) for line in log_capture.lines if '"action": "failed"' in line]
    assert failed and failed[0]["region"] == EU and failed[0]["error"] == "ParameterPatternMismatch"


def test_one_log_line_per_parameter_and_region(aws: Aws, log_capture) -> None:
    aws.put("/app/log", secret())
    run(ev.put_parameter_event("/app/log"))
    lines = [json.loads(line) for line in log_capture.lines]
    per_pair = [x for x in lines if x.get("message") == "replicated"]
    assert sorted((x["parameter"], x["region"], x["action"]) for x in per_pair) == [
        ("/app/log", EU, "created"),
        ("/app/log", US, "created"),
    ]


def test_non_ssm_and_unsupported_events_ignored(aws: Aws) -> None:
    assert run({"source": "aws.ec2", "detail-type": "x"})["ignored"] == "not-an-aws.ssm-event"
    assert run(ev.cloudtrail_event("GetParameter", {"name": "/x"}))["ignored"] == "unsupported-event-name"
    tags_doc = ev.cloudtrail_event(
        "AddTagsToResource", {"resourceType": "Document", "resourceId": "doc", "tags": []}
    )
    assert run(tags_doc)["ignored"] == "not-a-parameter-resource"
    assert aws.count() == 0


def test_rich_parameter_round_trip_then_no_writes(aws: Aws, env: pytest.MonkeyPatch) -> None:
    """Every attribute at once; a second sync must find nothing to do (no ping-pong)."""
    env.setenv("REPLICA_KMS_KEYS", json.dumps({EU: "arn:aws:kms:eu-west-1:123456789012:alias/eu"}))
    v1, v2, v3 = secret("v1"), secret("v2"), secret("v3")
    common = {
        "Type": "SecureString",
        "Description": "rich",
        "AllowedPattern": "^val-.*$",
        "Tier": "Advanced",
        "Policies": json.dumps(EXPIRY),
    }
    aws.put("/app/rich", v1, Tags=[{"Key": "a", "Value": "1"}], **common)
    aws.put("/app/rich", v2, Overwrite=True, **common)
    aws.put("/app/rich", v3, Overwrite=True, **common)
    src = aws.ssm(SOURCE)
    src.label_parameter_version(Name="/app/rich", ParameterVersion=1, Labels=["one", "first"])
    src.label_parameter_version(Name="/app/rich", ParameterVersion=3, Labels=["current"])
    run(ev.put_parameter_event("/app/rich", "SecureString"))
    for region in TARGETS:
        meta = aws.describe("/app/rich", region)
        assert (meta["Type"], meta["Description"], meta["AllowedPattern"], meta["Tier"]) == (
            "SecureString",
            "rich",
            "^val-.*$",
            "Advanced",
        )
        assert aws.get("/app/rich", region)["Value"] == v3
        assert aws.labels("/app/rich", region) == {"one": v1, "first": v1, "current": v3}
        assert aws.tags("/app/rich", region) == {"a": "1", MARKER_TAG_KEY: SOURCE}
    assert aws.describe("/app/rich", EU)["KeyId"] == "arn:aws:kms:eu-west-1:123456789012:alias/eu"
    aws.reset_counts()
    summary = run(ev.put_parameter_event("/app/rich", "SecureString"))
    assert summary["regions"] == {EU: {"unchanged": 1}, US: {"unchanged": 1}}
    assert aws.writes() == 0


def test_type_change_and_clearing_attributes(aws: Aws) -> None:
    aws.put("/app/chg", secret(), Description="old description", AllowedPattern=".*")
    run(ev.put_parameter_event("/app/chg"))
    value = secret()
    aws.ssm(SOURCE).delete_parameter(Name="/app/chg")
    aws.put("/app/chg", value, Type="SecureString")  # re-created: no description/pattern now
    summary = run(ev.put_parameter_event("/app/chg", "SecureString"))
    assert summary["regions"][EU] == {"updated": 1}
    meta = aws.describe("/app/chg", EU)
    assert meta["Type"] == "SecureString" and not meta.get("Description") and not meta.get("AllowedPattern")
    assert aws.get("/app/chg", EU)["Value"] == value
    assert aws.tags("/app/chg", EU) == {MARKER_TAG_KEY: SOURCE}  # still managed


def test_concurrent_create_race_replans(aws: Aws) -> None:
    value = secret()
    aws.put("/app/race", value)
    aws.inject(EU, "PutParameter", "ParameterAlreadyExists", times=1)
    assert run(ev.put_parameter_event("/app/race"))["regions"][EU] == {"created": 1}
    assert aws.get("/app/race", EU)["Value"] == value


def test_delete_parameters_with_arns(aws: Aws) -> None:
    aws.put("/app/x1", secret())
    run(ev.put_parameter_event("/app/x1"))
    aws.ssm(SOURCE).delete_parameter(Name="/app/x1")
    run(ev.delete_parameters_event([ev.parameter_arn("/app/x1")]))
    assert aws.get("/app/x1", EU) is None
