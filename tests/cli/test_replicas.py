"""``secretsctl replicas check`` after the real replicator ran: every kind of drift found, then repaired."""

from __future__ import annotations

import io
import zipfile

import pytest

from rotation_handlers import replicate
from rotation_handlers.replication import MARKER_TAG_KEY, clients
from secretsctl.errors import EXIT_DIFFERENT, EXIT_ERROR
from tests.cli.params_support import param_run, prefix, value  # noqa: F401

pytestmark = pytest.mark.usefixtures("param_run")

SOURCE, EU, US = "us-east-1", "eu-west-1", "us-west-2"


@pytest.fixture
def replication_env(run, monkeypatch):
    """The replication function's environment, pointed at the emulated AWS; a path of its own."""
    path = prefix()
    env = {
        "AWS_REGION": SOURCE,
        "REPLICA_REGIONS": f"{EU},{US}",
        "REPLICATE_PATHS": path,
        "REPLICA_KMS_KEYS": f'{{"{EU}": "alias/replica-eu"}}',
    }
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    monkeypatch.setenv("AWS_ENDPOINT_URL", run.emulated.endpoint)
    clients.reset()  # the replicator's cached clients must pick up the endpoint
    yield path, env
    clients.reset()


@pytest.fixture
def type_change_refused(monkeypatch):
    """The emulated Parameter Store refuses to change an existing parameter's type, as AWS does
    (``HierarchyTypeMismatchException``; moto allows it):
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html"""
    from moto.ssm.exceptions import SSMException
    from moto.ssm.models import SimpleSystemManagerBackend

    put = SimpleSystemManagerBackend.put_parameter

    def strict(self, name, description, value, parameter_type, allowed_pattern, keyid, overwrite, *a, **kw):
        existing = self.get_parameter(name)
        if overwrite and existing is not None and existing.parameter_type != parameter_type:
            raise SSMException("HierarchyTypeMismatchException", "Parameter type cannot be changed")
        return put(
            self, name, description, value, parameter_type, allowed_pattern, keyid, overwrite, *a, **kw
        )

    monkeypatch.setattr(SimpleSystemManagerBackend, "put_parameter", strict)


def aws_client(run, service: str, region: str):
    import boto3

    return boto3.client(service, endpoint_url=run.emulated.endpoint, region_name=region)


def ssm(run, region: str):
    return aws_client(run, "ssm", region)


def findings(doc: dict) -> dict[tuple[str, str], tuple[str, str]]:
    return {(f["parameter"], f["region"]): (f["kind"], f["detail"]) for f in doc["findings"]}


def test_check_finds_each_kind_of_drift_and_apply_repairs_it(
    run, replication_env, monkeypatch, type_change_refused
) -> None:
    p, env = replication_env
    src, eu, us = ssm(run, SOURCE), ssm(run, EU), ssm(run, US)
    src.put_parameter(Name=f"{p}plain", Value=value("plain"), Type="String")
    src.put_parameter(Name=f"{p}secret", Value=value("secret"), Type="SecureString")
    src.put_parameter(
        Name=f"{p}tagged", Value=value("tagged"), Type="String", Tags=[{"Key": "a", "Value": "1"}]
    )
    src.put_parameter(Name=f"{p}labelled", Value=value("lab"), Type="String")
    src.put_parameter(Name=f"{p}gone", Value=value("gone"), Type="String")
    src.put_parameter(Name=f"{p}tier", Value=value("tier"), Type="String")

    replicate.reconcile_handler({})  # the replicator, as the scheduled rule runs it
    assert run.run("replicas", "check").exit_code == 0  # in sync right after

    eu.delete_parameter(Name=f"{p}plain")  # missing
    us.put_parameter(Name=f"{p}plain", Value=value("drift"), Type="String", Overwrite=True)  # value
    secret_now = us.get_parameter(Name=f"{p}secret", WithDecryption=True)["Parameter"]["Value"]
    with pytest.raises(us.exceptions.ClientError, match="HierarchyTypeMismatchException"):
        us.put_parameter(Name=f"{p}secret", Value=secret_now, Type="String", Overwrite=True)
    us.delete_parameter(Name=f"{p}secret")  # type: the replica re-created as a String (marker kept)
    us.put_parameter(
        Name=f"{p}secret", Value=secret_now, Type="String", Tags=[{"Key": MARKER_TAG_KEY, "Value": SOURCE}]
    )
    eu_secret = eu.get_parameter(Name=f"{p}secret", WithDecryption=True)["Parameter"]["Value"]
    eu.put_parameter(
        Name=f"{p}secret", Value=eu_secret, Type="SecureString", KeyId="alias/other", Overwrite=True
    )  # KMS key
    eu.add_tags_to_resource(
        ResourceType="Parameter", ResourceId=f"{p}tagged", Tags=[{"Key": "x", "Value": "y"}]
    )
    src.label_parameter_version(Name=f"{p}labelled", ParameterVersion=1, Labels=["prod"])  # labels
    src.delete_parameter(Name=f"{p}gone")  # extra: marked replicas whose source is gone
    tier_value = src.get_parameter(Name=f"{p}tier")["Parameter"]["Value"]
    src.put_parameter(Name=f"{p}tier", Value=tier_value, Type="String", Tier="Advanced", Overwrite=True)

    doc = run.json("replicas", "check", expect=EXIT_DIFFERENT)
    assert doc["kind"] == "ReplicaCheck" and doc["sourceRegion"] == SOURCE and doc["applied"] is False
    found = findings(doc)
    assert found[(f"{p}plain", EU)][0] == "missing"
    assert found[(f"{p}plain", US)] == ("different", "value")
    assert found[(f"{p}secret", US)][0] == "different" and "type" in found[(f"{p}secret", US)][1]
    assert found[(f"{p}secret", EU)] == ("different", "kms_key")
    assert found[(f"{p}tagged", EU)] == ("different", "tags differ")
    assert (f"{p}tagged", US) not in found
    assert found[(f"{p}labelled", EU)] == ("different", "labels differ")
    assert found[(f"{p}labelled", US)] == ("different", "labels differ")
    assert found[(f"{p}gone", EU)] == ("extra", "source deleted")
    assert found[(f"{p}gone", US)] == ("extra", "source deleted")
    assert "tier" in found[(f"{p}tier", EU)][1] and "tier" in found[(f"{p}tier", US)][1]
    assert eu.get_parameters(Names=[f"{p}gone"])["Parameters"]  # a check writes nothing

    table = run.run("replicas", "check", expect=EXIT_DIFFERENT).stdout
    assert "missing" in table and "extra" in table and "11 difference(s) found" in table

    repaired = run.json("replicas", "check", "--apply", "--yes")
    assert repaired["applied"] is True and len(repaired["findings"]) == 11
    again = run.json("replicas", "check")
    assert again["findings"] == []
    assert (
        eu.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [f"{p}secret"]}])["Parameters"][0][
            "KeyId"
        ]
        == "alias/replica-eu"
    )
    assert not eu.get_parameters(Names=[f"{p}gone"])["Parameters"]
    assert us.get_parameter(Name=f"{p}secret")["Parameter"]["Type"] == "SecureString"

    # The same check with the configuration read from a deployed replication function.
    function = _deploy_replicator(run, env)
    for key in env:
        if key != "AWS_REGION":
            monkeypatch.delenv(key)
    assert run.json("replicas", "check", "--function", function)["findings"] == []


def test_apply_recreates_a_replica_whose_type_differs(run, replication_env, type_change_refused) -> None:
    p, _ = replication_env
    # the replicator checks that the target's key exists and is Enabled before deleting the replica
    kms = aws_client(run, "kms", EU)
    if not any(a["AliasName"] == "alias/replica-eu" for a in kms.list_aliases()["Aliases"]):
        kms.create_alias(AliasName="alias/replica-eu", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    src, eu = ssm(run, SOURCE), ssm(run, EU)
    name, tags = f"{p}retyped", [{"Key": "team", "Value": "a"}]
    src.put_parameter(Name=name, Value=value("plain"), Type="String", Tags=tags)
    replicate.reconcile_handler({})
    src.delete_parameter(Name=name)  # the only way to change a type: delete, create anew
    src.put_parameter(Name=name, Value=value("secret"), Type="SecureString", Tags=tags)

    found = findings(run.json("replicas", "check", expect=EXIT_DIFFERENT))
    for region in (EU, US):
        assert found[(name, region)] == (
            "different",
            "type String -> SecureString (delete and re-create the replica)",
        )
    repaired = run.json("replicas", "check", "--apply", "--yes")
    assert [f["operations"][:2] for f in repaired["findings"]] == [
        ["delete(type String -> SecureString)", "create(all)"]
    ] * 2
    assert run.json("replicas", "check")["findings"] == []
    meta = eu.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]
    assert (meta["Type"], meta["KeyId"]) == ("SecureString", "alias/replica-eu")
    listed = eu.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    assert {t["Key"]: t["Value"] for t in listed} == {"team": "a", MARKER_TAG_KEY: SOURCE}


def _deploy_replicator(run, env: dict[str, str]) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("placeholder.py", "# configuration only\n")
    lam = run.emulated.client("lambda")
    name = "replicator-" + prefix().strip("/")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role="arn:aws:iam::123456789012:role/rotation-fn-role",
        Handler="rotation_handlers.replicate.reconcile_handler",
        Code={"ZipFile": buf.getvalue()},
        Environment={"Variables": {k: v for k, v in env.items() if k != "AWS_REGION"}},
    )
    return name


def test_check_without_configuration_is_a_clear_error(run, monkeypatch) -> None:
    monkeypatch.delenv("REPLICA_REGIONS", raising=False)
    result = run.run("replicas", "check", expect=EXIT_ERROR)
    assert "replication configuration from the environment: REPLICA_REGIONS is empty" in result.stderr


def test_apply_without_terminal_or_yes_is_refused(run, replication_env) -> None:
    p, _ = replication_env
    ssm(run, SOURCE).put_parameter(Name=f"{p}new", Value=value("n"), Type="String")
    result = run.run("replicas", "check", "--apply", expect=EXIT_ERROR)
    assert "no terminal to confirm on" in result.stderr
    assert not ssm(run, EU).get_parameters(Names=[f"{p}new"])["Parameters"]
