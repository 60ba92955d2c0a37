"""Template tests of the replication stack and the alerting shared by both stacks."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from tests.infra.conftest import Synth, logical_id, render, resources, statements

ACCOUNT = "123456789012"
SRC = "eu-west-1"
US_EAST_1_KEY = "arn:aws:kms:us-east-1:123456789012:key/0987dcba-09fe-87dc-65ba-ab0987654321"
PATHS = ("/app", "/app/*", "/shared", "/shared/*")


def _param_arns(region: str, account: str = ACCOUNT, paths: tuple[str, ...] = PATHS) -> list[str]:
    return [f"arn:aws:ssm:{region}:{account}:parameter{p}" for p in paths]


def test_functions_and_environment(example: Synth) -> None:
    raw = example.raw("ParameterReplication")
    role = logical_id(raw, "AWS::IAM::Role", "ReplicatorRole")
    fns = {
        render(f["Properties"]["Handler"]): f["Properties"]
        for f in resources(raw, "AWS::Lambda::Function").values()
    }
    assert set(fns) == {
        "rotation_handlers.replicate.handler",
        "rotation_handlers.replicate.reconcile_handler",
    }
    for props in fns.values():
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert render(props["Role"]) == f"<{role}.Arn>"
        assert render(props["Environment"]["Variables"]) == {
            "REPLICA_REGIONS": "eu-central-1,us-east-1",
            "REPLICATE_PATHS": "/app/,/shared/",
            "EXCLUDE_PATHS": "/app/local/",
            "REPLICA_KMS_KEYS": json.dumps(
                {
                    "eu-central-1": "alias/ssm-replicas",
                    "us-east-1": US_EAST_1_KEY,
                },
                separators=(",", ":"),
            ),
            "DELETE_UNMANAGED_REPLICAS": "false",
            "REPLICATOR_ROLE_ARN": f"<{role}.Arn>",
            "COPY_EC2_IMAGE_PARAMETERS": "false",
            "ADOPT_UNMANAGED_TARGETS": "false",
            "RECONCILE_STATE_PARAMETER": "/parameter-replicator/example/reconcile-state",  # per stage
        }
    assert fns["rotation_handlers.replicate.handler"]["Timeout"] == 120
    assert fns["rotation_handlers.replicate.reconcile_handler"]["Timeout"] == 900


def test_adopting_unmanaged_targets_is_a_setting_off_by_default(example: Synth, variant: Synth) -> None:
    """``adoptUnmanagedTargets`` sets ADOPT_UNMANAGED_TARGETS on both replication functions."""
    for synthed, expected in ((example, "false"), (variant, "true")):
        fns = resources(synthed.raw("ParameterReplication"), "AWS::Lambda::Function").values()
        assert [f["Properties"]["Environment"]["Variables"]["ADOPT_UNMANAGED_TARGETS"] for f in fns] == [
            expected,
            expected,
        ]


def test_replication_iam_is_limited_to_paths_and_keys(example: Synth) -> None:
    raw = example.raw("ParameterReplication")
    logs = [
        f"<{logical_id(raw, 'AWS::Logs::LogGroup', p)}.Arn>"
        for p in ("ReplicatorLogGroup", "ReplicatorReconcile")
    ]
    write = [
        "ssm:PutParameter",
        "ssm:DeleteParameter",
        "ssm:LabelParameterVersion",
        "ssm:UnlabelParameterVersion",
        "ssm:AddTagsToResource",
        "ssm:RemoveTagsFromResource",
        "ssm:GetParameterHistory",
        "ssm:ListTagsForResource",
        "ssm:GetParameters",
    ]
    assert statements(raw, "ReplicatorPolicy") == [
        {
            "Action": ["ssm:GetParameterHistory", "ssm:ListTagsForResource", "ssm:GetParameters"],
            "Effect": "Allow",
            "Resource": _param_arns(SRC),
            "Sid": "ReadSourceParameters",
        },
        # "*": ssm:DescribeParameters and tag:GetResources have no resource-level permissions.
        # ... limited to the stack's regions (aws:RequestedRegion).
        {
            "Action": "ssm:DescribeParameters",
            "Condition": {"StringEquals": {"aws:RequestedRegion": [SRC, "eu-central-1", "us-east-1"]}},
            "Effect": "Allow",
            "Resource": "*",
            "Sid": "DescribeParameters",
        },
        {
            "Action": ["ssm:GetParameter", "ssm:PutParameter"],
            "Effect": "Allow",
            "Resource": f"arn:aws:ssm:{SRC}:{ACCOUNT}:parameter/parameter-replicator/example/reconcile-state",
            "Sid": "ReconcileState",
        },
        {
            "Action": "tag:GetResources",
            "Condition": {"StringEquals": {"aws:RequestedRegion": [SRC, "eu-central-1", "us-east-1"]}},
            "Effect": "Allow",
            "Resource": "*",
            "Sid": "ReadTagsInBulk",
        },
        {
            "Action": write,
            "Effect": "Allow",
            "Resource": _param_arns("eu-central-1"),
            "Sid": "WriteReplicasEuCentral1",
        },
        {
            "Action": write,
            "Effect": "Allow",
            "Resource": _param_arns("us-east-1"),
            "Sid": "WriteReplicasUsEast1",
        },
        {
            "Action": "kms:Decrypt",
            "Condition": {
                "StringEquals": {"kms:ViaService": "ssm.eu-west-1.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": _param_arns(SRC)},
            },
            "Effect": "Allow",
            "Resource": f"arn:aws:kms:{SRC}:{ACCOUNT}:key/*",
            "Sid": "DecryptSourceSecureStrings",
        },
        {
            "Action": "kms:DescribeKey",
            "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/ssm-replicas"]}},
            "Effect": "Allow",
            "Resource": f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/*",
            "Sid": "DescribeReplicaKeyEuCentral1",
        },
        {
            "Action": ["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"],
            "Condition": {
                "ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/ssm-replicas"]},
                "StringEquals": {"kms:ViaService": "ssm.eu-central-1.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": _param_arns("eu-central-1")},
            },
            "Effect": "Allow",
            "Resource": f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/*",
            "Sid": "UseReplicaKeyEuCentral1",
        },
        {
            "Action": "kms:DescribeKey",
            "Effect": "Allow",
            "Resource": "arn:aws:kms:us-east-1:123456789012:key/0987dcba-09fe-87dc-65ba-ab0987654321",
            "Sid": "DescribeReplicaKeyUsEast1",
        },
        {
            "Action": ["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"],
            "Condition": {
                "StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": _param_arns("us-east-1")},
            },
            "Effect": "Allow",
            "Resource": "arn:aws:kms:us-east-1:123456789012:key/0987dcba-09fe-87dc-65ba-ab0987654321",
            "Sid": "UseReplicaKeyUsEast1",
        },
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": logs,
            "Sid": "WriteOwnLogs",
        },
    ]
    dlq = logical_id(raw, "AWS::SQS::Queue", "ReplicatorDeadLetterQueue")
    assert statements(raw, "ReplicatorRoleDefaultPolicy") == [
        {
            "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
            "Effect": "Allow",
            "Resource": f"<{dlq}.Arn>",
        }
    ]


def test_root_path_and_named_source_keys(minimal: Synth) -> None:
    raw = minimal.raw("ParameterReplication")
    stmts = {s["Sid"]: s for s in statements(raw, "ReplicatorPolicy")}
    assert stmts["ReadSourceParameters"]["Resource"] == _param_arns("us-east-2", "111122223333")
    assert stmts["DecryptSourceSecureStrings"]["Resource"] == (
        "arn:aws:kms:us-east-2:111122223333:key/11111111-2222-3333-4444-555555555555"
    )
    # "*": ec2:DescribeImages has no resource-level permissions (SSM checks AMI parameters with it).
    assert stmts["ValidateAmiParameters"] == {
        "Action": "ec2:DescribeImages",
        "Effect": "Allow",
        "Resource": "*",
        "Sid": "ValidateAmiParameters",
    }
    assert not any(s.startswith("UseReplicaKey") for s in stmts)  # no target key: aws/ssm


def test_change_rule_retry_policy_and_dead_letter_queue(example: Synth) -> None:
    raw = example.raw("ParameterReplication")
    fn = logical_id(raw, "AWS::Lambda::Function", "ReplicatorFunction")
    dlq = logical_id(raw, "AWS::SQS::Queue", "ReplicatorDeadLetterQueue")
    rule = raw["Resources"][logical_id(raw, "AWS::Events::Rule", "ReplicatorChangeRule")]["Properties"]
    assert render(rule["Targets"]) == [
        {
            "Arn": f"<{fn}.Arn>",
            "DeadLetterConfig": {"Arn": f"<{dlq}.Arn>"},
            "Id": "Target0",
            "RetryPolicy": {"MaximumEventAgeInSeconds": 7200, "MaximumRetryAttempts": 8},
        }
    ]
    queue = raw["Resources"][dlq]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 86400
    t = example.template("ParameterReplication")
    # EventBridge may send to the queue, only for this stack's rules.
    t.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sqs:SendMessage",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Condition": {"ArnEquals": Match.any_value()},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_async_on_failure_destination(example: Synth) -> None:
    raw = example.raw("ParameterReplication")
    dlq = logical_id(raw, "AWS::SQS::Queue", "ReplicatorDeadLetterQueue")
    configs = [render(c["Properties"]) for c in resources(raw, "AWS::Lambda::EventInvokeConfig").values()]
    assert len(configs) == 2
    for c in configs:
        assert c["DestinationConfig"] == {"OnFailure": {"Destination": f"<{dlq}.Arn>"}}
    assert sorted(c["MaximumRetryAttempts"] for c in configs) == [0, 2]


def test_reconcile_schedule(example: Synth, minimal: Synth) -> None:
    raw = example.raw("ParameterReplication")
    fn = logical_id(raw, "AWS::Lambda::Function", "ReplicatorReconcileFunction")
    rule = raw["Resources"][logical_id(raw, "AWS::Events::Rule", "ReplicatorReconcileSchedule")]["Properties"]
    assert rule["ScheduleExpression"] == "rate(6 hours)"
    (target,) = render(rule["Targets"])
    assert target["Arn"] == f"<{fn}.Arn>"
    assert json.loads(target["Input"]) == {"dryRun": False}
    minimal.template("ParameterReplication").has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(1 day)"}
    )


def test_trail_only_when_asked(example: Synth, variant: Synth, minimal: Synth) -> None:
    # Default: the account's existing trail (no paid second copy of every write event).
    example.template("ParameterReplication").resource_count_is("AWS::CloudTrail::Trail", 0)
    example.template("ParameterReplication").resource_count_is("AWS::S3::Bucket", 0)
    minimal.template("ParameterReplication").resource_count_is("AWS::CloudTrail::Trail", 0)
    raw = variant.raw("ParameterReplication")
    (trail,) = resources(raw, "AWS::CloudTrail::Trail").values()
    (bucket_id,) = resources(raw, "AWS::S3::Bucket")
    key_id = logical_id(raw, "AWS::KMS::Key", "ReplicatorTrailKey")
    name = "ParameterReplication-example-eu-west-1-ssm-writes"
    trail_arn = f"arn:aws:cloudtrail:eu-west-1:123456789012:trail/{name}"
    props = trail["Properties"]
    assert props["TrailName"] == name
    assert props["IsMultiRegionTrail"] is False and props["IncludeGlobalServiceEvents"] is False
    assert props["EnableLogFileValidation"] is True
    assert props["EventSelectors"] == [{"IncludeManagementEvents": True, "ReadWriteType": "WriteOnly"}]
    assert render(props["KMSKeyId"]) == f"<{key_id}.Arn>"
    bucket = raw["Resources"][bucket_id]["Properties"]
    assert render(bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]) == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {"KMSMasterKeyID": f"<{key_id}.Arn>", "SSEAlgorithm": "aws:kms"},
        }
    ]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    # Every CloudTrail grant (bucket and key) is for this trail only (confused-deputy protection).
    (policy,) = resources(raw, "AWS::S3::BucketPolicy").values()
    key_policy = raw["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    granted = [
        render(st)
        for st in [*policy["Properties"]["PolicyDocument"]["Statement"], *key_policy]
        if st.get("Principal") == {"Service": "cloudtrail.amazonaws.com"}
    ]
    assert {g["Action"] for g in granted} == {
        "s3:GetBucketAcl",
        "s3:PutObject",
        "kms:GenerateDataKey*",
        "kms:DescribeKey",
    }
    for g in granted:
        assert g["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn, g


def test_bounded_fan_out(example: Synth, minimal: Synth) -> None:
    raw = example.raw("ParameterReplication")
    fns = {
        f["Properties"]["Handler"]: f["Properties"] for f in resources(raw, "AWS::Lambda::Function").values()
    }
    assert fns["rotation_handlers.replicate.handler"]["ReservedConcurrentExecutions"] == 5
    assert fns["rotation_handlers.replicate.reconcile_handler"]["ReservedConcurrentExecutions"] == 1


def test_alerts_topic_rule_and_alarms(example: Synth) -> None:
    for prefix, alarmed in (
        ("SecretsRotation", [("AWS/Lambda", "Errors")]),
        (
            "ParameterReplication",
            [
                ("AWS/Lambda", "Errors"),
                ("AWS/Lambda", "Errors"),
                ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            ],
        ),
    ):
        raw = example.raw(prefix)
        t = example.template(prefix)
        topic = logical_id(raw, "AWS::SNS::Topic", "AlertsTopic")
        key = logical_id(raw, "AWS::KMS::Key", "AlertsTopicKey")
        t.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]}})
        t.has_resource_properties(
            "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "platform-alerts@example.com"}
        )
        alarms = [a["Properties"] for a in resources(raw, "AWS::CloudWatch::Alarm").values()]
        # The alarms on the functions' own metrics: tests/infra/test_dashboard.py.
        alarms = [a for a in alarms if a["Namespace"] != "SecretsRotation"]
        assert sorted((a["Namespace"], a["MetricName"]) for a in alarms) == sorted(alarmed)
        for a in alarms:
            assert a["Threshold"] == 1
            assert a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            assert a["Period"] == 300
            assert a["TreatMissingData"] == "notBreaching"
            assert a["AlarmActions"] == [{"Ref": topic}]
        # The topic key lets EventBridge and CloudWatch publish (they cannot use aws/sns).
        key_stmts = raw["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]
        services = {s["Principal"].get("Service") for s in key_stmts if isinstance(s["Principal"], dict)}
        assert {"events.amazonaws.com", "cloudwatch.amazonaws.com"} <= services
    raw = example.raw("SecretsRotation")
    rule = raw["Resources"][logical_id(raw, "AWS::Events::Rule", "AlertsRotationFailedRule")]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.secretsmanager"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {
            "eventSource": ["secretsmanager.amazonaws.com"],
            "eventName": ["RotationFailed", "RotationAbandoned"],
        },
    }
    assert render(rule["Targets"][0]["Arn"]) == f"<{logical_id(raw, 'AWS::SNS::Topic', 'AlertsTopic')}>"


def test_tags(example: Synth) -> None:
    example.template("SecretsRotation").has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Tags": Match.array_with(
                [{"Key": "owner", "Value": "platform-team"}, {"Key": "stage", "Value": "example"}]
            )
        },
    )
