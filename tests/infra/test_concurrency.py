"""Reserved concurrency: opt-out, and never below what rotation needs.

AWS behaviour:
- Lambda keeps at least 100 concurrent executions unreserved in every account; a reservation that would
  leave less is refused, so a stack that always reserves cannot deploy in an account at that floor
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
- Secrets Manager lists "insufficient concurrent executions for the Lambda function" as a cause of
  rotation failures (https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot_rotation.html):
  one function serves every attached secret, and schedules of many secrets (and the test a deploy
  makes) run at once. A reservation, where there is one, allows at least 10 concurrent invocations.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from infra.config import parse_config
from infra.rotation import RotationFunction
from tests.infra.conftest import EXAMPLE, NO_BUNDLING, resources, synth
from tests.infra.conftest import config_errors as _errors
from tests.infra.conftest import example_raw as _example


def test_rotation_reservation_allows_ten_concurrent_rotations() -> None:
    raw = _example()
    raw["rotation"]["function"]["reservedConcurrency"] = 9
    errors = _errors(raw)
    assert any(e.startswith("rotation.function.reservedConcurrency: 9 is out of range (10..") for e in errors)
    raw["rotation"]["function"]["reservedConcurrency"] = 10
    parse_config(raw, source="test", base_dir=EXAMPLE.parent)


def test_rotation_construct_refuses_a_reservation_below_ten() -> None:
    stack = cdk.Stack(cdk.App(context=NO_BUNDLING), "S")
    code = lambda_.Code.from_inline("x")
    with pytest.raises(ValueError, match="at least 10"):
        RotationFunction(stack, "R", reserved_concurrent_executions=3, code=code)


def test_replication_reservation_is_opt_out(tmp_path: Path) -> None:
    raw = _example()
    raw["replication"]["reservedConcurrency"] = None  # no reservation at all
    config = parse_config(raw, source="test", base_dir=EXAMPLE.parent)
    assert config.replication is not None and config.replication.reserved_concurrency is None
    out = synth(config, tmp_path)
    fns = resources(out.raw("ParameterReplication"), "AWS::Lambda::Function")
    assert fns and all("ReservedConcurrentExecutions" not in f["Properties"] for f in fns.values())
    rotation = resources(out.raw("SecretsRotation"), "AWS::Lambda::Function")
    assert all("ReservedConcurrentExecutions" not in f["Properties"] for f in rotation.values())
