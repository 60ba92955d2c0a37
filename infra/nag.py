"""cdk-nag helpers: acknowledgments (each with a written reason) in the ids cdk-nag reports."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, Stack, Token, Validations
from constructs import IConstruct


def nag_resource(stack: Stack, arn: str) -> str:
    """An ARN as cdk-nag prints it in an IAM5 finding id (pseudo parameters as ``<AWS::...>``)."""
    out = arn
    for token, name in (
        (stack.partition, "<AWS::Partition>"),
        (stack.region, "<AWS::Region>"),
        (stack.account, "<AWS::AccountId>"),
        (Aws.PARTITION, "<AWS::Partition>"),
        (Aws.REGION, "<AWS::Region>"),
        (Aws.ACCOUNT_ID, "<AWS::AccountId>"),
    ):
        if Token.is_unresolved(token):
            out = out.replace(token, name)
    return out


def acknowledge(scope: IConstruct, findings: list[tuple[str, str]]) -> None:
    """Acknowledge cdk-nag findings on ``scope``: ``[(finding id, reason), ...]``."""
    for finding_id, reason in findings:
        if not reason.strip():
            raise ValueError(f"acknowledgment of {finding_id} needs a reason")
        Validations.of(scope).acknowledge(Acknowledgment(id=finding_id, reason=reason))
