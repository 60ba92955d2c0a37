"""Configuration loading and validation: clear errors with the path of each problem."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, load_config, parse_config
from tests.infra.conftest import EXAMPLE
from tests.infra.conftest import config_errors as _errors
from tests.infra.conftest import example_raw as _example


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


CRON = "rotation.secrets[0].schedule.cron: "


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        # Hourly through an hours list: Secrets Manager rotates at most every 4 hours.
        (
            {"cron": "cron(0 1,2,3 * * ? *)"},
            f"{CRON}'cron(0 1,2,3 * * ? *)' is out of range: rotation can run "
            "at most every 4 hours (hours 1,2,3 are 1 h apart)",
        ),
        ({"cron": "cron(0 2-8/2 * * ? *)"}, f"{CRON}'cron(0 2-8/2 * * ? *)' is out"),
        ({"cron": "cron(0 0,22 * * ? *)"}, f"{CRON}'cron(0 0,22 * * ? *)' is out"),
        ({"cron": "cron(0 */3 * * ? *)"}, f"{CRON}'cron(0 */3 * * ? *)' is out"),
        ({"cron": "cron(0 4x * * ? *)"}, f"{CRON}'cron(0 4x * * ? *)': cannot read"),
        # A window longer than the interval, or past the end of the UTC day.
        (
            {"cron": "cron(0 0,6,12,18 * * ? *)", "window": "7h"},
            "rotation.secrets[0].schedule.window: '7h' is longer than the 6 h between two rotations",
        ),
        (
            {"cron": "cron(30 22 ? * SUN *)", "window": "2h"},
            "rotation.secrets[0].schedule.window: '2h' from 22:30 UTC extends into the next UTC day",
        ),
    ],
)
def test_cron_interval_and_window(schedule: dict[str, Any], message: str) -> None:
    raw = _example()
    raw["rotation"]["secrets"][0]["schedule"] = schedule
    assert any(e.startswith(message) for e in _errors(raw)), _errors(raw)


@pytest.mark.parametrize(
    "schedule",
    [
        {"cron": "cron(0 */4 * * ? *)", "window": "4h"},
        {"cron": "cron(0 2-20/6 * * ? *)"},
        {"cron": "cron(0 21 ? * SUN *)", "window": "3h"},
    ],
)
def test_valid_crons_pass(schedule: dict[str, Any]) -> None:
    raw = _example()
    raw["rotation"]["secrets"][0]["schedule"] = schedule
    parse_config(raw, base_dir=EXAMPLE.parent)


def test_availability_zones_are_required_with_subnets() -> None:
    raw = _example()
    del raw["rotation"]["network"]["availabilityZones"]
    (error,) = _errors(raw)
    assert error.startswith("rotation.network.availabilityZones: required: the availability zone of each")


def test_endpoint_choices_exclude_each_other() -> None:
    raw = _example()
    network = raw["rotation"]["network"]
    network["existingSecretsManagerEndpoint"] = {"dnsName": "vpce-1.ssm.eu-west-1.vpce.amazonaws.com"}
    errors = _errors(raw)
    where = "rotation.network.existingSecretsManagerEndpoint"
    assert any(e.startswith(f"{where}: give either createSecretsManagerEndpoint") for e in errors)
    assert any(e.startswith(f"{where}.dnsName: 'vpce-1.ssm.eu-west-1") for e in errors)


def test_alert_topic() -> None:
    raw = _example()
    topic = "arn:aws:sns:eu-west-1:123456789012:pager"
    raw["alerts"] = {"topicArn": topic}
    assert parse_config(raw, base_dir=EXAMPLE.parent).alerts.topic_arn == topic
    raw["alerts"]["email"] = "a@example.com"
    assert any(e.startswith("alerts.topicArn: give either email") for e in _errors(raw))
    raw["alerts"] = {"topicArn": "arn:aws:sns:us-east-1:123456789012:pager"}
    assert any(
        e.startswith("alerts.topicArn: the topic is in us-east-1 but a stack deploys to eu-west-1")
        for e in _errors(raw)
    )
    raw["alerts"] = {"topicArn": "arn:aws:sns:eu-west-1:999999999999:pager"}
    assert any("belongs to account 999999999999" in e for e in _errors(raw))


def test_replication_defaults_for_a_shared_account() -> None:
    raw = _example()
    for key in ("createTrail", "reservedConcurrency"):
        del raw["replication"][key]
    rep = parse_config(raw, base_dir=EXAMPLE.parent).replication
    assert rep is not None
    assert rep.create_trail is False  # the account's existing trail
    assert rep.reserved_concurrency == 5
    raw["replication"]["reservedConcurrency"] = 0
    assert any(e.startswith("replication.reservedConcurrency: 0 is out of range") for e in _errors(raw))


def test_two_way_replication_with_deletes_is_refused() -> None:
    raw = _example()
    forward = raw["replication"]
    back = {
        "sourceRegion": "eu-central-1",
        "targetRegions": ["eu-west-1"],
        "includePaths": ["/app/db/"],
        "deleteUnmanagedReplicas": True,
    }
    raw["replication"] = [forward, back]
    errors = _errors(raw)
    message = "replication[1].deleteUnmanagedReplicas: sections 0 and 1 replicate the same paths both ways"
    assert any(e.startswith(message) for e in errors), errors
    back["deleteUnmanagedReplicas"] = False
    config = parse_config(raw, base_dir=EXAMPLE.parent)
    assert [c.source_region for c in config.replications] == ["eu-west-1", "eu-central-1"]
    back["includePaths"] = ["/other/"]
    back["deleteUnmanagedReplicas"] = True
    parse_config(raw, base_dir=EXAMPLE.parent)  # disjoint paths: no loop


def test_lock_timeout_and_rotation_check() -> None:
    raw = _example()
    raw["rotation"]["function"]["dbLockTimeoutSeconds"] = 0
    raw["rotation"]["function"]["dbStatementTimeoutSeconds"] = 301
    raw["rotation"]["scheduledRotationCheck"] = "yes"
    errors = _errors(raw)
    timeout = "rotation.function.dbLockTimeoutSeconds: 0 is out of range (1..60)"
    assert any(e.startswith(timeout) for e in errors)
    statement = "rotation.function.dbStatementTimeoutSeconds: 301 is out of range (1..300)"
    assert any(e.startswith(statement) for e in errors), errors
    assert any(e.startswith("rotation.scheduledRotationCheck: expected a boolean") for e in errors)


def test_schema_file_is_generated_from_the_models() -> None:
    """config/schema.json is what the models say (regenerate: infra.config_schema.write_schema())."""
    from infra.config_schema import SCHEMA_FILE, render_schema

    assert SCHEMA_FILE.read_text() == render_schema()


def test_example_follows_the_published_schema() -> None:
    from infra.config_schema import json_schema

    schema = json_schema()
    raw = _example()
    assert raw["$schema"] == "./schema.json"
    assert set(raw) <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    replication = schema["$defs"]["Replication"]["properties"]
    assert replication["reservedConcurrency"] == {
        "anyOf": [{"maximum": 100, "minimum": 1, "type": "integer"}, {"type": "null"}],  # null: none
        "default": 5,
        "title": "reservedConcurrency",
    }
