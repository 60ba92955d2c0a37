"""The emulated AWS of ``--keep`` used by a real client over HTTP (boto3), as an operator would.

RotateSecret must run the real handler whether or not the call names the function (AWS uses the
configured one), and a failing rotation must answer as AWS does: the call succeeds, AWSPENDING stays
behind, and the error is in the function's CloudWatch Logs log group.
"""

from __future__ import annotations

import json

import pytest

from tests.rotation.conftest import create_pg_user, new_password, pg_login, unique_user

pytestmark = pytest.mark.db
LOG_GROUP = "/aws/lambda/rotation-fn"  # the function devtools.aws registers


def _stages(sm, name: str) -> dict[str, list[str]]:
    return {v: s for v, s in sm.describe_secret(SecretId=name)["VersionIdsToStages"].items() if s}


def test_rotate_secret_without_function_arn_runs_the_configured_handler(emulated, pg_server) -> None:
    sm = emulated.client("secretsmanager")
    user, password = unique_user(), new_password()
    create_pg_user(pg_server, user, password)
    name = f"emulated/{user}"
    sm.create_secret(Name=name, SecretString=json.dumps(pg_server.secret(user, password)))
    sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN=emulated.aws.function_arn,
        RotationRules={"AutomaticallyAfterDays": 30},
    )
    # What `aws secretsmanager rotate-secret --secret-id NAME` sends: no function ARN.
    token = sm.rotate_secret(SecretId=name)["VersionId"]
    assert _stages(sm, name)[token] == ["AWSCURRENT"]
    current = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
    assert current["password"] != password
    assert pg_login(pg_server, user, current["password"])
    assert sm.describe_secret(SecretId=name)["RotationLambdaARN"] == emulated.aws.function_arn


def test_failed_rotation_answers_like_aws_and_logs_the_error(emulated, pg_server) -> None:
    sm = emulated.client("secretsmanager")
    user = unique_user()
    create_pg_user(pg_server, user, new_password())
    name = f"emulated/{user}"
    # The secret's password is wrong: setSecret cannot log in.
    sm.create_secret(Name=name, SecretString=json.dumps(pg_server.secret(user, new_password())))
    before = _stages(sm, name)
    token = sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN=emulated.aws.function_arn,
        RotationRules={"AutomaticallyAfterDays": 30},
    )["VersionId"]
    after = _stages(sm, name)
    assert after[token] == ["AWSPENDING"]
    assert {v: s for v, s in after.items() if v != token} == before  # AWSCURRENT did not move
    logs = emulated.client("logs")
    lines = [
        e["message"] for e in logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNames=[token])["events"]
    ]
    assert any('"errorType"' in line for line in lines)  # what the Lambda runtime logs
    assert any("setSecret failed" in line for line in lines)
