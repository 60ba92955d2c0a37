"""Every custom resource gives up after minutes, not CloudFormation's default hour.

AWS behaviour: ``ServiceTimeout`` is "the maximum time, in seconds, that can elapse before a custom
resource operation times out ... from 1 to 3600. The default value is 3600 seconds (1 hour)"
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudformation-customresource.html#cfn-cloudformation-customresource-servicetimeout).
A request the function never answers (a Lambda timeout, a crash before the response) otherwise blocks
the deploy, and then its rollback, for an hour each. The timeout must still leave the function its
whole run (the Lambda ``Timeout``) to answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synth

MAX_SERVICE_TIMEOUT = 300


def _custom_resources(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        lid: res
        for lid, res in raw["Resources"].items()
        if res["Type"].startswith("Custom::") or res["Type"] == "AWS::CloudFormation::CustomResource"
    }


@pytest.mark.parametrize("fixture", ["example", "variant", "minimal"])
def test_every_custom_resource_has_a_short_service_timeout(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(fixture)
    seen = 0
    for stack, raw in synth.templates.items():
        for lid, res in _custom_resources(raw).items():
            seen += 1
            props = res["Properties"]
            timeout = int(props.get("ServiceTimeout", 3600))
            assert timeout <= MAX_SERVICE_TIMEOUT, (stack, lid, timeout)
            # The function behind it can use its whole run and still be waited for.
            fn_id = props["ServiceToken"]["Fn::GetAtt"][0]
            fn_timeout = raw["Resources"][fn_id]["Properties"]["Timeout"]
            assert fn_timeout < timeout, (stack, lid, fn_timeout, timeout)
    if fixture != "minimal":  # the minimal configuration creates no secret
        assert seen >= 3


def test_an_unanswered_request_is_not_retried_behind_cloudformations_back(example: Synth) -> None:
    """CloudFormation invokes a custom resource's function asynchronously, and Lambda retries a failed
    asynchronous invocation twice, up to minutes later
    (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html): a retry of a
    request that timed out would write the secret while CloudFormation already rolls back. No retries:
    the one invocation answers, or the ServiceTimeout fails the operation."""
    raw = example.raw("SecretsRotation")
    tokens = {res["Properties"]["ServiceToken"]["Fn::GetAtt"][0] for res in _custom_resources(raw).values()}
    configs = {
        res["Properties"]["FunctionName"]["Ref"]: res["Properties"]
        for res in raw["Resources"].values()
        if res["Type"] == "AWS::Lambda::EventInvokeConfig"
    }
    for fn in tokens:
        assert configs[fn]["MaximumRetryAttempts"] == 0, fn
