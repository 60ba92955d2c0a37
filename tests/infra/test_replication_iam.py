"""The replication role grants what the replication handlers call, found by reading their source.

Every boto3 SSM and Resource Groups Tagging operation that ``rotation_handlers/replication`` (and the
entry point ``rotation_handlers/replicate.py``) names as a client method must be allowed to the role of
each function, and the role grants no SSM or tagging action the code never calls: a new call in the
handlers fails this test until the stack grants it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from tests.infra.conftest import EXAMPLE, ROOT, Synth, render, resources, statements, synth

HANDLER_SOURCES = [
    *sorted((ROOT / "rotation_handlers" / "replication").glob("*.py")),
    ROOT / "rotation_handlers" / "replicate.py",
]
# boto3 service name -> IAM service prefix.
SERVICES = {"ssm": "ssm", "resourcegroupstaggingapi": "tag"}
STATE_PARAMETER = "/parameter-replicator/reconcile-state"  # the handler's and construct's default
STAGE_STATE_PARAMETER = "/parameter-replicator/example/reconcile-state"  # what the example's stack sets


def _operations() -> dict[str, str]:
    """boto3 method name -> IAM action, for the services above."""
    session = botocore.session.get_session()
    out: dict[str, str] = {}
    for service, prefix in SERVICES.items():
        for operation in session.get_service_model(service).operation_names:
            out[xform_name(operation)] = f"{prefix}:{operation}"
    return out


def called_actions(paths: list[Path] = HANDLER_SOURCES) -> set[str]:
    """IAM actions of the client methods the code names (``ssm.get_parameters``, ``tagging.get_resources``).

    Method names are distinctive (``put_parameter``, ``get_resources``): any attribute with one of them
    counts, whatever the variable is called."""
    operations = _operations()
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and node.attr in operations:
                found.add(operations[node.attr])
            # client.get_paginator("describe_parameters") names its operation as a string.
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get_paginator"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in operations
            ):
                found.add(operations[node.args[0].value])
    return found


def _allowed(raw: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    out = []
    for res in resources(raw, "AWS::IAM::Policy").values():
        props = res["Properties"]
        if {"Ref": role_id} in props.get("Roles", []):
            out.extend(s for s in render(props["PolicyDocument"]["Statement"]) if s["Effect"] == "Allow")
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def test_the_scan_finds_the_known_calls(tmp_path: Path) -> None:
    found = called_actions()
    # A few calls every version of the replicator makes; the scan is not vacuous.
    assert {"ssm:PutParameter", "ssm:GetParameterHistory", "ssm:DescribeParameters"} <= found
    assert all(a.split(":")[0] in SERVICES.values() for a in found)
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(ssm, tagging, retry):\n"
        "    retry.call(ssm.get_parameters_by_path, Path='/a')\n"
        "    tagging.get_paginator('get_tag_keys')\n"
        "    ssm.meta.region_name\n"
    )
    assert called_actions([sample]) == {"ssm:GetParametersByPath", "tag:GetTagKeys"}


@pytest.mark.parametrize("which", ["example", "minimal"])
def test_every_call_of_the_handlers_is_granted_to_each_function(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth_: Synth = request.getfixturevalue(which)
    raw = synth_.raw("ParameterReplication")
    found = called_actions()
    functions = resources(raw, "AWS::Lambda::Function")
    assert len(functions) == 2
    for fn in functions.values():
        role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        granted = {a for s in _allowed(raw, role_id) for a in _actions(s)}
        missing = found - granted
        assert not missing, f"{fn['Properties']['Handler']}: the handlers call {sorted(missing)}, not granted"
        extra = {a for a in granted if a.split(":")[0] in SERVICES.values()} - found
        assert not extra, f"granted but never called: {sorted(extra)}"


def test_reconcile_state_parameter(example: Synth) -> None:
    raw = example.raw("ParameterReplication")
    for fn in resources(raw, "AWS::Lambda::Function").values():
        assert (
            fn["Properties"]["Environment"]["Variables"]["RECONCILE_STATE_PARAMETER"] == STAGE_STATE_PARAMETER
        )
    state = [s for s in statements(raw, "ReplicatorPolicy") if s.get("Sid") == "ReconcileState"]
    assert state == [
        {
            "Action": ["ssm:GetParameter", "ssm:PutParameter"],
            "Effect": "Allow",
            "Resource": f"arn:aws:ssm:eu-west-1:123456789012:parameter{STAGE_STATE_PARAMETER}",
            "Sid": "ReconcileState",
        }
    ]
    # GetParameter and PutParameter are granted nowhere else in the source region.
    for s in statements(raw, "ReplicatorPolicy"):
        if s.get("Sid") != "ReconcileState" and "ssm:GetParameter" in _actions(s):
            raise AssertionError(s)


def test_bulk_tag_reads_have_no_resource_level_permissions(example: Synth) -> None:
    raw = example.raw("ParameterReplication")
    tagging = [s for s in statements(raw, "ReplicatorPolicy") if "tag:GetResources" in _actions(s)]
    regions = ["eu-west-1", "eu-central-1", "us-east-1"]
    assert tagging == [
        {
            "Action": "tag:GetResources",
            "Condition": {"StringEquals": {"aws:RequestedRegion": regions}},
            "Effect": "Allow",
            "Resource": "*",
            "Sid": "ReadTagsInBulk",
        }
    ]


def test_the_stacks_state_parameter_is_the_handlers_default() -> None:
    """The stack writes the name itself (a template value) and it matches the handler's default."""
    from infra.replication import RECONCILE_STATE_PARAMETER, RECONCILE_TIME_MARGIN_SECONDS
    from rotation_handlers.replication.config import DEFAULT_STATE_PARAMETER, ReplicationConfig

    assert RECONCILE_STATE_PARAMETER == DEFAULT_STATE_PARAMETER == STATE_PARAMETER
    assert ReplicationConfig("eu-west-1", ("us-east-1",)).time_margin == RECONCILE_TIME_MARGIN_SECONDS


def _raw_with(tmp_path: Path, **replication: Any) -> dict[str, Any]:
    import json

    raw = json.loads(EXAMPLE.read_text())
    raw["replication"].update(replication)
    return raw


def test_reconcile_tuning_reaches_the_reconcile_function(tmp_path: Path) -> None:
    from infra.config import parse_config

    raw = _raw_with(
        tmp_path,
        reconcileConcurrency=8,
        maxRounds=3,
        reconcileDeepEvery=12,
        reconcileRequestsPerSecond=40,
        reconcileBulkTags=False,
        reconcileTimeMarginSeconds=90,
    )
    out = synth(parse_config(raw, source="tuned", base_dir=EXAMPLE.parent), tmp_path)
    t = out.raw("ParameterReplication")
    env = {
        render(f["Properties"]["Handler"]): f["Properties"]["Environment"]["Variables"]
        for f in resources(t, "AWS::Lambda::Function").values()
    }
    reconcile = env["rotation_handlers.replicate.reconcile_handler"]
    assert {k: reconcile[k] for k in reconcile if k.startswith(("RECONCILE_", "REPLICATION_"))} == {
        "RECONCILE_STATE_PARAMETER": STAGE_STATE_PARAMETER,
        "RECONCILE_CONCURRENCY": "8",
        "REPLICATION_MAX_ROUNDS": "3",
        "RECONCILE_DEEP_EVERY": "12",
        "RECONCILE_REQUESTS_PER_SECOND": "40",
        "RECONCILE_BULK_TAGS": "false",
        "RECONCILE_TIME_MARGIN_SECONDS": "90",
    }
    event = env["rotation_handlers.replicate.handler"]
    assert {k: event[k] for k in event if k.startswith(("RECONCILE_", "REPLICATION_"))} == {
        "RECONCILE_STATE_PARAMETER": STAGE_STATE_PARAMETER,
        "REPLICATION_MAX_ROUNDS": "3",
    }
    # The handler reads what the stack wrote.
    from rotation_handlers.replication.config import load_config

    loaded = load_config({**render(reconcile), "AWS_REGION": "eu-west-1", "REPLICATOR_ROLE_ARN": ""})
    assert (loaded.concurrency, loaded.max_rounds, loaded.deep_every) == (8, 3, 12)
    assert (loaded.requests_per_second, loaded.bulk_tags, loaded.time_margin) == (40, False, 90)
    # Without bulk tag reads, no tag:GetResources grant (and none of the code's calls is missing).
    granted = {a for s in statements(t, "ReplicatorPolicy") for a in _actions(s)}
    assert "tag:GetResources" not in granted
    assert called_actions() - {"tag:GetResources"} <= granted


def test_time_margin_must_be_shorter_than_the_reconcile_timeout() -> None:
    from infra.config import ConfigError, parse_config

    raw = _raw_with(Path(), reconcileTimeoutSeconds=120, reconcileTimeMarginSeconds=120)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, source="margin", base_dir=EXAMPLE.parent)
    assert any(
        e.startswith(
            "replication.reconcileTimeMarginSeconds: 120 s is not shorter than reconcileTimeoutSeconds"
        )
        for e in caught.value.errors
    ), caught.value.errors
    # The handler's default margin (60 s) against the shortest timeout.
    raw = _raw_with(Path(), reconcileTimeoutSeconds=60)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, source="margin", base_dir=EXAMPLE.parent)
    assert any(e.startswith("replication.reconcileTimeoutSeconds: 60 s") for e in caught.value.errors)


def test_construct_refuses_a_margin_as_long_as_the_timeout() -> None:
    import aws_cdk as cdk
    from aws_cdk import Duration

    from infra.replication import ParameterReplicator, ReconcileTuning

    stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    with pytest.raises(ValueError, match="time margin"):
        ParameterReplicator(
            stack,
            "R",
            target_regions=["us-east-1"],
            reconcile_timeout=Duration.minutes(5),
            reconcile_tuning=ReconcileTuning(time_margin=Duration.minutes(5)),
            code=cdk.aws_lambda.Code.from_inline("x"),
        )
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        ReconcileTuning(concurrency=0)
