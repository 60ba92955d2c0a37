"""cdk-nag helpers: acknowledgments (each with a written reason) in the ids cdk-nag reports."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, CfnResource, Stack, Token, Validations
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


def checkov_skip(resource: IConstruct, findings: list[tuple[str, str]]) -> None:
    """Acknowledge checkov findings on a resource (its L1, or a construct whose default child is one),
    each with a reason, as the ``checkov.skip`` metadata checkov reads from CloudFormation templates."""
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    if not isinstance(cfn, CfnResource):
        raise TypeError(f"{resource.node.path} is not a CloudFormation resource")
    for finding_id, reason in findings:
        if not reason.strip():
            raise ValueError(f"skip of {finding_id} needs a reason")
    existing = cfn.get_metadata("checkov") or {"skip": []}
    existing["skip"] = [*existing["skip"], *({"id": i, "comment": r} for i, r in findings)]
    cfn.add_metadata("checkov", existing)


#: Findings that do not apply to the functions, with the reason.
LOG_GROUP_KMS = (
    "CKV_AWS_158",
    "The handlers log no secret values (JSON lines with values scrubbed); CloudWatch Logs encrypts every "
    "log group at rest with service-managed keys.",
)
ENV_KMS = (
    "CKV_AWS_173",
    "The environment holds only names, regions, paths and endpoint URLs, no secret; Lambda encrypts it at "
    "rest with its service key.",
)
NO_VPC = (
    "CKV_AWS_117",
    "The function calls only AWS APIs (no VPC resource); running it outside a VPC needs no NAT or endpoints.",
)
