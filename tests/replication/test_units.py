"""Unit tests: configuration, event parsing, retry policy, plan building."""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError

from rotation_handlers.replication.config import ConfigError, ReplicationConfig, load_config, path_matches
from rotation_handlers.replication.events import RoleIdentity, parameter_names, parse_event
from rotation_handlers.replication.retry import RetryPolicy
from rotation_handlers.replication.state import ParameterState, Version, canonical_policy
from rotation_handlers.replication.sync import key_matches, plan_sync
from tests.replication import events as ev

BASE = {"AWS_REGION": "us-east-1", "REPLICA_REGIONS": "eu-west-1, us-west-2"}


def test_config_defaults() -> None:
    config = load_config(BASE)
    assert config.target_regions == ("eu-west-1", "us-west-2")
    assert config.include_paths == ("/",)
    assert config.kms_key_for("eu-west-1") == "alias/aws/ssm"
    assert not config.delete_unmanaged and not config.copy_ec2_image


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"REPLICA_REGIONS": ""}, "REPLICA_REGIONS"),
        ({"REPLICA_REGIONS": "eu-west-1,us-east-1"}, "REPLICA_REGIONS"),
        ({"REPLICA_REGIONS": "europe"}, "REPLICA_REGIONS"),
        ({"AWS_REGION": ""}, "AWS_REGION"),
        ({"REPLICATE_PATHS": "app"}, "REPLICATE_PATHS"),
        ({"EXCLUDE_PATHS": "/ok,bad"}, "EXCLUDE_PATHS"),
        ({"REPLICA_KMS_KEYS": "{not json"}, "REPLICA_KMS_KEYS"),
        ({"REPLICA_KMS_KEYS": '["alias/x"]'}, "REPLICA_KMS_KEYS"),
        ({"REPLICA_KMS_KEYS": '{"ap-south-1": "alias/x"}'}, "REPLICA_KMS_KEYS"),
        ({"REPLICA_KMS_KEYS": '{"eu-west-1": ""}'}, "REPLICA_KMS_KEYS"),
        ({"DELETE_UNMANAGED_REPLICAS": "maybe"}, "DELETE_UNMANAGED_REPLICAS"),
        ({"COPY_EC2_IMAGE_PARAMETERS": "yes please"}, "COPY_EC2_IMAGE_PARAMETERS"),
        ({"REPLICATOR_ROLE_ARN": "my-role"}, "REPLICATOR_ROLE_ARN"),
        ({"REPLICATION_MAX_ATTEMPTS": "0"}, "REPLICATION_MAX_ATTEMPTS"),
        ({"REPLICATION_MAX_ROUNDS": "0"}, "REPLICATION_MAX_ROUNDS"),
        ({"RECONCILE_DEEP_EVERY": "0"}, "RECONCILE_DEEP_EVERY"),
        ({"RECONCILE_REQUESTS_PER_SECOND": "fast"}, "RECONCILE_REQUESTS_PER_SECOND"),
        ({"RECONCILE_BULK_TAGS": "maybe"}, "RECONCILE_BULK_TAGS"),
        ({"RECONCILE_STATE_PARAMETER": "state"}, "RECONCILE_STATE_PARAMETER"),
    ],
)
def test_bad_config_names_the_variable(extra: dict[str, str], variable: str) -> None:
    env = {**BASE, **extra}
    if extra.get("AWS_REGION") == "":
        env.pop("AWS_REGION")
    with pytest.raises(ConfigError, match=variable):
        load_config(env)


def test_bad_config_fails_the_handler(env: pytest.MonkeyPatch) -> None:
    from rotation_handlers import replicate

    env.setenv("REPLICA_REGIONS", "us-east-1")
    with pytest.raises(ConfigError, match="source region us-east-1"):
        replicate.handler(ev.put_parameter_event("/x"), None)


def test_paths() -> None:
    assert path_matches("/app/x", "/app") and path_matches("/app", "/app")
    assert not path_matches("/apple", "/app") and not path_matches("/app", "/app/")
    assert path_matches("anything", "/") and path_matches("plain", "/plain")
    config = ReplicationConfig("us-east-1", ("eu-west-1",), ("/",), ("/x/",))
    assert config.exclusion_reason("/aws/service/ami") == "always-excluded-path:/aws/"
    assert config.exclusion_reason("/cdk/exports/S/o") == "always-excluded-path:/cdk/exports/"
    assert config.exclusion_reason("/x/y") == "EXCLUDE_PATHS:/x/"
    assert config.is_included("/cdk/other") and config.is_included("/awsome")


def test_parameter_names() -> None:
    assert parameter_names("/a/b") == ["/a/b"]
    assert parameter_names("a/b") == ["/a/b"]
    assert parameter_names("plain") == ["plain"]
    assert parameter_names("arn:aws:ssm:us-east-1:123456789012:parameter/a/b") == ["/a/b"]
    assert parameter_names("arn:aws-cn:ssm:cn-north-1:123456789012:parameter/plain") == ["plain", "/plain"]


@pytest.mark.parametrize(
    ("event", "names"),
    [
        (ev.put_parameter_event("/a"), ("/a",)),
        (ev.delete_parameter_event("/a"), ("/a",)),
        (ev.delete_parameters_event(["/a", "b/c"]), ("/a", "/b/c")),
        (ev.label_event("/a", 1, ["x"]), ("/a",)),
        (ev.unlabel_event("/a", 1, ["x"]), ("/a",)),
        (ev.add_tags_event("/a", {"k": "v"}), ("/a",)),
        (ev.remove_tags_event(ev.parameter_arn("/a/b"), ["k"]), ("/a/b",)),
        (ev.parameter_store_change_event("/a", "Create"), ("/a",)),
        (ev.parameter_store_change_event("/a", "DELETE"), ("/a",)),
        (ev.parameter_store_change_event("/a", "LabelParameterVersion"), ("/a",)),
    ],
)
def test_parse_event_names(event: dict, names: tuple[str, ...]) -> None:
    trigger = parse_event(event, "us-east-1")
    assert trigger.ignored is None and trigger.names == names


def test_parse_event_ignores() -> None:
    own = RoleIdentity.from_role_arn(ev.role_arn("replicator", path="/service-role/"))
    assert own is not None and own.role_name == "replicator"
    mine = ev.put_parameter_event("/a", user_arn=ev.assumed_role_arn("replicator", "fn"))
    assert parse_event(mine, "us-east-1", own).ignored == "own-call"
    other = ev.put_parameter_event(
        "/a", user_arn=ev.assumed_role_arn("replicator", "fn", account="999999999999")
    )
    assert parse_event(other, "us-east-1", own).ignored is None
    assert (
        parse_event(ev.put_parameter_event("/a", region="eu-west-1"), "us-east-1").ignored == "other-region"
    )
    failed = ev.put_parameter_event("/a", error_code="AccessDenied")
    assert parse_event(failed, "us-east-1").ignored == "failed-call"
    lower = ev.put_parameter_event("/a")
    lower["detail"]["eventName"] = "putparameter"
    assert parse_event(lower, "us-east-1").names == ("/a",)
    user = ev.put_parameter_event("/a", user_arn="arn:aws:iam::123456789012:user/bob")
    assert parse_event(user, "us-east-1", own).ignored is None
    policy_action = ev.parameter_store_change_event("/a", "Expire")
    assert parse_event(policy_action, "us-east-1").ignored == "unsupported-operation"


def throttle() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutParameter")


def test_retry_full_jitter_bounded() -> None:
    sleeps: list[float] = []
    calls = {"n": 0}

    def flaky() -> dict:
        calls["n"] += 1
        if calls["n"] < 5:
            raise throttle()
        return {"ok": True}

    policy = RetryPolicy(max_attempts=6, base=1.0, cap=3.0, sleep=sleeps.append, rng=random.Random(1))
    assert policy.call(flaky) == {"ok": True}
    assert len(sleeps) == 4 and policy.retries == 4
    assert all(0 <= s <= min(3.0, 2**i) for i, s in enumerate(sleeps))


def test_retry_gives_up_and_ignores_other_errors() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=3, sleep=sleeps.append)

    def always() -> dict:
        raise throttle()

    with pytest.raises(ClientError):
        policy.call(always)
    assert len(sleeps) == 2

    def denied() -> dict:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutParameter")

    with pytest.raises(ClientError):
        policy.call(denied)
    assert len(sleeps) == 2


def state(value: str, **kw: object) -> ParameterState:
    history = kw.pop("history", (Version(1, value),))
    return ParameterState("/p", kw.pop("type", "String"), value, history=history, **kw)  # type: ignore[arg-type]


def test_plan_never_logs_values_and_creates_with_tags() -> None:
    config = load_config(BASE)
    plan = plan_sync("/p", state("s3cr3t-value", tags={"a": "1"}), None, "eu-west-1", config)
    assert plan.action == "created"
    assert "s3cr3t-value" not in repr(plan) and "s3cr3t-value" not in str(
        [op.describe() for op in plan.operations]
    )
    create = plan.operations[0].kwargs
    assert (
        "Overwrite" not in create and {"Key": "ssm-replicator:source", "Value": "us-east-1"} in create["Tags"]
    )


def test_plan_policies_and_keys() -> None:
    config = load_config({**BASE, "REPLICA_KMS_KEYS": '{"eu-west-1": "arn:aws:kms:eu-west-1:1:alias/k"}'})
    src = state("v", type="SecureString", key_id="alias/src")
    tgt = state("v", type="SecureString", key_id="alias/k")
    assert plan_sync("/p", src, tgt, "eu-west-1", config).action == "unchanged"
    assert key_matches("arn:aws:kms:eu-west-1:1:key/abcd", "abcd")
    assert not key_matches("alias/x", "alias/y")
    assert canonical_policy("{'Type': 'Expiration'}") == canonical_policy('{"Type":"Expiration"}')


def test_own_role_derived_from_caller_identity_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    from rotation_handlers.replication import engine

    class FakeSts:
        calls = 0

        def get_caller_identity(self) -> dict:
            FakeSts.calls += 1
            return {"Arn": ev.assumed_role_arn("MyStack-ReplicatorRole-1AB", "MyStack-Replicator-xyz")}

    fake = FakeSts()
    monkeypatch.setattr(engine.clients, "client", lambda service, region: fake)
    monkeypatch.setattr(engine, "_own_role_cache", {})
    config = load_config(BASE)
    assert engine.resolve_own_role(config, {}) is None  # outside Lambda: nothing to derive
    lambda_env = {"AWS_LAMBDA_FUNCTION_NAME": "MyStack-Replicator-xyz"}
    own = engine.resolve_own_role(config, lambda_env)
    assert own == RoleIdentity("123456789012", "MyStack-ReplicatorRole-1AB")
    assert engine.resolve_own_role(config, lambda_env) == own and FakeSts.calls == 1  # cached
    event = ev.put_parameter_event("/a", user_arn=ev.assumed_role_arn("MyStack-ReplicatorRole-1AB", "s"))
    assert parse_event(event, "us-east-1", own).ignored == "own-call"


def test_clients_cached_with_standard_retries_and_env_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from rotation_handlers.replication import clients

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    clients.reset()
    try:
        client = clients.ssm("eu-west-1")
        assert clients.ssm("eu-west-1") is client
        assert client.meta.endpoint_url == "http://localhost:4566"
        assert client.meta.config.retries["mode"] == "standard"
        assert client.meta.region_name == "eu-west-1"
    finally:
        clients.reset()  # later tests get clients without the endpoint override


def test_token_bucket_waits_for_tokens_shared_by_threads() -> None:
    from rotation_handlers.replication.budget import RegionBudget

    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    budget = RegionBudget(5, burst=5, clock=lambda: now[0], sleep=sleep)
    bucket = budget.bucket("eu-west-1")
    for _ in range(15):
        bucket.take()
    # 5 from the full bucket, then one every 0.2 s
    assert len(sleeps) == 10 and abs(now[0] - 2.0) < 1e-9
    assert budget.bucket("eu-west-1") is bucket and budget.bucket("us-west-2") is not bucket


def test_label_placement_never_exceeds_ten_per_version() -> None:
    from rotation_handlers.replication.sync import place_labels

    value = "same"
    labels = tuple(f"l{i:02d}" for i in range(23))
    src = state(
        value,
        history=(
            Version(1, value, labels[:10]),
            Version(2, value, labels[10:20]),
            Version(3, value, labels[20:]),
        ),
    )
    tgt = state(value, history=(Version(1, value, ("l00", "stray")), Version(2, "other")))
    placement = place_labels(src, tgt)
    assert placement.unlabel == {1: ["stray"]}
    assert placement.existing == {1: list(labels[1:10])}  # l00 stays; "stray" still counts
    assert placement.new_versions == {value: [list(labels[10:20]), list(labels[20:])]}


#: Parameter Store's default throughput, shared by GetParameter, GetParameters and GetParametersByPath
#: per account and region: 40 transactions per second ("AWS Systems Manager endpoints and quotas",
#: Parameter Store, "Max throughput (transactions per second)", https://docs.aws.amazon.com/general/latest/gr/ssm.html).
PARAMETER_STORE_DEFAULT_TPS = 40


def test_default_read_budget_stays_within_half_of_the_shared_quota() -> None:
    """With the default RECONCILE_REQUESTS_PER_SECOND, no second of a reconcile sends more than half
    of the default shared quota in one region: the other half stays for applications and live
    replication. Counted on a simulated clock (no timing)."""
    from rotation_handlers.replication.budget import RegionBudget

    config = load_config(BASE)
    now = [0.0]
    sent: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    budget = RegionBudget(config.requests_per_second, clock=lambda: now[0], sleep=sleep)
    for _ in range(200):
        budget.take("eu-west-1")
        sent.append(now[0])
    busiest = max(sum(1 for t in sent if start <= t < start + 1) for start in sent)
    assert busiest <= PARAMETER_STORE_DEFAULT_TPS // 2
