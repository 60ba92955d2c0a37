"""What a real, shared production account needs from the templates: other workloads of the VPC
unaffected, passwords never regenerated or deleted by a deploy, alerts that do not depend on a trail,
bounded fan-out, and alerts into an existing topic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.config import parse_config
from infra.replication import EventSource, ParameterReplicator
from tests.infra.conftest import (
    EXAMPLE,
    NO_BUNDLING,
    Synth,
    dumps,
    logical_id,
    minimal_raw,
    render,
    resources,
    statements,
    synth,
)

TOPIC = "arn:aws:sns:eu-west-1:123456789012:platform-pager"
VPCE_DNS = "vpce-0123456789abcdef0-abcdefgh.secretsmanager.eu-west-1.vpce.amazonaws.com"


def _rotation_env(synth_: Synth) -> dict[str, Any]:
    raw = synth_.raw("SecretsRotation")
    fn = raw["Resources"][logical_id(raw, "AWS::Lambda::Function", "RotationFunction")]
    return fn["Properties"]["Environment"]["Variables"]


# -- 1. the Secrets Manager endpoint serves the rotation function only ---------------------------


def test_created_endpoint_leaves_the_public_name_alone(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    (endpoint_id, endpoint), *others = resources(raw, "AWS::EC2::VPCEndpoint").items()
    assert not others
    assert endpoint["Properties"]["PrivateDnsEnabled"] is False
    # The function is pointed at the endpoint's own DNS name (boto3 reads AWS_ENDPOINT_URL_<service>).
    assert _rotation_env(example)["AWS_ENDPOINT_URL_SECRETS_MANAGER"] == {
        "Fn::Join": [
            "",
            [
                "https://",
                {
                    "Fn::Select": [
                        1,
                        {
                            "Fn::Split": [
                                ":",
                                {"Fn::Select": [0, {"Fn::GetAtt": [endpoint_id, "DnsEntries"]}]},
                            ]
                        },
                    ]
                },
            ],
        ]
    }
    # Only the rotation function may connect to it.
    endpoint_sg = logical_id(raw, "AWS::EC2::SecurityGroup", "RotationEndpointSecurityGroup")
    function_sg = logical_id(raw, "AWS::EC2::SecurityGroup", "RotationSecurityGroup")
    into_endpoint = [
        render(r["Properties"])
        for r in resources(raw, "AWS::EC2::SecurityGroupIngress").values()
        if render(r["Properties"]["GroupId"]) == f"<{endpoint_sg}.GroupId>"
    ]
    assert [(i["SourceSecurityGroupId"], i["FromPort"]) for i in into_endpoint] == [
        (f"<{function_sg}.GroupId>", 443)
    ]
    assert "SecurityGroupIngress" not in raw["Resources"][endpoint_sg]["Properties"]


def test_existing_endpoint_is_a_config_choice(variant: Synth) -> None:
    raw = variant.raw("SecretsRotation")
    endpoints = [r["Properties"] for r in resources(raw, "AWS::EC2::VPCEndpoint").values()]
    # Only the RDS endpoint is created; the Secrets Manager one exists already.
    assert [e["ServiceName"] for e in endpoints] == ["com.amazonaws.eu-west-1.rds"]
    assert endpoints[0]["PrivateDnsEnabled"] is False
    env = _rotation_env(variant)
    assert env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] == f"https://{VPCE_DNS}"
    assert "AWS_ENDPOINT_URL_RDS" in env
    function_sg = logical_id(raw, "AWS::EC2::SecurityGroup", "RotationSecurityGroup")
    ingress = [render(r["Properties"]) for r in resources(raw, "AWS::EC2::SecurityGroupIngress").values()]
    assert {
        "GroupId": "sg-0a1b2c3d4e5f60e01",
        "IpProtocol": "tcp",
        "FromPort": 443,
        "ToPort": 443,
        "SourceSecurityGroupId": f"<{function_sg}.GroupId>",
        "Description": "HTTPS from the rotation function",
    } in ingress


def test_no_endpoint_means_no_endpoint_variable(minimal: Synth) -> None:
    env = _rotation_env(minimal)
    assert not any(k.startswith("AWS_ENDPOINT_URL") for k in env)


# -- 2. a deploy never regenerates a created password --------------------------------------------


def _generators(synth_: Synth) -> dict[str, str]:
    raw = synth_.raw("SecretsRotation")
    return {
        lid: dumps(r["Properties"]["GenerateSecretString"])
        for lid, r in resources(raw, "AWS::SecretsManager::Secret").items()
    }


def test_password_generation_ignores_every_changeable_field(example: Synth, tmp_path: Path) -> None:
    raw = json.loads(EXAMPLE.read_text())
    for secret in raw["rotation"]["secrets"]:
        if "create" in secret:
            secret["create"].update(host="moved.cluster-zyx.eu-west-1.rds.amazonaws.com", port=6543)
            secret["create"]["dbname"] = "renamed"
    raw["rotation"]["function"]["passwordPolicy"] = {"length": 40, "excludeCharacters": "xyz"}
    changed = synth(parse_config(raw, source="changed", base_dir=EXAMPLE.parent), tmp_path)
    before, after = _generators(example), _generators(changed)
    assert len(before) == 3
    assert before == after  # byte-identical: CloudFormation generates no new password
    # The new fields still reach the secrets, through the fields custom resource.
    fields = [
        render(r["Properties"]["Fields"])
        for r in resources(changed.raw("SecretsRotation"), "Custom::SecretConnectionFields").values()
    ]
    assert len(fields) == 3
    for f in fields:
        assert '"host":"moved.cluster-zyx.eu-west-1.rds.amazonaws.com"' in f
        assert '"port":6543' in f and '"dbname":"renamed"' in f


def test_rotation_waits_for_the_connection_fields(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    fields = {
        render(r["Properties"]["SecretId"]): lid
        for lid, r in resources(raw, "Custom::SecretConnectionFields").items()
    }
    master = f"<{logical_id(raw, 'AWS::SecretsManager::Secret', 'PaymentsMasterSecret')}>"
    for schedule in resources(raw, "AWS::SecretsManager::RotationSchedule").values():
        secret = render(schedule["Properties"]["SecretId"])
        if secret in fields:
            assert fields[secret] in schedule["DependsOn"]
        if secret.startswith("<PaymentsApp"):
            assert fields[master] in schedule["DependsOn"]  # the master's host is needed too


def test_fields_function_may_touch_only_the_created_secrets(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    created = sorted(f"<{lid}>" for lid in resources(raw, "AWS::SecretsManager::Secret"))
    by_sid = {s.get("Sid"): s for s in statements(raw, "ConnectionFieldsPolicy")}
    assert by_sid["WriteConnectionFields"]["Action"] == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ]
    assert sorted(by_sid["WriteConnectionFields"]["Resource"]) == created
    assert by_sid["ReadOwnStackStatus"]["Action"] == "cloudformation:DescribeStacks"
    assert by_sid["ReadOwnStackStatus"]["Resource"] == "<AWS::StackId>"
    kms = [s for s in statements(raw, "ConnectionFieldsRole") if s["Action"][0].startswith("kms:")]
    assert kms and all("kms:EncryptionContext:SecretARN" in s["Condition"]["StringEquals"] for s in kms)


# -- 3. created secrets outlive the stack ---------------------------------------------------------


def test_created_secrets_are_retained(example: Synth) -> None:
    secrets = resources(example.raw("SecretsRotation"), "AWS::SecretsManager::Secret")
    assert len(secrets) == 3  # payments-master (a master secret), payments-app, reports-app
    for secret in secrets.values():
        assert secret["DeletionPolicy"] == "RetainExceptOnCreate"  # kept, unless its first deploy fails
        assert secret["UpdateReplacePolicy"] == "Retain"


# -- 4. rotation failures: a signal without a trail, and the optional AWS Config check ------------


def test_rotation_alerts_do_not_need_a_trail(example: Synth, variant: Synth) -> None:
    for synth_ in (example, variant):
        raw = synth_.raw("SecretsRotation")
        fn = logical_id(raw, "AWS::Lambda::Function", "RotationFunction")
        alarms = [a["Properties"] for a in resources(raw, "AWS::CloudWatch::Alarm").values()]
        # (the failed-rotations alarm on the function's own metrics: tests/infra/test_dashboard.py)
        alarms = [a for a in alarms if a["Namespace"] == "AWS/Lambda"]
        assert [a["Dimensions"] for a in alarms] == [[{"Name": "FunctionName", "Value": {"Ref": fn}}]]
    example.template("SecretsRotation").resource_count_is("AWS::Config::ConfigRule", 0)
    raw = variant.raw("SecretsRotation")
    (rule,) = resources(raw, "AWS::Config::ConfigRule").values()
    assert rule["Properties"]["Source"] == {
        "Owner": "AWS",
        "SourceIdentifier": "SECRETSMANAGER_SCHEDULED_ROTATION_SUCCESS_CHECK",
    }
    assert rule["Properties"]["Scope"] == {"ComplianceResourceTypes": ["AWS::SecretsManager::Secret"]}
    (compliance,) = [
        r["Properties"]
        for r in resources(raw, "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"].get("source") == ["aws.config"]
    ]
    detail = compliance["EventPattern"]["detail"]
    assert detail["newEvaluationResult"] == {"complianceType": ["NON_COMPLIANT"]}
    assert [t["Arn"] for t in compliance["Targets"]] == [TOPIC]


# -- 8. alerts into an existing topic ---------------------------------------------------------------


def test_alerts_into_an_existing_topic(variant: Synth) -> None:
    for prefix in ("SecretsRotation", "ParameterReplication"):
        raw = variant.raw(prefix)
        assert not resources(raw, "AWS::SNS::Topic") and not resources(raw, "AWS::SNS::Subscription")
        alarms = resources(raw, "AWS::CloudWatch::Alarm").values()
        assert alarms and all(a["Properties"]["AlarmActions"] == [TOPIC] for a in alarms)
        for rule in resources(raw, "AWS::Events::Rule").values():
            if "EventPattern" in rule["Properties"] and rule["Properties"]["EventPattern"]["source"] != [
                "aws.ssm"
            ]:
                assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [TOPIC]


# -- replication: two-way deletes, native events ----------------------------------------------------


def test_two_replicators_both_ways_with_deletes_fail_synthesis() -> None:
    app = cdk.App(context=NO_BUNDLING)
    for region, target, delete in (("eu-west-1", "eu-central-1", True), ("eu-central-1", "eu-west-1", False)):
        stack = cdk.Stack(app, f"R-{region}", env=cdk.Environment(account="111122223333", region=region))
        ParameterReplicator(
            stack,
            "Replicator",
            target_regions=[target],
            include_paths=["/app/"],
            delete_unmanaged_replicas=delete,
        )
    with pytest.raises(Exception, match="replicate the same paths both ways"):
        app.synth()


def test_two_replicators_both_ways_without_deletes_synthesize() -> None:
    app = cdk.App(context=NO_BUNDLING)
    for region, target in (("eu-west-1", "eu-central-1"), ("eu-central-1", "eu-west-1")):
        stack = cdk.Stack(app, f"R-{region}", env=cdk.Environment(account="111122223333", region=region))
        ParameterReplicator(stack, "Replicator", target_regions=[target], include_paths=["/app/"])
    app.synth()


def test_native_events_default_to_an_hourly_reconcile() -> None:
    raw = minimal_raw("rds-ca.pem")
    del raw["replication"]["reconcileSchedule"]
    raw["rotation"]["function"].pop("caBundle")
    config = parse_config(raw, source="minimal")
    assert config.replication is not None and config.replication.reconcile_schedule == "rate(1 hour)"
    app = cdk.App(context=NO_BUNDLING)
    stack = cdk.Stack(app, "S", env=cdk.Environment(account="111122223333", region="us-east-2"))
    replicator = ParameterReplicator(
        stack, "R", target_regions=["us-west-2"], event_source=EventSource.PARAMETER_STORE
    )
    rule = replicator.reconcile_rule.node.default_child
    assert stack.resolve(rule.schedule_expression) == "rate(1 hour)"  # type: ignore[union-attr]


# -- rotation function: RDS read access and the lock timeout -----------------------------------------


def test_rds_describe_is_read_only_and_regional(example: Synth, variant: Synth) -> None:
    raw = example.raw("SecretsRotation")
    assert statements(raw, "RotationDescribeDatabasesPolicy") == [
        {
            "Action": ["rds:DescribeDBClusters", "rds:DescribeDBInstances", "rds:DescribeDBClusterEndpoints"],
            "Effect": "Allow",
            "Resource": [
                "arn:aws:rds:eu-west-1:123456789012:cluster:*",
                "arn:aws:rds:eu-west-1:123456789012:db:*",
                "arn:aws:rds:eu-west-1:123456789012:cluster-endpoint:*",
            ],
            "Sid": "DescribeDatabases",
        }
    ]
    # One list: the actions the handler's RDS check names are the ones granted.
    from rotation_handlers.rds_endpoints import RDS_ACTIONS

    assert statements(raw, "RotationDescribeDatabasesPolicy")[0]["Action"] == list(RDS_ACTIONS)


def test_database_timeouts_reach_the_handler(
    example: Synth, variant: Synth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeout variables the stack sets are the ones the rotation handler reads."""
    from rotation_handlers.engines import users

    env = _rotation_env(variant)
    assert (env["DB_LOCK_TIMEOUT"], env["DB_STATEMENT_TIMEOUT"]) == ("10", "30")
    assert not {k for k in env if k.startswith("DB_") and k != "DB_CA_BUNDLE"} - {
        "DB_LOCK_TIMEOUT",
        "DB_STATEMENT_TIMEOUT",
    }
    for name in ("DB_LOCK_TIMEOUT", "DB_STATEMENT_TIMEOUT"):
        monkeypatch.setenv(name, env[name])
    assert (users.lock_timeout(), users.statement_timeout()) == (10, 30)
    # Unset (the example): the function's defaults.
    assert not {"DB_LOCK_TIMEOUT", "DB_STATEMENT_TIMEOUT"} & set(_rotation_env(example))


def test_the_handlers_client_follows_the_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variable the stack sets is the one boto3 (and so the rotation handler's client) reads."""
    from infra.rotation import SECRETS_MANAGER_ENDPOINT_ENV
    from rotation_handlers import secrets_manager

    monkeypatch.setenv(SECRETS_MANAGER_ENDPOINT_ENV, f"https://{VPCE_DNS}")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    secrets_manager.reset_clients()
    try:
        assert secrets_manager.client().meta.endpoint_url == f"https://{VPCE_DNS}"
    finally:
        secrets_manager.reset_clients()
