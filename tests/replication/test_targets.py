"""Parameters real accounts hold: CloudFormation-made ones, targets we did not create, patterns.

Where moto accepts what AWS refuses, a botocore ``before-call`` hook on the target clients
answers the way the AWS documentation says AWS does.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ssm.models import ssm_backends

from rotation_handlers import replicate
from rotation_handlers.replication import MARKER_TAG_KEY, ReplicationError, sync
from rotation_handlers.replication.config import load_config
from secretsctl import replicas
from tests.replication import events as ev
from tests.replication.conftest import EU, SOURCE, TARGETS, US, Aws, secret

#: What CloudFormation puts on every parameter it creates ("Tagging your resources",
#: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-resource-tags.html).
CFN_TAGS = {
    "aws:cloudformation:stack-name": "app",
    "aws:cloudformation:logical-id": "DbUrl",
    "aws:cloudformation:stack-id": "arn:aws:cloudformation:us-east-1:123456789012:stack/app/1",
}


def refuse_reserved_tags(aws: Aws, region: str) -> list[str]:
    """Refuse any write of an ``aws:``-prefixed tag key, as AWS does.

    "You can't edit or delete tag keys or values that use the aws: prefix; they don't count
    against your tags per resource quota" and "Tag keys and values can't begin with aws:"
    (Tagging Systems Manager resources, https://docs.aws.amazon.com/systems-manager/latest/userguide/tagging-resources.html;
    Tagging best practices, https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html).
    """
    refused: list[str] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        keys = [t["Key"] for t in body.get("Tags") or []] + list(body.get("TagKeys") or [])
        bad = [k for k in keys if k.lower().startswith("aws:")]
        if bad:
            refused.append(model.name)
            raise ClientError(
                {"Error": {"Code": "InvalidParameterValueException", "Message": "aws: prefix is reserved"}},
                model.name,
            )

    for op in ("PutParameter", "AddTagsToResource", "RemoveTagsFromResource"):
        aws.on(aws.ssm(region), f"before-call.ssm.{op}", hook)
    return refused


def test_cloudformation_parameter_replicates_without_reserved_tags(aws: Aws) -> None:
    refused = {region: refuse_reserved_tags(aws, region) for region in TARGETS}
    name = "/app/db-url"
    value = secret("cfn")
    aws.put(name, value, Tags=[{"Key": k, "Value": v} for k, v in {**CFN_TAGS, "team": "a"}.items()])

    summary = replicate.handler(ev.put_parameter_event(name), None)
    assert summary["regions"] == {EU: {"created": 1}, US: {"created": 1}}
    for region in TARGETS:
        assert aws.get(name, region)["Value"] == value
        assert aws.tags(name, region) == {"team": "a", MARKER_TAG_KEY: SOURCE}

    aws.ssm(SOURCE).add_tags_to_resource(
        ResourceType="Parameter", ResourceId=name, Tags=[{"Key": "team", "Value": "b"}]
    )
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"] == {EU: {"tagged": 1}, US: {"tagged": 1}}
    assert refused == {EU: [], US: []}


def test_reserved_tags_on_a_target_are_never_removed(aws: Aws) -> None:
    """A replica the target's own stack tagged keeps those tags: they cannot be removed anyway."""
    refused = {region: refuse_reserved_tags(aws, region) for region in TARGETS}
    name = "/app/stacked"
    aws.put(name, secret("src"), Tags=[{"Key": "team", "Value": "a"}])
    replicate.handler(ev.put_parameter_event(name), None)
    # moto lets the test place what CloudFormation in the target would have placed
    for region in TARGETS:
        ssm_backends[DEFAULT_ACCOUNT_ID][region].add_tags_to_resource("Parameter", name, dict(CFN_TAGS))
    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"] == {EU: {"unchanged": 1}, US: {"unchanged": 1}}
    for region in TARGETS:
        assert aws.tags(name, region) == {**CFN_TAGS, "team": "a", MARKER_TAG_KEY: SOURCE}
    assert refused == {EU: [], US: []}


def test_target_without_marker_is_not_overwritten(aws: Aws) -> None:
    name = "/app/theirs"
    theirs = secret("theirs")
    aws.put(name, theirs, region=EU, Tags=[{"Key": "owner", "Value": "other-team"}])
    aws.put(name, secret("ours"), Tags=[{"Key": "team", "Value": "a"}])

    summary = replicate.handler(ev.put_parameter_event(name), None)
    assert summary["regions"] == {EU: {"skipped": 1, "unmanaged-target-refused": 1}, US: {"created": 1}}
    assert aws.get(name, EU)["Value"] == theirs
    assert aws.tags(name, EU) == {"owner": "other-team"}

    summary = replicate.reconcile_handler({}, None)
    assert summary["regions"][EU] == {"skipped": 1, "unmanaged-target-refused": 1}
    change = next(c for c in summary["changes"] if c["region"] == EU)
    assert "not created by this replicator" in change["reason"]
    assert "ADOPT_UNMANAGED_TARGETS" in change["reason"]
    assert aws.get(name, EU)["Value"] == theirs


def test_adopt_setting_takes_over_an_unmanaged_target(aws: Aws, env: pytest.MonkeyPatch) -> None:
    env.setenv("ADOPT_UNMANAGED_TARGETS", "true")
    name = "/app/adopted"
    aws.put(name, secret("theirs"), region=EU, Tags=[{"Key": "owner", "Value": "other-team"}])
    ours = secret("ours")
    aws.put(name, ours, Tags=[{"Key": "team", "Value": "a"}])

    summary = replicate.handler(ev.put_parameter_event(name), None)
    assert summary["regions"] == {EU: {"updated": 1}, US: {"created": 1}}
    assert aws.get(name, EU)["Value"] == ours
    assert aws.tags(name, EU) == {"team": "a", MARKER_TAG_KEY: SOURCE}


def refuse_pattern_mismatch(aws: Aws, region: str) -> list[str]:
    """Refuse a value that does not match the request's AllowedPattern, as AWS does.

    "AllowedPattern: A regular expression used to validate the parameter value"
    (PutParameter, https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html);
    a mismatch raises ParameterPatternMismatchException. moto does not validate it.
    """
    refused: list[str] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        pattern = body.get("AllowedPattern")
        if pattern and not re.search(pattern, body["Value"]):
            refused.append(body["Name"])
            raise ClientError(
                {
                    "Error": {
                        "Code": "ParameterPatternMismatchException",
                        "Message": "Parameter value, cannot be validated against allowedPattern",
                    }
                },
                "PutParameter",
            )

    aws.on(aws.ssm(region), "before-call.ssm.PutParameter", hook)
    return refused


@pytest.mark.parametrize("precheck", [True, False])
def test_labelled_old_value_outside_todays_pattern_is_skipped(
    aws: Aws, env: pytest.MonkeyPatch, precheck: bool
) -> None:
    """The current value is always written; a label whose old value is refused is reported and skipped.

    ``precheck=False`` stands for a pattern Python cannot judge (AWS's regular expressions are not
    Python's): Parameter Store's refusal of the older value is then handled as the write happens.
    """
    if not precheck:
        env.setattr(sync, "_matches_pattern", lambda pattern, value: True)
    refused = {region: refuse_pattern_mismatch(aws, region) for region in TARGETS}
    name = "/app/patterned"
    old = secret("old")
    aws.put(name, old, Tags=[{"Key": "team", "Value": "a"}])
    aws.ssm(SOURCE).label_parameter_version(Name=name, ParameterVersion=1, Labels=["previous"])
    current = "12345"
    aws.put(name, current, AllowedPattern=r"^\d+$", Overwrite=True)
    aws.ssm(SOURCE).label_parameter_version(Name=name, ParameterVersion=2, Labels=["live"])

    summary = replicate.handler(ev.put_parameter_event(name), None)
    assert summary["regions"] == {
        EU: {"created": 1, "label-skipped": 1},
        US: {"created": 1, "label-skipped": 1},
    }
    for region in TARGETS:
        assert aws.get(name, region)["Value"] == current
        assert aws.labels(name, region) == {"live": current}
        assert aws.tags(name, region) == {"team": "a", MARKER_TAG_KEY: SOURCE}
    assert refused == ({EU: [], US: []} if precheck else {EU: [name], US: [name]})

    aws.put(name, "678", Overwrite=True)
    summary = replicate.handler(ev.put_parameter_event(name, overwrite=True), None)
    assert summary["regions"][EU]["updated"] == 1 and summary["regions"][US]["updated"] == 1
    for region in TARGETS:
        assert aws.get(name, region)["Value"] == "678"


def test_history_helper_reads_every_version(aws: Aws) -> None:
    name = "/app/long"
    for i in range(53):
        aws.put(name, f"v{i}", Overwrite=True)
    aws.ssm(SOURCE).label_parameter_version(Name=name, ParameterVersion=53, Labels=["newest"])
    assert len(aws.history(name, SOURCE)) == 53
    assert aws.labels(name, SOURCE) == {"newest": "v52"}


def test_cli_check_adopts_only_when_asked(aws: Aws) -> None:
    """``secretsctl replicas check --apply`` leaves a foreign target alone; ``--adopt`` takes it over."""
    name = "/app/foreign"
    theirs, ours = secret("theirs"), secret("ours")
    aws.put(name, theirs, region=EU)
    aws.put(name, ours)
    config = load_config(os.environ)
    report = replicas.check(config, aws.ssm, apply=True)
    assert aws.get(name, EU)["Value"] == theirs
    assert any(f.region == EU and "ADOPT_UNMANAGED_TARGETS" in f.detail for f in report.findings)
    replicas.check(config, aws.ssm, apply=True, adopt=True)
    assert aws.get(name, EU)["Value"] == ours
    assert aws.tags(name, EU) == {MARKER_TAG_KEY: SOURCE}


def accept_ami_without_storing(aws: Aws, region: str) -> list[str]:
    """Answer PutParameter for aws:ec2:image as AWS does when its asynchronous validation fails.

    "If you call PutParameter with aws:ec2:image data type, a successful HTTP 200 response does not
    guarantee that your parameter was successfully created or updated. The aws:ec2:image value is
    validated asynchronously [...] the parameter will not be created or updated" (PutParameter,
    DataType, https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html;
    https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html).
    Here the AMI does not exist in ``region``: the call succeeds and nothing is stored.
    """
    accepted: list[str] = []

    def hook(params: dict[str, Any], **_: Any) -> Any:
        body = json.loads(params["body"] or b"{}")
        if body.get("DataType") == "aws:ec2:image":
            accepted.append(body["Name"])
            return AWSResponse("https://ssm", 200, {}, None), {"Version": 1, "Tier": "Standard"}
        return None

    aws.on(aws.ssm(region), "before-call.ssm.PutParameter", hook)
    return accepted


def test_ec2_image_parameter_is_verified_after_the_write(aws: Aws, env: pytest.MonkeyPatch) -> None:
    env.setenv("COPY_EC2_IMAGE_PARAMETERS", "true")
    accepted = accept_ami_without_storing(aws, EU)
    name = "/app/ami"
    aws.put(name, "ami-0123456789abcdef0", DataType="aws:ec2:image")

    with pytest.raises(ReplicationError) as raised:
        replicate.handler(ev.put_parameter_event(name), None)
    assert f"{name} in {EU} (Ec2ImageNotAccepted)" in str(raised.value)
    assert accepted == [name]
    assert aws.get(name, EU) is None
    assert aws.get(name, US)["Value"] == "ami-0123456789abcdef0"
