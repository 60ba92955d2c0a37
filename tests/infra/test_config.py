"""Configuration loading and validation: clear errors with the path of each problem."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, load_config, parse_config
from tests.infra.conftest import EXAMPLE


def _example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


def _errors(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="test", base_dir=EXAMPLE.parent)
    return info.value.errors


def test_example_loads() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.rotation is not None and cfg.replication is not None
    assert [s.name for s in cfg.rotation.secrets] == [
        "orders-app",
        "payments-master",
        "payments-app",
        "reports-app",
    ]
    assert cfg.rotation.secret("payments-app").schedule.window == "3h"
    assert cfg.replication.include_paths == ("/app/", "/shared/")
    assert {g.name for g in cfg.rotation.key_groups} == {"default", "payments"}


def test_unknown_keys_are_reported_with_their_path() -> None:
    raw = _example()
    raw["regoin"] = "eu-west-1"
    raw["rotation"]["secrets"][1]["stratgy"] = "single"
    raw["replication"]["targetRegion"] = ["us-east-1"]
    errors = _errors(raw)
    assert any(e.startswith("<root>: unknown key 'regoin'") for e in errors)
    assert any(e.startswith("rotation.secrets[1]: unknown key 'stratgy'") for e in errors)
    assert any(e.startswith("replication: unknown key 'targetRegion'") for e in errors)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("region",), "eu-westt-1", "region: 'eu-westt-1' is not an AWS region"),
        (
            ("replication", "targetRegions"),
            ["us-east-1", "EU-CENTRAL-1"],
            "replication.targetRegions[1]: 'EU-CENTRAL-1' is not an AWS region",
        ),
        (
            ("replication", "targetRegions"),
            ["eu-west-1"],
            "replication.targetRegions: eu-west-1 is the source region",
        ),
        (("account",), "12345", "account: '12345' is not a 12-digit account id"),
    ],
)
def test_bad_values(path: tuple[str, ...], value: Any, message: str) -> None:
    raw = _example()
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert any(e.startswith(message) for e in _errors(raw)), _errors(raw)


def test_missing_vpc_for_database_secrets() -> None:
    raw = _example()
    del raw["rotation"]["network"]
    (error,) = _errors(raw)
    assert error.startswith(
        "rotation.network: missing: the database secrets need the rotation function's network"
    )


def test_no_vpc_must_be_explicit_and_alone() -> None:
    raw = _example()
    raw["rotation"]["network"] = {"vpc": False}
    assert parse_config(raw, base_dir=EXAMPLE.parent).rotation.network is None  # type: ignore[union-attr]
    raw["rotation"]["network"] = {"vpc": False, "vpcId": "vpc-0a1b2c3d4e5f60718"}
    assert any("cannot be combined" in e for e in _errors(raw))


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"rateDays": 0}, "rotation.secrets[0].schedule.rateDays: 0 is out of range (1..1000)"),
        ({"rateDays": 1001}, "rotation.secrets[0].schedule.rateDays: 1001 is out of range (1..1000)"),
        ({"rateHours": 2}, "rotation.secrets[0].schedule.rateHours: 2 is out of range (4..23)"),
        (
            {"rateHours": 6, "window": "6h"},
            "rotation.secrets[0].schedule.window: '6h' is out of range (1h..5h)",
        ),
        (
            {"cron": "cron(0 4 ? * SUN *)", "window": "25h"},
            "rotation.secrets[0].schedule.window: '25h' is out of range",
        ),
        (
            {"cron": "cron(0 * * * ? *)"},
            "rotation.secrets[0].schedule.cron: 'cron(0 * * * ? *)' is out of range",
        ),
        ({"cron": "cron(0 4 * * *)"}, "rotation.secrets[0].schedule.cron: 'cron(0 4 * * *)' needs 6 fields"),
        (
            {"rateDays": 30, "cron": "cron(0 4 ? * SUN *)"},
            "rotation.secrets[0].schedule: give exactly one of",
        ),
    ],
)
def test_rotation_schedule_out_of_range(schedule: dict[str, Any], message: str) -> None:
    raw = _example()
    raw["rotation"]["secrets"][0]["schedule"] = schedule
    assert any(e.startswith(message) for e in _errors(raw)), _errors(raw)


@pytest.mark.parametrize("expr", ["rate(1 minute)", "rate(60 days)", "rate(2 hour)", "every hour"])
def test_reconcile_schedule_validated(expr: str) -> None:
    raw = _example()
    raw["replication"]["reconcileSchedule"] = expr
    assert any(e.startswith("replication.reconcileSchedule:") for e in _errors(raw))


def test_secret_cross_checks() -> None:
    raw = _example()
    secrets = raw["rotation"]["secrets"]
    secrets[0]["arn"] = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/orders/app"  # no suffix
    secrets[2]["masterSecret"] = "nope"
    secrets[3]["strategy"] = "alternating"  # without a master
    secrets[1]["kmsKey"] = "missing-group"
    errors = _errors(raw)
    assert any(e.startswith("rotation.secrets[0].arn:") and "complete secret ARN" in e for e in errors)
    assert (
        "rotation.secrets[2].masterSecret: 'nope' is not the name of an entry in rotation.secrets" in errors
    )
    assert any(e.startswith("rotation.secrets[3].strategy: alternating needs") for e in errors)
    assert any(
        e.startswith("rotation.secrets[1].kmsKey: 'missing-group' is neither a key group") for e in errors
    )


def test_secret_in_another_region_is_rejected() -> None:
    raw = _example()
    raw["rotation"]["secrets"][0]["arn"] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"
    assert any("the rotation function runs in eu-west-1" in e for e in _errors(raw))


def test_all_problems_reported_at_once() -> None:
    raw = copy.deepcopy(_example())
    raw["region"] = "nowhere"
    raw["rotation"]["function"]["timeoutSeconds"] = 5
    raw["replication"]["eventSource"] = "sns"
    errors = _errors(raw)
    assert len(errors) >= 3
    assert any(e.startswith("rotation.function.timeoutSeconds: 5 is out of range (30..900)") for e in errors)
    assert any(e.startswith("replication.eventSource:") for e in errors)


def test_ca_bundle_must_exist() -> None:
    raw = _example()
    raw["rotation"]["function"]["caBundle"] = "no-such.pem"
    assert any(e.startswith("rotation.function.caBundle: file not found") for e in _errors(raw))


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"stage": "x",}')
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.json")
