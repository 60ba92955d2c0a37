"""Template tests of the rotation stack (example configuration and a no-VPC variant)."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from rotation_handlers.passwords import default_exclude_characters
from tests.infra.conftest import Synth, dumps, logical_id, render, resources, statements

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ORDERS_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/orders/app-AbCdEf"
ORDERS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VIA_SM = f"secretsmanager.{REGION}.amazonaws.com"


def _ids(raw: dict) -> dict[str, str]:
    return {
        "fn": logical_id(raw, "AWS::Lambda::Function", "RotationFunction"),
        "role": logical_id(raw, "AWS::IAM::Role", "RotationRole"),
        "sg": logical_id(raw, "AWS::EC2::SecurityGroup", "RotationSecurityGroup"),
        "log": logical_id(raw, "AWS::Logs::LogGroup", "RotationLogGroup"),
        "master": logical_id(raw, "AWS::SecretsManager::Secret", "PaymentsMasterSecret"),
        "app": logical_id(raw, "AWS::SecretsManager::Secret", "PaymentsAppSecret"),
        "reports": logical_id(raw, "AWS::SecretsManager::Secret", "ReportsAppSecret"),
        "payments_key": logical_id(raw, "AWS::KMS::Key", "PaymentsKey"),
        "default_key": logical_id(raw, "AWS::KMS::Key", "DefaultKey"),
    }


def test_function_runtime_memory_timeout_and_environment(example: Synth) -> None:
    t = example.template("SecretsRotation")
    raw = example.raw("SecretsRotation")
    ids = _ids(raw)
    t.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "rotation_handlers.rotate.handler",
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "MemorySize": 256,
            "Timeout": 90,  # above the handler's worst case: ~3 logins x 5 s + Secrets Manager calls
            "LoggingConfig": {"LogFormat": "JSON", "LogGroup": {"Ref": ids["log"]}},
            "Environment": {
                "Variables": {
                    "PASSWORD_LENGTH": "32",  # EXCLUDE_CHARACTERS unset: the per-engine default
                    "EXCLUDE_NUMBERS": "false",
                    "EXCLUDE_PUNCTUATION": "false",
                    "EXCLUDE_UPPERCASE": "false",
                    "EXCLUDE_LOWERCASE": "false",
                    "REQUIRE_EACH_INCLUDED_TYPE": "true",
                }
            },
            "VpcConfig": {
                "SubnetIds": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
                "SecurityGroupIds": [{"Fn::GetAtt": [ids["sg"], "GroupId"]}],
            },
        },
    )
    # The rotation function, and the one that writes created secrets' connection fields.
    t.resource_count_is("AWS::Lambda::Function", 2)
    t.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 90})
    fn = raw["Resources"][ids["fn"]]["Properties"]
    assert "DB_CA_BUNDLE" not in fn["Environment"]["Variables"]
    assert "DB_LOCK_TIMEOUT" not in fn["Environment"]["Variables"]  # the function's default
    assert "ROTATION_STRATEGY" not in fn["Environment"]["Variables"]  # the secret's masterarn decides


def test_role_has_no_managed_policies(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    role = raw["Resources"][_ids(raw)["role"]]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]


def test_base_policy_logs_and_vpc_statements(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    ids = _ids(raw)
    eni = f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*"
    assert statements(raw, "RotationBasePolicy") == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": f"<{ids['log']}.Arn>",
            "Sid": "WriteOwnLogs",
        },
        {
            "Action": "ec2:CreateNetworkInterface",
            "Effect": "Allow",
            "Resource": [
                eni,
                f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0a1b2c3d4e5f60001",
                f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0a1b2c3d4e5f60002",
                f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/<{ids['sg']}.GroupId>",
            ],
            "Sid": "CreateEniInOwnSubnetsAndGroups",
        },
        {
            "Action": [
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Effect": "Allow",
            "Resource": eni,
            "Sid": "ManageEnis",
        },
        {
            # "*": ec2:DescribeNetworkInterfaces / DescribeSubnets have no resource-level permissions.
            "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            "Effect": "Allow",
            "Resource": "*",
            "Sid": "DescribeEnis",
        },
    ]


def test_secret_statements_are_scoped_to_rotated_secrets_and_keys(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    ids = _ids(raw)
    master, app, reports = f"<{ids['master']}>", f"<{ids['app']}>", f"<{ids['reports']}>"
    assert statements(raw, "RotationRoleDefaultPolicy") == [
        {
            "Action": [
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            "Effect": "Allow",
            "Resource": [ORDERS_ARN, master, app, reports],
            "Sid": "RotateSecrets",
        },
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Condition": {
                "StringEquals": {"kms:EncryptionContext:SecretARN": [ORDERS_ARN], "kms:ViaService": VIA_SM}
            },
            "Effect": "Allow",
            "Resource": ORDERS_KEY,
        },
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Condition": {
                "StringEquals": {"kms:EncryptionContext:SecretARN": [master, app], "kms:ViaService": VIA_SM}
            },
            "Effect": "Allow",
            "Resource": f"<{ids['payments_key']}.Arn>",
        },
        {
            "Action": "secretsmanager:GetSecretValue",
            "Effect": "Allow",
            "Resource": master,
            "Sid": "ReadMasterSecrets",
        },
        {
            "Action": "kms:Decrypt",
            "Condition": {
                "StringEquals": {"kms:EncryptionContext:SecretARN": [master], "kms:ViaService": VIA_SM}
            },
            "Effect": "Allow",
            "Resource": f"<{ids['payments_key']}.Arn>",
        },
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Condition": {
                "StringEquals": {"kms:EncryptionContext:SecretARN": [reports], "kms:ViaService": VIA_SM}
            },
            "Effect": "Allow",
            "Resource": f"<{ids['default_key']}.Arn>",
        },
    ]


def test_no_get_random_password_anywhere(example: Synth, minimal: Synth) -> None:
    for synth in (example, minimal):
        for raw in synth.templates.values():
            assert "GetRandomPassword" not in dumps(raw)


def test_invoke_permission_for_secrets_manager_with_source_account(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    perms = resources(raw, "AWS::Lambda::Permission")
    assert [render(p["Properties"]) for p in perms.values()] == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": f"<{_ids(raw)['fn']}.Arn>",
            "Principal": "secretsmanager.amazonaws.com",
            "SourceAccount": ACCOUNT,
        }
    ]


def test_rotation_schedules(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    ids = _ids(raw)
    perm = next(iter(resources(raw, "AWS::Lambda::Permission")))
    schedules = {
        render(s["Properties"]["SecretId"]): s
        for s in resources(raw, "AWS::SecretsManager::RotationSchedule").values()
    }
    expected = {
        ORDERS_ARN: {"ScheduleExpression": "rate(30 days)"},
        f"<{ids['master']}>": {"ScheduleExpression": "cron(0 3 ? * SUN *)", "Duration": "2h"},
        f"<{ids['app']}>": {"ScheduleExpression": "cron(0 4 ? * MON-FRI *)", "Duration": "3h"},
        f"<{ids['reports']}>": {"ScheduleExpression": "rate(12 hours)"},
    }
    assert set(schedules) == set(expected)
    for secret, rules in expected.items():
        props = schedules[secret]["Properties"]
        assert props["RotationRules"] == rules
        assert props["RotateImmediatelyOnUpdate"] is False  # no rotation on every deploy
        assert render(props["RotationLambdaARN"]) == f"<{ids['fn']}.Arn>"
        assert "HostedRotationLambda" not in props
        assert perm in schedules[secret]["DependsOn"]  # the invoke permission exists first


def test_rotate_immediately_only_when_asked(minimal: Synth) -> None:
    minimal.template("SecretsRotation").has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {"RotateImmediatelyOnUpdate": True, "RotationRules": {"ScheduleExpression": "rate(7 days)"}},
    )


def test_keys_have_rotation_and_one_per_group(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    keys = resources(raw, "AWS::KMS::Key")
    secret_keys = {k: v for k, v in keys.items() if not k.startswith("Alerts")}
    assert sorted(secret_keys) == sorted([_ids(raw)["payments_key"], _ids(raw)["default_key"]])
    for key in keys.values():
        assert key["Properties"]["EnableKeyRotation"] is True


def test_created_secrets_generate_passwords_and_replicate(example: Synth) -> None:
    raw = example.raw("SecretsRotation")
    ids = _ids(raw)
    app = raw["Resources"][ids["app"]]["Properties"]
    assert app["Name"] == "prod/payments/app"
    assert render(app["KmsKeyId"]) == f"<{ids['payments_key']}.Arn>"
    assert app["ReplicaRegions"] == [{"Region": "eu-central-1"}]
    gen = app["GenerateSecretString"]
    # Only the password is generated; the connection fields come from the fields custom resource.
    assert gen == {
        "GenerateStringKey": "password",
        "SecretStringTemplate": "{}",
        "PasswordLength": 32,
        "ExcludeCharacters": "/@\"'\\`$;&|<>(){}[]!?*#%=,~+ :",
    }
    # The literal list covers what the rotation function leaves out for every engine.
    for engine in ("postgres", "mysql", "mariadb"):
        assert set(default_exclude_characters(engine)) <= set(gen["ExcludeCharacters"])
    assert "SecretString" not in app  # the password is generated by Secrets Manager, never in the template
    fields = {
        render(r["Properties"]["SecretId"]): r["Properties"]
        for r in resources(raw, "Custom::SecretConnectionFields").values()
    }
    app_fields = fields[f"<{ids['app']}>"]
    assert json.loads(render(app_fields["Fields"]).replace(f"<{ids['master']}>", "MASTER_ARN")) == {
        "engine": "postgres",
        "host": "payments.cluster-abcdefghijkl.eu-west-1.rds.amazonaws.com",
        "port": 5432,
        "dbname": "payments",
        "masterarn": "MASTER_ARN",
    }
    assert json.loads(app_fields["SeedFields"]) == {"username": "payments_app"}
    assert json.loads(app_fields["RemoveFields"]) == []
    reports = fields[f"<{ids['reports']}>"]
    assert json.loads(reports["Fields"])["port"] == 3306
    assert json.loads(reports["RemoveFields"]) == ["dbname", "masterarn"]
    assert render(raw["Resources"][ids["reports"]]["Properties"]["KmsKeyId"]) == f"<{ids['default_key']}.Arn>"


def test_security_groups_endpoint_and_database_ingress(example: Synth) -> None:
    t = example.template("SecretsRotation")
    raw = example.raw("SecretsRotation")
    sg = _ids(raw)["sg"]
    t.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Interface",
            # Off: every other workload of the VPC keeps resolving Secrets Manager's public name.
            "PrivateDnsEnabled": False,
            "ServiceName": "com.amazonaws.eu-west-1.secretsmanager",
            "SubnetIds": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
            "VpcId": "vpc-0a1b2c3d4e5f60718",
        },
    )
    ingress = [render(r["Properties"]) for r in resources(raw, "AWS::EC2::SecurityGroupIngress").values()]
    from_fn = f"<{sg}.GroupId>"
    assert {(i["GroupId"], i["FromPort"], i["ToPort"], i["SourceSecurityGroupId"]) for i in ingress} == {
        ("sg-0a1b2c3d4e5f60d01", 5432, 5432, from_fn),
        ("sg-0a1b2c3d4e5f60d02", 3306, 3306, from_fn),
        (
            f"<{logical_id(raw, 'AWS::EC2::SecurityGroup', 'RotationEndpointSecurityGroup')}.GroupId>",
            443,
            443,
            from_fn,
        ),
    }
    t.has_output("RotationSecurityGroupId", {"Value": {"Fn::GetAtt": [sg, "GroupId"]}})


def test_no_vpc_variant_with_ca_bundle(minimal: Synth) -> None:
    t = minimal.template("SecretsRotation")
    t.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Timeout": 120,
            "VpcConfig": Match.absent(),
            "Environment": {
                "Variables": Match.object_like({"DB_CA_BUNDLE": "/var/task/certs/db-ca-bundle.pem"})
            },
        },
    )
    t.resource_count_is("AWS::EC2::SecurityGroup", 0)
    t.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    t.resource_count_is("AWS::KMS::Key", 1)  # the alert topic's; the secret uses aws/secretsmanager
    t.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
    raw = minimal.raw("SecretsRotation")
    assert statements(raw, "RotationBasePolicy") == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": f"<{logical_id(raw, 'AWS::Logs::LogGroup', 'RotationLogGroup')}.Arn>",
            "Sid": "WriteOwnLogs",
        }
    ]
    assert [s.get("Sid") for s in statements(raw, "RotationRoleDefaultPolicy")] == ["RotateSecrets"]
