"""A created secret keeps the ``GenerateSecretString`` it was deployed with, so nothing regenerates it.

AWS behaviour: CloudFormation generates a new password whenever ``GenerateSecretString`` of an
``AWS::SecretsManager::Secret`` changes, on an update and on its rollback alike
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-secret.html);
a stack update that fails rolls every updated resource back to its previous properties and deletes the
resources it created (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-monitor-stack.html).
Some of those sequences never invoke the connection-fields custom resource (a rollback that starts
before its Create, a Create that dies before its first write), so only a property that never changes
keeps the password the database knows on every path.

``fixtures/earlier-rotation-template.json`` holds the created secrets of the template the version of
this app before the connection-fields resource synthesized for ``config/example.json`` (the fields
templated into ``GenerateSecretString``, the master secret's ARN through ``Fn::Join``); the logical ids
are the ones this version gives the same entries.

The deployed stack is read with DescribeStacks and GetTemplate; moto's CloudFormation needs extras
this project does not install, so a botocore ``before-call`` hook answers as the API reference
documents (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html:
``TemplateBody``, which botocore decodes from JSON; a missing stack is a ``ValidationError``
"Stack with id ... does not exist").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from infra import created_secrets, record_created_secrets
from infra.config import ConfigError, load_config
from infra.created_secrets import CreatedSecretsRecord
from infra.secret_fields import PASSWORD_ONLY_GENERATOR, generator_fingerprint
from infra.secret_fields_handler import index
from infra.stacks import add_stacks, secret_names_file
from tests.infra.cfn_harness import (
    KNOWN,
    STACK_ID,
    Context,
    FakeClock,
    LambdaKilled,
    Stack,
    _current,
    _props,
    regenerate,
)
from tests.infra.conftest import EXAMPLE, NO_BUNDLING, resources
from tests.infra.secrets_manager_as_aws import labels_as_aws_documents  # noqa: F401 - autouse fixture

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EARLIER: dict[str, Any] = json.loads((FIXTURES / "earlier-rotation-template.json").read_text())
STACK = "SecretsRotation-example"
ENTRIES = {
    "payments-master": "PaymentsMasterSecretBE4DCC85",
    "payments-app": "PaymentsAppSecret33A1B351",
    "reports-app": "ReportsAppSecret2D7FF320",
}


def _earlier(entry: str) -> dict[str, Any]:
    return EARLIER["Resources"][ENTRIES[entry]]["Properties"]["GenerateSecretString"]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A copy of the example configuration with no record of its created secrets."""
    path = tmp_path / "example.json"
    shutil.copy(EXAMPLE, path)
    shutil.copy(EXAMPLE.parent / "schema.json", tmp_path / "schema.json")
    return path


class DeployedStack:
    """CloudFormation's answers for the rotation stack, on a boto3 session's event system."""

    def __init__(self, session: boto3.Session, status: str | None, template: dict[str, Any]) -> None:
        self.status, self.template = status, template
        self.calls: list[str] = []
        session.events.register("before-call.cloudformation.DescribeStacks", self._describe)
        session.events.register("before-call.cloudformation.GetTemplate", self._template)

    def _describe(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.calls.append("DescribeStacks")
        assert params["body"]["StackName"] == STACK
        if self.status is None:
            error = {"Code": "ValidationError", "Message": f"Stack with id {STACK} does not exist"}
            return AWSResponse("", 400, {}, None), {"Error": error, "ResponseMetadata": {}}
        stack = {"StackName": STACK, "StackStatus": self.status, "CreationTime": dt.datetime(2026, 1, 1)}
        return AWSResponse("", 200, {}, None), {"Stacks": [stack], "ResponseMetadata": {}}

    def _template(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.calls.append("GetTemplate")
        assert (params["body"]["StackName"], params["body"]["TemplateStage"]) == (STACK, "Original")
        body = json.dumps(self.template)  # as sent; botocore's after-call handler decodes JSON
        return AWSResponse("", 200, {}, None), {"TemplateBody": body, "ResponseMetadata": {}}


@pytest.fixture
def aws(sm: Any) -> Callable[..., tuple[boto3.Session, DeployedStack]]:
    """A session (moto's STS answers for account 123456789012) with the deployed stack's answers."""

    def make(status: str | None = "UPDATE_COMPLETE", template: dict[str, Any] = EARLIER) -> Any:
        session = boto3.Session(region_name="eu-west-1")
        return session, DeployedStack(session, status, template)

    return make


def _record(path: Path) -> CreatedSecretsRecord:
    return CreatedSecretsRecord.load(secret_names_file(path))


def _synth(path: Path, *, nag: bool = False) -> dict[str, Any]:
    app = cdk.App(context=NO_BUNDLING)
    stacks = add_stacks(app, load_config(path), nag=nag, secret_names=secret_names_file(path))
    assembly = app.synth()
    return assembly.get_stack_by_name(stacks[0].stack_name).template


def _generators(template: dict[str, Any]) -> dict[str, Any]:
    return {
        lid: res["Properties"]["GenerateSecretString"]
        for lid, res in resources(template, "AWS::SecretsManager::Secret").items()
    }


# -- synth never guesses ------------------------------------------------------------------------


@pytest.mark.parametrize("record", ["none", "names-only"])
def test_synth_refuses_a_created_secret_whose_deployed_generator_is_unknown(
    config_path: Path, record: str
) -> None:
    """No record, or one kept before generators were (names only): the stack may hold the secrets
    with an earlier generator, and only the deployed template says which."""
    path = secret_names_file(config_path)
    if record == "names-only":
        names = _names(config_path)
        path.write_text(json.dumps({"secretNames": names}))
    before = path.read_bytes() if path.exists() else None
    with pytest.raises(ConfigError) as info:
        _synth(config_path)
    (error,) = info.value.errors
    assert "'payments-master', 'payments-app', 'reports-app'" in error
    assert f"python -m infra.record_created_secrets --config {config_path}" in error
    assert "--not-deployed" in error
    assert (path.read_bytes() if path.exists() else None) == before  # nothing recorded


def _names(config_path: Path) -> dict[str, str]:
    """Entry -> secretName of every secret the configuration creates."""
    raw = json.loads(config_path.read_text())
    return {s["name"]: s["create"]["secretName"] for s in raw["rotation"]["secrets"] if "create" in s}


def test_the_earlier_generators_are_recorded_from_the_deployed_stack_and_kept_verbatim(
    config_path: Path, aws: Any
) -> None:
    session, deployed = aws()
    out = record_created_secrets.record_from_deployed(str(config_path), session=session, not_deployed=False)
    assert deployed.calls == ["DescribeStacks", "GetTemplate"]
    assert "payments-app: deployed, earlier generator kept verbatim" in out
    record = _record(config_path)
    assert record.generators == {entry: _earlier(entry) for entry in ENTRIES}
    assert record.names == _names(config_path)

    template = _synth(config_path, nag=True)  # reads the record only (no AWS call); cdk-nag passes
    assert deployed.calls == ["DescribeStacks", "GetTemplate"]
    rendered = _generators(template)
    for entry, lid in ENTRIES.items():
        # Byte-identical, intrinsic functions included: CloudFormation sees no change to regenerate on.
        assert json.dumps(rendered[lid], sort_keys=True) == json.dumps(_earlier(entry), sort_keys=True)
    fields = resources(template, "Custom::SecretConnectionFields")
    (app_fields,) = [r for lid, r in fields.items() if lid.startswith("ConnectionFieldsPaymentsAppSecret")]
    generator = json.loads(app_fields["Properties"]["Generator"])
    # The custom resource can still read which keys that generator produces.
    assert set(json.loads(generator["SecretStringTemplate"])) == {
        "engine",
        "host",
        "port",
        "username",
        "dbname",
        "masterarn",
    }
    # And the next synth changes nothing (the record is stable).
    content = secret_names_file(config_path).read_bytes()
    _synth(config_path)
    assert secret_names_file(config_path).read_bytes() == content


@pytest.mark.parametrize("status", [None, "ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"])
def test_a_stack_holding_no_secret_records_this_apps_generator(
    config_path: Path, aws: Any, status: str | None
) -> None:
    session, deployed = aws(status=status)
    out = record_created_secrets.record_from_deployed(str(config_path), session=session, not_deployed=False)
    assert deployed.calls == ["DescribeStacks"]
    assert "payments-app: not deployed yet" in out
    assert _record(config_path).generators == dict.fromkeys(ENTRIES, PASSWORD_ONLY_GENERATOR)
    assert all(g == PASSWORD_ONLY_GENERATOR for g in _generators(_synth(config_path)).values())


def test_a_stack_deployed_by_this_version_is_recorded_as_it_is(config_path: Path, aws: Any) -> None:
    """A secret deployed later than the earlier template (password-only), and one the stack does not
    hold yet: both get this app's generator; only what the template says is believed."""
    template = json.loads(json.dumps(EARLIER))
    template["Resources"][ENTRIES["payments-app"]]["Properties"]["GenerateSecretString"] = (
        PASSWORD_ONLY_GENERATOR
    )
    del template["Resources"][ENTRIES["reports-app"]]
    session, _ = aws(template=template)
    record_created_secrets.record_from_deployed(str(config_path), session=session, not_deployed=False)
    assert _record(config_path).generators == {
        "payments-master": _earlier("payments-master"),
        "payments-app": PASSWORD_ONLY_GENERATOR,
        "reports-app": PASSWORD_ONLY_GENERATOR,
    }


def test_not_deployed_makes_no_aws_call(config_path: Path, aws: Any) -> None:
    session, deployed = aws()

    def no_call(**kwargs: Any) -> None:
        raise AssertionError(f"an AWS call: {kwargs.get('event_name')}")

    session.events.register("before-call.*.*", no_call)
    record_created_secrets.record_from_deployed(str(config_path), session=session, not_deployed=True)
    assert deployed.calls == []
    assert _record(config_path).generators == dict.fromkeys(ENTRIES, PASSWORD_ONLY_GENERATOR)


@pytest.mark.parametrize(
    "status", ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"]
)
def test_an_unsettled_stack_is_refused_and_nothing_is_recorded(
    config_path: Path, aws: Any, status: str, capsys: pytest.CaptureFixture[str]
) -> None:
    session, deployed = aws(status=status)
    assert record_created_secrets.main(["--config", str(config_path)], session=session) == 3
    err = capsys.readouterr().err
    assert f"stack {STACK} is {status}" in err
    assert deployed.calls == ["DescribeStacks"]
    assert not secret_names_file(config_path).exists()


def test_credentials_for_another_account_are_refused(
    config_path: Path, aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    session, deployed = aws()

    def another_account(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        identity = {"Account": "111122223333", "Arn": "arn:aws:iam::111122223333:user/x", "UserId": "X"}
        return AWSResponse("", 200, {}, None), {**identity, "ResponseMetadata": {}}

    session.events.register("before-call.sts.GetCallerIdentity", another_account)
    assert record_created_secrets.main(["--config", str(config_path)], session=session) == 3
    assert "the credentials are for account 111122223333" in capsys.readouterr().err
    assert deployed.calls == []
    assert not secret_names_file(config_path).exists()


def test_a_new_entry_of_a_kept_record_gets_this_apps_generator_and_a_removed_one_is_forgotten(
    config_path: Path, aws: Any
) -> None:
    session, _ = aws()
    record_created_secrets.record_from_deployed(str(config_path), session=session, not_deployed=False)
    raw = json.loads(config_path.read_text())
    entry = next(s for s in raw["rotation"]["secrets"] if s["name"] == "reports-app")
    raw["rotation"]["secrets"].remove(entry)
    entry = {
        **entry,
        "name": "reports-app2",
        "create": {**entry["create"], "secretName": "prod/reports/app2"},
    }
    raw["rotation"]["secrets"].append(entry)
    config_path.write_text(json.dumps(raw))
    _synth(config_path)  # no lookup needed: the record keeps generators, so the entry is new
    generators = _record(config_path).generators
    assert generators == {
        "payments-master": _earlier("payments-master"),
        "payments-app": _earlier("payments-app"),
        "reports-app2": PASSWORD_ONLY_GENERATOR,
    }


def test_a_kept_generator_whose_reference_is_gone_is_refused(config_path: Path, aws: Any) -> None:
    session, _ = aws()
    record_created_secrets.record_from_deployed(str(config_path), session=session, not_deployed=False)
    path = secret_names_file(config_path)
    content = json.loads(path.read_text())
    join = content["generateSecretString"]["payments-app"]["SecretStringTemplate"]["Fn::Join"]
    join[1][1] = {"Ref": "RetiredMasterSecret0123ABCD"}
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError) as info:
        _synth(config_path)
    (error,) = info.value.errors
    assert "refers to RetiredMasterSecret0123ABCD" in error


# -- every sequence of the upgrade deploy -------------------------------------------------------
#
# The upgrade deploy from the earlier template, replayed as CloudFormation documents it: the secret
# is updated first (the connection-fields resource depends on it), regenerating exactly when its
# GenerateSecretString changes; then the resource is created; a failure anywhere rolls the secret
# back to its previous properties (regenerating again exactly when they differ) and deletes the
# created resource in the cleanup phase. The handler answers the resource's requests.

SEQUENCES = [
    "succeeds",
    "secret-update-fails",  # or another resource fails before the resource's Create is invoked
    "create-dies-before-its-first-write",
    "create-dies-after-its-write",
    "create-fails",
    "fails-after-create",
]


def _template_of(generator: dict[str, Any]) -> dict[str, Any]:
    """The keys and values a generator's template produces (intrinsic functions as placeholders)."""
    return json.loads(json.loads(generator_fingerprint(generator))["SecretStringTemplate"])


def _update_secret(stack: Stack, before: dict[str, Any], after: dict[str, Any]) -> None:
    if json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True):
        regenerate(stack.sm, stack.arn, _template_of(after))


@pytest.fixture(scope="module")
def upgrade_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What this version synthesizes for the example once the earlier generators are recorded (as
    the recording step, tested above, writes them)."""
    path = tmp_path_factory.mktemp("upgrade") / "example.json"
    shutil.copy(EXAMPLE, path)
    shutil.copy(EXAMPLE.parent / "schema.json", path.parent / "schema.json")
    generators = {entry: _earlier(entry) for entry in ENTRIES}
    created_secrets.updated(load_config(path), generators).save(secret_names_file(path))
    return _synth(path)


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_no_sequence_of_the_upgrade_deploy_changes_the_password(
    upgrade_template: dict[str, Any], sm: Any, other: Any, cfn_client: Any, clock: FakeClock, sequence: str
) -> None:
    new_template = upgrade_template
    old = _earlier("payments-app")
    new = _generators(new_template)[ENTRIES["payments-app"]]
    fields_props = next(
        r["Properties"]
        for lid, r in resources(new_template, "Custom::SecretConnectionFields").items()
        if lid.startswith("ConnectionFieldsPaymentsAppSecret")
    )
    deployed_value = {
        **_template_of(old),
        "masterarn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:m",
    }
    arn = other.create_secret(
        Name="prod/payments/app", SecretString=json.dumps({**deployed_value, "password": KNOWN})
    )["ARN"]
    stack = Stack(sm, cfn_client, arn, clock)
    props = _props(arn, generator=fields_props["Generator"])

    def rollback(physical_id: str | None = None, cleanup: bool = True) -> None:
        stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        _update_secret(stack, new, old)
        if cleanup:
            stack.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
            stack.physical_id = physical_id
            assert stack.request("Delete", props)["Status"] == "SUCCESS"
        stack.status = "UPDATE_ROLLBACK_COMPLETE"

    stack.status = "UPDATE_IN_PROGRESS"
    _update_secret(stack, old, new)
    if sequence == "succeeds":
        assert stack.request("Create", props)["Status"] == "SUCCESS"
    elif sequence == "secret-update-fails":
        rollback(cleanup=False)  # the resource was never created: no request at all
    elif sequence in ("create-dies-before-its-first-write", "create-dies-after-its-write"):

        def killed(**_: Any) -> None:
            raise LambdaKilled

        def no_answer(_url: str, _body: bytes) -> None:
            raise LambdaKilled

        if sequence == "create-dies-before-its-first-write":
            sm.meta.events.register("before-call.secretsmanager.*", killed)
        event = {
            "RequestType": "Create",
            "ResponseURL": "https://cloudformation-custom-resource-response.example/presigned",
            "StackId": STACK_ID,
            "RequestId": "create-1",
            "ResourceType": "Custom::SecretConnectionFields",
            "LogicalResourceId": "AppSecretFields",
            "ResourceProperties": props,
        }
        with pytest.raises(LambdaKilled):
            index.handler(event, Context(clock), client=sm, send=no_answer)
        sm.meta.events.unregister("before-call.secretsmanager.*", killed)
        rollback("secrets-AppSecretFields-1RZ3Q8X0ABCDE")  # an id CloudFormation made up
    elif sequence == "create-fails":

        def denied(**_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutSecretValue")

        sm.meta.events.register("before-call.secretsmanager.PutSecretValue", denied)
        assert stack.request("Create", props)["Status"] == "FAILED"
        sm.meta.events.unregister("before-call.secretsmanager.PutSecretValue", denied)
        rollback(stack.physical_id)
    else:  # fails-after-create
        assert stack.request("Create", props)["Status"] == "SUCCESS"
        rollback(stack.physical_id)
    assert _current(other, arn)["password"] == KNOWN
    assert _current(other, arn)["username"] == deployed_value["username"]

    # The deploy tried again, and this time it succeeds.
    if sequence != "succeeds":
        stack.status = "UPDATE_IN_PROGRESS"
        stack.update_started += dt.timedelta(seconds=5)
        _update_secret(stack, old, new)
        assert stack.request("Create", props)["Status"] == "SUCCESS"
    assert _current(other, arn)["password"] == KNOWN
    assert _current(other, arn)["host"] == json.loads(props["Fields"])["host"]


def test_a_configuration_creating_no_secret_needs_no_record(config_path: Path) -> None:
    raw = json.loads(config_path.read_text())
    raw["rotation"]["secrets"] = [s for s in raw["rotation"]["secrets"] if "create" not in s]
    config_path.write_text(json.dumps(raw))
    _synth(config_path)
    assert not secret_names_file(config_path).exists()


def test_cdk_synth_stops_with_the_command_to_run(config_path: Path) -> None:
    """``app.py`` as the CDK CLI runs it: exit 2 and the problem on stderr, no template written."""
    outdir = config_path.parent / "cdk.out"
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({"config": str(config_path), **NO_BUNDLING}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=EXAMPLE.parents[1],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"python -m infra.record_created_secrets --config {config_path}" in done.stderr
    assert not list(outdir.glob("*.template.json"))


def test_check_passes_on_a_matching_record_and_writes_nothing(
    config_path: Path, aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    session, _ = aws()
    record_created_secrets.record_from_deployed(str(config_path), session=session, not_deployed=False)
    content = secret_names_file(config_path).read_bytes()
    assert record_created_secrets.main(["--config", str(config_path), "--check"], session=session) == 0
    assert "matches stack SecretsRotation-example (3 deployed created secret(s))" in capsys.readouterr().out
    assert secret_names_file(config_path).read_bytes() == content


@pytest.mark.parametrize("record", ["not-deployed", "names-only"])
def test_check_finds_a_record_that_would_regenerate_a_deployed_password(
    config_path: Path, aws: Any, capsys: pytest.CaptureFixture[str], record: str
) -> None:
    """``--not-deployed`` given for a stack that holds the secrets, or a record from before generators
    were kept: a pipeline stops before the deploy that would regenerate them."""
    session, deployed = aws()
    path = secret_names_file(config_path)
    if record == "not-deployed":
        record_created_secrets.record_from_deployed(str(config_path), not_deployed=True)
    else:
        names = _names(config_path)
        path.write_text(json.dumps({"secretNames": names}))
    content = path.read_bytes()
    assert record_created_secrets.main(["--config", str(config_path), "--check"], session=session) == 4
    err = capsys.readouterr().err
    assert f"does not match stack {STACK}" in err
    for entry in ENTRIES:
        reason = "a deploy would regenerate its password" if record == "not-deployed" else "not recorded"
        assert f"  {entry}: " in err and reason in err
    assert deployed.calls == ["DescribeStacks", "GetTemplate"]
    assert path.read_bytes() == content
