"""The connection-fields custom resource driven through CloudFormation's documented lifecycle (moto).

What CloudFormation does, as documented, and what these tests replay with the handler's own code:

* Request types Create, Update (``ResourceProperties`` new, ``OldResourceProperties`` old) and
  Delete: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-create.html,
  .../crpg-ref-requesttypes-update.html, .../crpg-ref-requesttypes-delete.html.
* A failed update rolls back: resources updated in it get an Update back to their previous
  properties (a custom resource whose Update failed gets a second Update with
  ``ResourceProperties=OLD`` and ``OldResourceProperties=NEW``) while the stack is
  ``UPDATE_ROLLBACK_IN_PROGRESS``; resources created in the failed update are deleted afterwards,
  while the stack is ``UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS``
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-monitor-stack.html,
  https://repost.aws/knowledge-center/cloudformation-stack-cleanup-stuck; CloudFormation internals as
  recorded by the CDK team: https://github.com/aws/aws-cdk/blob/main/docs/CLOUDFORMATION.md). A failed
  delete in a cleanup phase is retried.
* The stack status is read with DescribeStacks
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html); moto
  has no stack here, so a botocore ``before-call`` hook answers as AWS documents.
* ``AWS::SecretsManager::Secret`` generates a new password whenever a property of
  ``GenerateSecretString`` changes on update, in either direction (the rollback too):
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-secret.html.
  ``regenerate`` below writes what that produces: a new AWSCURRENT version (AWSPREVIOUS follows).
* Moving AWSCURRENT names the version it is taken from; "if the version ID does not match, the
  operation fails" (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html);
  moto 5.2.5 refuses the same way.
* A rotation: createSecret puts AWSPENDING from AWSCURRENT; setSecret refuses a pending version whose
  host differs from the current one (``rotation_handlers.strategies.base.require_same_target``);
  finishSecret moves AWSCURRENT to it (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda-functions.html).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.secret_fields_handler import index
from tests.infra.cfn_harness import (
    BREAK_GLASS,
    FIELDS,
    GENERATOR,
    KNOWN,
    LEGACY,
    REGION,
    ROLLBACK_CLEANUP,
    ROTATED,
    STACK_ID,
    Context,
    FakeClock,
    LambdaKilled,
    Stack,
    _current,
    _legacy_secret,
    _props,
    _stages,
    _upgraded,
    finish_rotation,
    regenerate,
    start_rotation,
)
from tests.infra.conftest import Synth, resources
from tests.infra.secrets_manager_as_aws import labels_as_aws_documents  # noqa: F401 - autouse fixture


def _retried_delete_then_upgraded_again(stack: Stack, other: Any) -> None:
    """After a rolled-back upgrade's cleanup Delete restored the known password: CloudFormation retries
    the Delete and nothing changes; then the upgrade, deployed again (a new update, so a later
    ``LastUpdatedTime``), is recognised again and keeps the known password."""
    arn = stack.arn
    versions = len(other.list_secret_version_ids(SecretId=arn)["Versions"])
    assert stack.request("Delete", _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn) == {**LEGACY, "password": KNOWN}
    assert len(other.list_secret_version_ids(SecretId=arn)["Versions"]) == versions
    stack.status = "UPDATE_IN_PROGRESS"
    stack.update_started += dt.timedelta(seconds=5)
    _upgraded(stack)
    assert _current(other, arn) == {**FIELDS, "username": "app", "password": KNOWN}


# -- the upgrade deploy and every way it can end ------------------------------------------------


def test_upgrade_deploy_keeps_the_known_password(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    assert _current(other, arn) == {**FIELDS, "username": "app", "password": KNOWN}
    stack.status = "UPDATE_COMPLETE"  # a later deploy that changes a field
    stack.status = "UPDATE_IN_PROGRESS"
    assert stack.request("Update", _props(arn, host="db2.internal"), _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn) == {**FIELDS, "host": "db2.internal", "username": "app", "password": KNOWN}


def test_upgrade_rolled_back_after_the_fields_were_written(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """Another resource of the upgrade deploy fails: the secret goes back to the old generator (another
    new password), then the resource created in the failed update is deleted in the cleanup."""
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    regenerate(other, arn, LEGACY)
    stack.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
    assert stack.request("Delete", _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn) == {**LEGACY, "password": KNOWN}
    _retried_delete_then_upgraded_again(stack, other)


def test_upgrade_whose_own_create_fails_is_rolled_back_to_the_known_password(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    regenerate(other, arn, {})

    def denied(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutSecretValue")

    sm.meta.events.register("before-call.secretsmanager.PutSecretValue", denied)
    assert stack.request("Create", _props(arn))["Status"] == "FAILED"
    sm.meta.events.unregister("before-call.secretsmanager.PutSecretValue", denied)
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    regenerate(other, arn, LEGACY)
    stack.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
    assert stack.request("Delete", _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn) == {**LEGACY, "password": KNOWN}


def test_upgrade_rolled_back_after_a_rotation_keeps_the_rotated_password(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """A rotation finishes between the upgrade's Create and the rollback: its password is the one kept."""
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    finish_rotation(other, arn, start_rotation(other, arn))
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    regenerate(other, arn, LEGACY)
    stack.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
    assert stack.request("Delete", _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn) == {**LEGACY, "password": ROTATED}


def test_a_retried_update_after_a_generator_change_restores_once(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    new_generator = GENERATOR.replace("32", "40")
    regenerate(other, arn, {})
    assert stack.request("Update", _props(arn, new_generator), _props(arn))["Status"] == "SUCCESS"
    finish_rotation(other, arn, start_rotation(other, arn))
    # The same request delivered again (an invocation retried by Lambda): the rotation is kept.
    assert stack.request("Update", _props(arn, new_generator), _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn)["password"] == ROTATED


def test_a_fresh_secret_is_created_and_its_failed_stack_creation_rolled_back(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """Stack creation: the secret with its generated password, then the resource; a later failure
    deletes the resource (ROLLBACK_IN_PROGRESS) and the password stays as generated."""
    arn = other.create_secret(Name="prod/new", SecretString=json.dumps({"password": KNOWN}))["ARN"]
    stack = Stack(sm, cfn_client, arn, clock)
    stack.status = "CREATE_IN_PROGRESS"
    response = stack.request("Create", _props(arn))
    assert response["Status"] == "SUCCESS" and response["PhysicalResourceId"] == f"{arn}|connection-fields"
    assert _current(other, arn) == {**FIELDS, "username": "app", "password": KNOWN}
    stack.status = "ROLLBACK_IN_PROGRESS"
    assert stack.request("Delete", _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn) == {**FIELDS, "username": "app", "password": KNOWN}


def test_stack_delete_and_removal_from_the_template_change_nothing(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    finish_rotation(other, arn, start_rotation(other, arn))
    # A later update (started after the rotation) rolled back; then the stack is deleted.
    stack.update_started += dt.timedelta(seconds=5)
    for status in ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", ROLLBACK_CLEANUP, "DELETE_IN_PROGRESS"):
        stack.status = status
        assert stack.request("Delete", _props(arn))["Status"] == "SUCCESS"
        assert _current(other, arn)["password"] == ROTATED


def test_a_generator_change_and_its_rollback_keep_the_known_password(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """Should the generator's settings ever change, the resource's Generator property changes with them:
    the Update right after the regeneration restores the password, and so does the rollback Update."""
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    new_generator = GENERATOR.replace("32", "40")
    regenerate(other, arn, {})
    assert stack.request("Update", _props(arn, new_generator), _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn)["password"] == KNOWN
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    regenerate(other, arn, {})
    assert stack.request("Update", _props(arn), _props(arn, new_generator))["Status"] == "SUCCESS"
    assert _current(other, arn) == {**FIELDS, "username": "app", "password": KNOWN}


def test_a_later_break_glass_password_is_kept_on_the_next_field_change(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """An operator resets the password and stores it alone (break-glass): no deploy replaces it."""
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    other.put_secret_value(SecretId=arn, SecretString=json.dumps({"password": BREAK_GLASS}))
    assert stack.request("Update", _props(arn, host="db2.internal"), _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn)["password"] == BREAK_GLASS
    assert _current(other, arn)["host"] == "db2.internal"


# -- the function dies after its upgrade write, before CloudFormation hears of it ------------------
#
# A Lambda timeout or crash sends no answer: CloudFormation fails the resource at its ServiceTimeout
# and rolls the update back ("If no response is received before the timeout period ends, the request
# is considered unsuccessful, and the stack operation fails":
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref.html). The rollback
# regenerates the secret (the old GenerateSecretString), then deletes the resource in the cleanup.
# That Delete cannot carry the physical id the function meant to return: the Delete reference
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-delete.html)
# only says PhysicalResourceId is "provider-defined", and for a resource that never answered
# CloudFormation sends one it generated itself (reported in
# https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/1814, labelled
# "documentation", and documented for CDK users in https://github.com/aws/aws-cdk/pull/36951:
# "CloudFormation will send you a fake physical identifier"). So the Delete below gets an opaque id
# (or none at all), never the ``|upgraded-from|`` mark.

CFN_GENERATED_IDS = ("secrets-AppSecretFields-1RZ3Q8X0ABCDE", None)


def _create_event(arn: str, props: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "RequestType": "Create",
        "ResponseURL": "https://cloudformation-custom-resource-response.example/presigned",
        "StackId": STACK_ID,
        "RequestId": "create-request-1",
        "ResourceType": "Custom::SecretConnectionFields",
        "LogicalResourceId": "AppSecretFields",
        "ResourceProperties": props or _props(arn),
    }


def _killed_upgrade_create(stack: Stack, sm: Any, *, before_publish: bool) -> None:
    """The upgrade deploy's Create writes, then dies: after its move of AWSCURRENT (while answering)
    or between staging the value and moving AWSCURRENT to it. CloudFormation receives nothing."""

    def killed(**_: Any) -> None:
        raise LambdaKilled

    def no_answer(_url: str, _body: bytes) -> None:
        raise LambdaKilled

    regenerate(stack.sm, stack.arn, {})
    if before_publish:
        sm.meta.events.register("before-call.secretsmanager.UpdateSecretVersionStage", killed)
    with pytest.raises(LambdaKilled):
        index.handler(_create_event(stack.arn), Context(stack.clock), client=sm, send=no_answer)
    if before_publish:
        sm.meta.events.unregister("before-call.secretsmanager.UpdateSecretVersionStage", killed)


@pytest.mark.parametrize("physical_id", CFN_GENERATED_IDS)
@pytest.mark.parametrize("before_publish", [False, True], ids=["after-publish", "before-publish"])
def test_an_upgrade_create_killed_after_its_write_is_undone_by_the_cleanup_delete(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock, physical_id: str | None, before_publish: bool
) -> None:
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _killed_upgrade_create(stack, sm, before_publish=before_publish)
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"  # the custom resource timed out: CREATE_FAILED
    regenerate(other, arn, LEGACY)
    stack.status = ROLLBACK_CLEANUP
    stack.physical_id = physical_id
    response = stack.request("Delete", _props(arn))
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert _current(other, arn) == {**LEGACY, "password": KNOWN}
    _retried_delete_then_upgraded_again(stack, other)


def test_a_killed_upgrade_create_then_a_rotation_keeps_the_rotated_password(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """A rotation finishes before the rollback: the cleanup Delete writes the rotation's password."""
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _killed_upgrade_create(stack, sm, before_publish=False)
    finish_rotation(other, arn, start_rotation(other, arn))
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    regenerate(other, arn, LEGACY)
    stack.status = ROLLBACK_CLEANUP
    stack.physical_id = CFN_GENERATED_IDS[0]
    assert stack.request("Delete", _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn) == {**LEGACY, "password": ROTATED}


def test_a_later_rolled_back_update_ignores_an_earlier_upgrade_write(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """The upgrade succeeded long ago; a later update whose new resource is deleted in its cleanup
    (with an id CloudFormation generated) must not treat that old write as its own."""
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    other.put_secret_value(SecretId=arn, SecretString=json.dumps({"password": BREAK_GLASS}))
    stack.update_started += dt.timedelta(seconds=5)
    stack.status = ROLLBACK_CLEANUP
    stack.physical_id = CFN_GENERATED_IDS[0]
    assert stack.request("Delete", _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn) == {"password": BREAK_GLASS}


def test_a_retried_upgrade_create_after_a_kill_publishes_the_same_write_once(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """CloudFormation does not retry a Create, but the same event delivered again must be harmless:
    it finishes the interrupted write (the known password) instead of keeping the regenerated one."""
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _killed_upgrade_create(stack, sm, before_publish=True)
    versions = len(other.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"])
    sent: list[bytes] = []
    response = index.handler(_create_event(arn), Context(clock), client=sm, send=lambda _u, b: sent.append(b))
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert len(sent) == 1 and KNOWN not in sent[0].decode()
    assert _current(other, arn) == {**FIELDS, "username": "app", "password": KNOWN}
    assert len(other.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]) == versions
    # And once more after it was published: unchanged.
    response = index.handler(_create_event(arn), Context(clock), client=sm, send=lambda _u, b: None)
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert _current(other, arn) == {**FIELDS, "username": "app", "password": KNOWN}
    assert len(other.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]) == versions


@pytest.mark.parametrize("delete_first", [False, True], ids=["delete-after", "delete-during"])
def test_an_upgrade_create_cancelled_while_the_rollback_regenerates_keeps_the_known_password(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock, delete_first: bool
) -> None:
    """Another resource fails while the Create still runs: CloudFormation cancels it ("Resource creation
    cancelled") and rolls back at once, so the secret's regeneration (and even the cleanup Delete, with
    an id CloudFormation generated) can land between the Create's staging and its move of AWSCURRENT
    (https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/1730)."""
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    regenerate(other, arn, {})
    interleaved: list[str] = []

    def rollback_now(**_: Any) -> None:
        if interleaved:
            return
        interleaved.append("rollback")
        stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        regenerate(other, arn, LEGACY)
        if delete_first:
            stack.status = ROLLBACK_CLEANUP
            stack.physical_id = CFN_GENERATED_IDS[0]
            assert stack.request("Delete", _props(arn))["Status"] == "SUCCESS"

    sm.meta.events.register("before-call.secretsmanager.UpdateSecretVersionStage", rollback_now)
    # The new template's fields differ from the earlier one's (here: the database name), so the
    # Create has something to write on whatever AWSCURRENT it finds.
    event = _create_event(arn, _props(arn, dbname="app2"))
    index.handler(event, Context(clock), client=sm, send=lambda _u, _b: None)
    sm.meta.events.unregister("before-call.secretsmanager.UpdateSecretVersionStage", rollback_now)
    assert interleaved
    stack.status = ROLLBACK_CLEANUP
    stack.physical_id = CFN_GENERATED_IDS[0]
    assert stack.request("Delete", _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn) == {**LEGACY, "password": KNOWN}


def test_an_old_upgrade_write_does_not_reopen_the_upgrade_for_a_recreated_resource(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """Long after a successful upgrade (two rotations later) an operator stores a break-glass password
    alone, and a later deploy re-creates the resource (a new logical id): that Create is not the
    interrupted upgrade Create and must keep the break-glass password."""
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    finish_rotation(other, arn, start_rotation(other, arn))
    finish_rotation(other, arn, start_rotation(other, arn, password=ROTATED + "2"))
    other.put_secret_value(SecretId=arn, SecretString=json.dumps({"password": BREAK_GLASS}))
    event = {**_create_event(arn), "LogicalResourceId": "AppSecretFieldsRenamed"}
    response = index.handler(event, Context(clock), client=sm, send=lambda _u, _b: None)
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert _current(other, arn)["password"] == BREAK_GLASS


def test_a_delete_that_cannot_read_the_stack_fails_only_after_an_upgrade_write(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """Without the stack's status a cleanup Delete cannot be told from a stack deletion: with an upgrade
    write on the secret it fails (CloudFormation retries a cleanup Delete); without one it succeeds."""

    def unreadable(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "DescribeStacks")

    plain = other.create_secret(Name="prod/new", SecretString=json.dumps({"password": KNOWN}))["ARN"]
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _killed_upgrade_create(stack, sm, before_publish=False)
    cfn_client.meta.events.register_first("before-call.cloudformation.DescribeStacks", unreadable)
    stack.physical_id = CFN_GENERATED_IDS[0]
    response = stack.request("Delete", _props(arn))
    assert response["Status"] == "FAILED" and "DescribeStacks" in response["Reason"]
    assert stack.request("Delete", _props(plain))["Status"] == "SUCCESS"


# -- rotations: pending versions, concurrency --------------------------------------------------


def test_a_rollback_update_completes_while_a_rotation_is_pending(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    assert stack.request("Update", _props(arn, host="db2.internal"), _props(arn))["Status"] == "SUCCESS"
    start_rotation(other, arn)  # a rotation that failed and left AWSPENDING behind
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"  # a later resource of the deploy failed
    response = stack.request("Update", _props(arn), _props(arn, host="db2.internal"))
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert _current(other, arn) == {**FIELDS, "username": "app", "password": KNOWN}


def test_a_forward_update_waits_for_a_running_rotation_then_writes_on_its_result(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    token = start_rotation(other, arn)
    clock.on_sleep.append(
        lambda: finish_rotation(other, arn, token) if _stages(other, arn).get(token) else None
    )
    assert stack.request("Update", _props(arn, dbname="app2"), _props(arn))["Status"] == "SUCCESS"
    assert _current(other, arn) == {**FIELDS, "dbname": "app2", "username": "app", "password": ROTATED}


def test_a_forward_update_is_refused_while_a_rotation_stays_pending(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    start_rotation(other, arn)
    before = _current(other, arn)
    response = stack.request("Update", _props(arn, dbname="app2"), _props(arn), timeout_ms=60_000)
    assert response["Status"] == "FAILED"
    assert "rotation of the secret is in progress" in response["Reason"]
    assert _current(other, arn) == before
    assert 0 < clock.sleeps


def test_a_rotation_starting_right_after_the_check_is_neither_wedged_nor_reverted(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    """createSecret runs between the handler's check and its write; the rotation then completes."""
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    tokens: list[str] = []

    def rotation_starts(**_: Any) -> None:
        if not tokens:
            tokens.append(start_rotation(other, arn))

    def rotation_continues() -> None:
        if tokens and "AWSPENDING" in _stages(other, arn).get(tokens[0], []):
            finish_rotation(other, arn, tokens[0])

    sm.meta.events.register("before-call.secretsmanager.PutSecretValue", rotation_starts)
    clock.on_sleep.append(rotation_continues)
    moved = _props(arn, host="db2.internal", dbname="app2")
    assert stack.request("Update", moved, _props(arn))["Status"] == "SUCCESS"
    assert tokens
    rotation_continues()  # the rotation goes on after the deploy if it has not finished yet
    assert _current(other, arn) == {
        **FIELDS,
        "host": "db2.internal",
        "dbname": "app2",
        "username": "app",
        "password": ROTATED,
    }


def test_an_older_password_is_never_published_when_a_rotation_finishes_mid_write(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    published: list[str] = []

    def rotation_finishes(**_: Any) -> None:
        if not published:
            finish_rotation(other, arn, start_rotation(other, arn))
            published.append(_current(other, arn)["password"])

    def record(**_: Any) -> None:
        if published:
            published.append(_current(other, arn)["password"])

    sm.meta.events.register("before-call.secretsmanager.PutSecretValue", rotation_finishes)
    sm.meta.events.register("after-call.secretsmanager", record)
    assert stack.request("Update", _props(arn, dbname="app2"), _props(arn))["Status"] == "SUCCESS"
    assert set(published) == {ROTATED}  # AWSCURRENT never showed the pre-rotation password again
    assert _current(other, arn) == {**FIELDS, "dbname": "app2", "username": "app", "password": ROTATED}


# -- every path answers CloudFormation in time -------------------------------------------------


def test_the_answer_is_sent_before_the_lambda_times_out(
    sm: Any, other: Any, cfn_client: Any, clock: FakeClock
) -> None:
    arn = _legacy_secret(other)
    stack = Stack(sm, cfn_client, arn, clock)
    _upgraded(stack)
    start_rotation(other, arn)  # never finishes
    for status, expected in (("UPDATE_IN_PROGRESS", "FAILED"), ("UPDATE_ROLLBACK_IN_PROGRESS", "SUCCESS")):
        stack.status = status
        start = clock.now
        response = stack.request("Update", _props(arn, dbname="app2"), _props(arn), timeout_ms=40_000)
        assert response["Status"] == expected, response["Reason"]
        # Answered with the reserve for one AWS call at its worst and the answer still left.
        assert clock.now - start <= 40 - index.RESERVE_SECONDS


def test_aws_calls_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # Lambda sets the function's region
    client = index.make_client("secretsmanager")
    config = client.meta.config
    assert config.connect_timeout <= 5 and config.read_timeout <= 10
    assert config.retries["total_max_attempts"] <= 3


# -- the template: the Generator property follows the secret's generator ------------------------


def test_the_generator_property_is_the_secrets_generator(example: Synth) -> None:
    """A change of GenerateSecretString changes the resource's properties too, so CloudFormation sends
    it an Update (and, on rollback, the Update back) right after the regeneration."""
    raw = example.raw("SecretsRotation")
    secrets_ = resources(raw, "AWS::SecretsManager::Secret")
    fields = resources(raw, "Custom::SecretConnectionFields")
    assert fields
    for resource in fields.values():
        secret_id = resource["Properties"]["SecretId"]["Ref"]
        generator = secrets_[secret_id]["Properties"]["GenerateSecretString"]
        assert json.loads(resource["Properties"]["Generator"]) == generator
