"""``ParameterReplicator``: copies SSM parameters from the stack's region to target regions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import jsii
from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IValidation

from infra.bundling import replication_code
from infra.config_schema import RECONCILE_TIME_MARGIN_SECONDS, events_schedule_interval
from infra.nag import ENV_KMS, LOG_GROUP_KMS, NO_VPC, acknowledge, checkov_skip, nag_resource
from infra.topology import replicates_both_ways
from rotation_handlers.replication.events import CHANGE_OPERATIONS, CLOUDTRAIL_EVENT_NAMES

REPLICATION_RUNTIME = lambda_.Runtime.PYTHON_3_14
REPLICATE_HANDLER = "rotation_handlers.replicate.handler"
RECONCILE_HANDLER = "rotation_handlers.replicate.reconcile_handler"

# The rule matches exactly what the handler replicates: the CloudTrail-recorded SSM calls that
# change a parameter, and the native "Parameter Store Change" operations.
REPLICATED_EVENT_NAMES = CLOUDTRAIL_EVENT_NAMES
PARAMETER_STORE_OPERATIONS = CHANGE_OPERATIONS

# Exactly the calls rotation_handlers.replication makes (tests/infra/test_replication_iam.py reads the
# handlers' source and fails on a call that is not granted here, or a grant no call needs):
# per parameter, GetParameterHistory (decrypted values, attributes and labels) plus
# ListTagsForResource; reconcile's cheap pass, GetParameters (10 decrypted values a call) in every region.
SOURCE_READ_ACTIONS = (
    "ssm:GetParameterHistory",
    "ssm:ListTagsForResource",
    "ssm:GetParameters",
)
TARGET_WRITE_ACTIONS = (
    "ssm:PutParameter",
    "ssm:DeleteParameter",
    "ssm:LabelParameterVersion",
    "ssm:UnlabelParameterVersion",
    "ssm:AddTagsToResource",
    "ssm:RemoveTagsFromResource",
    *SOURCE_READ_ACTIONS,  # the same reads in the targets
)
# Reconcile keeps its position (run number, deep-check cursor) in one String parameter of the source
# region. The stack sets the name (RECONCILE_STATE_PARAMETER) and grants exactly that parameter; it is
# the handler's default name, and the handler never replicates it.
RECONCILE_STATE_PARAMETER = "/parameter-replicator/reconcile-state"
STATE_ACTIONS = ("ssm:GetParameter", "ssm:PutParameter")
# "Event pattern size: 2,048 characters" (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html):
# a longer pattern fails the deploy, so the change rule is split by included path (see change_patterns).
EVENT_PATTERN_MAX_CHARS = 2048
_KEY_ID_RE = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$")


@dataclass(frozen=True)
class ReconcileTuning:
    """Optional handler settings (None: the handler's default, see the README's replication table)."""

    concurrency: int | None = None  # RECONCILE_CONCURRENCY: worker threads of a reconcile run in total
    max_rounds: int | None = None  # REPLICATION_MAX_ROUNDS (both functions): re-reads of a changing source
    deep_every: int | None = None  # RECONCILE_DEEP_EVERY: every parameter's labels checked every N runs
    requests_per_second: int | None = None  # RECONCILE_REQUESTS_PER_SECOND per region (0: unlimited)
    bulk_tags: bool = True  # RECONCILE_BULK_TAGS: tags in bulk with tag:GetResources
    time_margin: Duration | None = None  # RECONCILE_TIME_MARGIN_SECONDS: stop this long before the timeout

    def __post_init__(self) -> None:
        for name, value, minimum in (
            ("concurrency", self.concurrency, 1),
            ("max_rounds", self.max_rounds, 1),
            ("deep_every", self.deep_every, 1),
            ("requests_per_second", self.requests_per_second, 0),
        ):
            if value is not None and value < minimum:
                raise ValueError(f"ReconcileTuning.{name} must be at least {minimum}, got {value}")
        if self.time_margin is not None and self.time_margin.to_seconds() != int(
            self.time_margin.to_seconds()
        ):
            raise ValueError("ReconcileTuning.time_margin must be a whole number of seconds")

    def margin_seconds(self) -> float:
        return RECONCILE_TIME_MARGIN_SECONDS if self.time_margin is None else self.time_margin.to_seconds()

    def reconcile_environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for name, value in (
            ("RECONCILE_CONCURRENCY", self.concurrency),
            ("RECONCILE_DEEP_EVERY", self.deep_every),
            ("RECONCILE_REQUESTS_PER_SECOND", self.requests_per_second),
        ):
            if value is not None:
                env[name] = str(value)
        if not self.bulk_tags:
            env["RECONCILE_BULK_TAGS"] = "false"
        if self.time_margin is not None:
            env["RECONCILE_TIME_MARGIN_SECONDS"] = str(int(self.time_margin.to_seconds()))
        return env


class EventSource(Enum):
    """Where parameter changes come from."""

    CLOUDTRAIL = "cloudtrail"  # "AWS API Call via CloudTrail" (needs a trail; carries the caller)
    PARAMETER_STORE = "parameter-store"  # native "Parameter Store Change" events (no trail needed)


def parameter_arns(stack: Stack, region: str, path: str) -> list[str]:
    """IAM resources for a parameter path ('/', '/app/'): the path itself and everything below it."""
    arn = f"arn:{stack.partition}:ssm:{region}:{stack.account}:parameter"
    if path == "/":
        return [f"{arn}/*"]
    trimmed = path.rstrip("/")
    return [f"{arn}{trimmed}", f"{arn}{trimmed}/*"]


def name_matchers(include_paths: Sequence[str]) -> list[dict[str, str]]:
    """EventBridge matchers for a parameter name under the included paths ('/app/'), in each form a
    caller may give it: '/app/x', 'app/x' (no leading slash) or the parameter's ARN."""
    out: list[dict[str, str]] = []
    for path in include_paths:
        out += [
            {"prefix": path},
            {"prefix": path[1:]},
            {"wildcard": f"arn:*:ssm:*:*:parameter{path}*"},
        ]
    return out


def cloudtrail_event_pattern(
    include_paths: Sequence[str] = ("/",), ignored_names: Sequence[str] = ()
) -> events.EventPattern:
    """Successful SSM write calls recorded by CloudTrail for parameters under the included paths.

    ``ignored_names`` (the reconcile state parameter) are left out when every path is included; with
    named paths a name outside them is left out anyway, and one inside them reaches the handler, which
    ignores it.

    No filter on the caller: EventBridge's ``anything-but`` never matches an event that lacks the
    field (only ``{"exists": false}`` does), so filtering ``userIdentity.arn`` would drop calls made
    by principals without one. The handler ignores the replicator's own calls itself.
    """
    detail: dict[str, Any] = {
        "eventSource": ["ssm.amazonaws.com"],
        "eventName": list(REPLICATED_EVENT_NAMES),
        "errorCode": [{"exists": False}],
    }
    if "/" not in include_paths:
        names = name_matchers(include_paths)
        # The name is in requestParameters.name (Put, Delete, (Un)Label), .names (DeleteParameters)
        # or .resourceId (Add/RemoveTagsToResource): exactly one of them is present.
        detail["$or"] = [{"requestParameters": {key: names}} for key in ("name", "names", "resourceId")]
    elif ignored_names:
        # Calls naming one parameter carry requestParameters.name ("/x" or "x"); DeleteParameters and
        # the tag calls carry none ("anything-but" never matches an absent field, "exists": false does).
        forms = sorted({form for n in ignored_names for form in (n, n.lstrip("/"))})
        detail["$or"] = [
            {"requestParameters": {"name": [{"anything-but": forms}]}},
            {"requestParameters": {"name": [{"exists": False}]}},
        ]
    return events.EventPattern(source=["aws.ssm"], detail_type=["AWS API Call via CloudTrail"], detail=detail)


def parameter_store_event_pattern(
    include_paths: Sequence[str], ignored_names: Sequence[str] = ()
) -> events.EventPattern:
    """Native Parameter Store change events for parameters under the included paths.

    ``ignored_names``: as in :func:`cloudtrail_event_pattern` (left out when every path is included).
    """
    detail: dict[str, object] = {"operation": list(PARAMETER_STORE_OPERATIONS)}
    if "/" not in include_paths:
        detail["name"] = [{"prefix": p} for p in include_paths]
    elif ignored_names:
        detail["name"] = [{"anything-but": sorted(set(ignored_names))}]
    return events.EventPattern(source=["aws.ssm"], detail_type=["Parameter Store Change"], detail=detail)


def pattern_chars(pattern: events.EventPattern) -> int:
    """The pattern's length as JSON, counted with the spaces ``json.dumps`` puts after ':' and ',' (at
    least what EventBridge counts)."""
    rendered = {"source": pattern.source, "detail-type": pattern.detail_type, "detail": pattern.detail}
    return len(json.dumps({k: v for k, v in rendered.items() if v is not None}))


def change_patterns(
    event_source: EventSource, include_paths: Sequence[str], ignored_names: Sequence[str] = ()
) -> list[events.EventPattern]:
    """The change rule's pattern, split by included path into as few patterns as fit EventBridge's
    2,048 characters each. The paths do not overlap (one is never under another), so an event matches
    exactly one of them: one invocation per change, as with a single rule."""

    def build(paths: Sequence[str]) -> events.EventPattern:
        if event_source is EventSource.CLOUDTRAIL:
            return cloudtrail_event_pattern(paths, ignored_names)
        return parameter_store_event_pattern(paths, ignored_names)

    chunks: list[list[str]] = []
    for path in include_paths:
        if chunks and pattern_chars(build([*chunks[-1], path])) <= EVENT_PATTERN_MAX_CHARS:
            chunks[-1].append(path)
            continue
        if pattern_chars(build([path])) > EVENT_PATTERN_MAX_CHARS:
            raise ValueError(
                f"the event pattern of the single path {path!r} is over {EVENT_PATTERN_MAX_CHARS} characters"
            )
        chunks.append([path])
    return [build(chunk) for chunk in chunks]


class ParameterReplicator(Construct):
    """Replicates SSM parameters from this stack's region to ``target_regions``.

    Two functions share one role: ``function`` handles change events (EventBridge, with retries and a
    dead-letter queue; async failures go to the same queue) and ``reconcile_function`` runs on
    ``reconcile_schedule`` to repair drift. IAM is limited to the included paths in the source and
    target regions and to the KMS keys named.

    ``target_kms_keys`` maps a target region to a key id, alias or ARN in that region (default: the
    region's ``aws/ssm`` key). ``source_kms_keys`` lists the key ARNs of the source SecureStrings
    (default: any key, but only through SSM and only for parameters under the included paths).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        target_regions: Sequence[str],
        include_paths: Sequence[str] = ("/",),
        exclude_paths: Sequence[str] = (),
        target_kms_keys: Mapping[str, str] | None = None,
        source_kms_keys: Sequence[str] = (),
        reconcile_schedule: events.Schedule | None = None,
        event_source: EventSource = EventSource.CLOUDTRAIL,
        create_trail: bool = False,
        delete_unmanaged_replicas: bool = False,
        copy_ec2_image_parameters: bool = False,
        adopt_unmanaged_targets: bool = False,
        memory_size: int = 256,
        timeout: Duration | None = None,
        reconcile_timeout: Duration | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        reserved_concurrent_executions: int | None = 5,
        reconcile_tuning: ReconcileTuning | None = None,
        reconcile_state_parameter: str = RECONCILE_STATE_PARAMETER,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        source_region = stack.region
        if reserved_concurrent_executions is not None and reserved_concurrent_executions < 1:
            raise ValueError("reserved_concurrent_executions must be at least 1 (or None: no reservation)")
        tuning = reconcile_tuning or ReconcileTuning()
        reconcile_timeout = reconcile_timeout or Duration.minutes(15)
        if tuning.margin_seconds() >= reconcile_timeout.to_seconds():
            raise ValueError(
                f"the reconcile time margin ({tuning.margin_seconds():g} s) must be shorter than the "
                f"reconcile timeout ({reconcile_timeout.to_seconds():g} s): reconcile would stop before it "
                "started"
            )
        expression = None if reconcile_schedule is None else reconcile_schedule.expression_string
        interval = None if expression is None else events_schedule_interval(expression)
        if interval is not None and interval < reconcile_timeout.to_seconds():
            # EventBridge starts the target on every tick, whether or not the last run ended
            # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-rule-schedule.html).
            raise ValueError(
                f"reconcile_schedule {expression!r} starts a run every {interval} s, sooner than the "
                f"reconcile timeout ({reconcile_timeout.to_seconds():g} s): runs would overlap"
            )
        if not reconcile_state_parameter.startswith("/"):
            raise ValueError("reconcile_state_parameter must be a parameter name starting with '/'")
        if not target_regions:
            raise ValueError("target_regions is empty")
        if source_region in target_regions:
            raise ValueError(f"{source_region} is both the source region and a target region")
        target_kms_keys = dict(target_kms_keys or {})
        unknown = set(target_kms_keys) - set(target_regions)
        if unknown:
            raise ValueError(f"target_kms_keys names regions that are not targets: {sorted(unknown)}")
        include = [p if p.endswith("/") else p + "/" for p in include_paths]
        exclude = [p if p.endswith("/") else p + "/" for p in exclude_paths]
        self.target_regions = list(target_regions)
        self.include_paths = include
        self.event_source = event_source
        self.delete_unmanaged_replicas = delete_unmanaged_replicas
        self.reconcile_state_parameter = reconcile_state_parameter
        self.node.add_validation(_NoTwoWayDeletes(self))

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="SSM parameter replication (included paths only)",
        )
        self.policy = iam.Policy(self, "Policy", roles=[self.role])
        self._add_permissions(
            stack, include, target_kms_keys, source_kms_keys, copy_ec2_image_parameters, tuning.bulk_tags
        )

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            [
                (
                    "AwsSolutions-SQS3",
                    "This queue is itself the dead-letter queue (of the EventBridge targets and of the "
                    "functions' asynchronous invocations); cdk-nag only recognises dead-letter queues of SQS "
                    "redrive policies.",
                )
            ],
        )
        environment = {
            "REPLICA_REGIONS": ",".join(self.target_regions),
            "REPLICATE_PATHS": ",".join(include),
            "EXCLUDE_PATHS": ",".join(exclude),
            "REPLICA_KMS_KEYS": json.dumps(target_kms_keys, sort_keys=True, separators=(",", ":")),
            "DELETE_UNMANAGED_REPLICAS": "true" if delete_unmanaged_replicas else "false",
            "REPLICATOR_ROLE_ARN": self.role.role_arn,
            "COPY_EC2_IMAGE_PARAMETERS": "true" if copy_ec2_image_parameters else "false",
            # Overwrite target parameters without the marker tag (off: refused and reported).
            "ADOPT_UNMANAGED_TARGETS": "true" if adopt_unmanaged_targets else "false",
            # Both functions: the event function ignores changes of the state parameter.
            "RECONCILE_STATE_PARAMETER": reconcile_state_parameter,
        }
        if tuning.max_rounds is not None:
            environment["REPLICATION_MAX_ROUNDS"] = str(tuning.max_rounds)
        code = code or replication_code(REPLICATION_RUNTIME, lambda_.Architecture.ARM_64)
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention)
        self.reconcile_log_group = logs.LogGroup(self, "ReconcileLogGroup", retention=log_retention)
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn, self.reconcile_log_group.log_group_arn],
            ),
        )
        common = {
            "runtime": REPLICATION_RUNTIME,
            "architecture": lambda_.Architecture.ARM_64,
            "code": code,
            "role": self.role,
            "memory_size": memory_size,
            "logging_format": lambda_.LoggingFormat.JSON,
            "on_failure": destinations.SqsDestination(self.dead_letter_queue),
        }
        self.function = lambda_.Function(
            self,
            "Function",
            description="Replicates one SSM parameter change to the target regions",
            handler=REPLICATE_HANDLER,
            environment=environment,
            timeout=timeout or Duration.minutes(2),
            log_group=self.log_group,
            retry_attempts=2,
            max_event_age=Duration.hours(6),
            # Bounded fan-out: a bulk import queues (async invocations wait up to max_event_age)
            # instead of running hundreds of copies that throttle the target regions.
            reserved_concurrent_executions=reserved_concurrent_executions,
            **common,
        )
        self.reconcile_function = lambda_.Function(
            self,
            "ReconcileFunction",
            description="Compares source and replica parameters and repairs drift",
            handler=RECONCILE_HANDLER,
            environment={**environment, **tuning.reconcile_environment()},
            timeout=reconcile_timeout,
            log_group=self.reconcile_log_group,
            retry_attempts=0,
            # Runs never overlap. Without reservations (None) the schedule is at least the timeout apart.
            reserved_concurrent_executions=None if reserved_concurrent_executions is None else 1,
            **common,
        )
        for fn in (self.function, self.reconcile_function):
            fn.node.add_dependency(self.policy)
            checkov_skip(
                fn,
                [
                    NO_VPC,
                    ENV_KMS,
                    (
                        "CKV_AWS_116",
                        "Failed asynchronous invocations go to the dead-letter queue through the on-failure "
                        "destination (and EventBridge's target dead-letter queue); checkov only recognises "
                        "DeadLetterConfig.",
                    ),
                    *(
                        [
                            (
                                "CKV_AWS_115",
                                "Reservations turned off on purpose (reservedConcurrency: null), for an "
                                "account at Lambda's floor of 100 unreserved concurrent executions.",
                            )
                        ]
                        if reserved_concurrent_executions is None
                        else []
                    ),
                ],
            )
        for group in (self.log_group, self.reconcile_log_group):
            checkov_skip(group, [LOG_GROUP_KMS])
        checkov_skip(
            self.dead_letter_queue,
            [
                (
                    "CKV_AWS_27",
                    "Encrypted with SQS-managed server-side encryption (SqsManagedSseEnabled); checkov only "
                    "recognises a KMS key.",
                )
            ],
        )

        if event_source is EventSource.CLOUDTRAIL:
            description = "Successful SSM parameter writes (CloudTrail) under the replicated paths"
        else:
            description = "Parameter Store changes under the replicated paths"
        # One rule, or (over EventBridge's pattern size) one per group of paths; the first keeps its id.
        self.change_rules: list[events.Rule] = []
        patterns = change_patterns(event_source, include, [reconcile_state_parameter])
        for i, pattern in enumerate(patterns):
            rule = events.Rule(
                self,
                "ChangeRule" if i == 0 else f"ChangeRule{i + 1}",
                description=description if len(patterns) == 1 else f"{description} ({i + 1}/{len(patterns)})",
                event_pattern=pattern,
            )
            rule.add_target(
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=8,
                    max_event_age=Duration.hours(2),
                )
            )
            self.change_rules.append(rule)
        self.rule = self.change_rules[0]
        self.reconcile_rule = events.Rule(
            self,
            "ReconcileSchedule",
            description="Periodic reconcile of the replicated parameters",
            # Native Parameter Store events carry no tag changes: tag edits wait for reconcile.
            schedule=reconcile_schedule
            or events.Schedule.rate(Duration.hours(1 if event_source is EventSource.PARAMETER_STORE else 6)),
        )
        self.reconcile_rule.add_target(
            targets.LambdaFunction(
                self.reconcile_function,
                event=events.RuleTargetInput.from_object({"dryRun": False}),
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=2,
            )
        )

        self.trail: cloudtrail.CfnTrail | None = None
        if event_source is EventSource.CLOUDTRAIL and create_trail:
            self.trail = self._create_trail()

    # -- IAM ------------------------------------------------------------------------------------

    def _add_permissions(
        self,
        stack: Stack,
        include: list[str],
        target_kms_keys: dict[str, str],
        source_kms_keys: Sequence[str],
        copy_ec2_image_parameters: bool,
        bulk_tags: bool,
    ) -> None:
        source = stack.region
        source_arns = [a for p in include for a in parameter_arns(stack, source, p)]
        state_arn = (
            f"arn:{stack.partition}:ssm:{source}:{stack.account}:parameter{self.reconcile_state_parameter}"
        )
        # "*" actions are limited to the stack's regions: every request carries aws:RequestedRegion
        # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-requestedregion).
        in_regions = {"StringEquals": {"aws:RequestedRegion": [source, *self.target_regions]}}
        statements = [
            iam.PolicyStatement(
                sid="ReadSourceParameters", actions=list(SOURCE_READ_ACTIONS), resources=source_arns
            ),
            # ssm:DescribeParameters has no resource-level permissions: AWS only accepts "*". Reconcile
            # lists every region; the event function lists the source with DELETE_UNMANAGED_REPLICAS.
            iam.PolicyStatement(
                sid="DescribeParameters",
                actions=["ssm:DescribeParameters"],
                resources=["*"],
                conditions=in_regions,
            ),
            iam.PolicyStatement(sid="ReconcileState", actions=list(STATE_ACTIONS), resources=[state_arn]),
        ]
        if bulk_tags:
            # Reconcile reads the tags of every parameter in bulk. tag:GetResources has no resource types
            # (Service Authorization Reference, https://docs.aws.amazon.com/service-authorization/latest/
            # reference/list_amazonresourcegrouptaggingapi.html): AWS only accepts "*".
            statements.append(
                iam.PolicyStatement(
                    sid="ReadTagsInBulk", actions=["tag:GetResources"], resources=["*"], conditions=in_regions
                )
            )
        for region in self.target_regions:
            statements.append(
                iam.PolicyStatement(
                    sid=f"WriteReplicas{_sid(region)}",
                    actions=list(TARGET_WRITE_ACTIONS),
                    resources=[a for p in include for a in parameter_arns(stack, region, p)],
                )
            )
        any_source_key = f"arn:{stack.partition}:kms:{source}:{stack.account}:key/*"
        statements.append(
            iam.PolicyStatement(
                sid="DecryptSourceSecureStrings",
                actions=["kms:Decrypt"],
                resources=list(source_kms_keys) or [any_source_key],
                conditions={
                    "StringEquals": {"kms:ViaService": f"ssm.{source}.amazonaws.com"},
                    "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": source_arns},
                },
            )
        )
        acks = [
            (
                "AwsSolutions-IAM5[Resource::*]",
                "ssm:DescribeParameters, tag:GetResources (reconcile's bulk tag reads) and "
                "ec2:DescribeImages (AMI parameters) have no resource-level permissions.",
            ),
        ]
        if not source_kms_keys:
            acks.append(
                (
                    f"AwsSolutions-IAM5[Resource::{nag_resource(stack, any_source_key)}]",
                    "Source SecureStrings may use any key of the account; kms:Decrypt is limited to calls "
                    "made through SSM in the source region for parameters under the included paths.",
                )
            )
        for region, key in sorted(target_kms_keys.items()):
            key_arns, conditions = self._target_key(stack, region, key)
            # Before deleting a replica to re-create it with another type, the replicator checks
            # that this key exists and is Enabled (DescribeKey is not made through SSM).
            statements.append(
                iam.PolicyStatement(
                    sid=f"DescribeReplicaKey{_sid(region)}",
                    actions=["kms:DescribeKey"],
                    resources=key_arns,
                    conditions={k: dict(v) for k, v in conditions.items()} or None,
                )
            )
            conditions.setdefault("StringEquals", {})["kms:ViaService"] = f"ssm.{region}.amazonaws.com"
            conditions["StringLike"] = {
                "kms:EncryptionContext:PARAMETER_ARN": [
                    a for p in include for a in parameter_arns(stack, region, p)
                ]
            }
            statements.append(
                iam.PolicyStatement(
                    sid=f"UseReplicaKey{_sid(region)}",
                    actions=["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"],
                    resources=key_arns,
                    conditions=conditions,
                )
            )
            if key_arns[0].endswith("key/*"):
                acks.append(
                    (
                        f"AwsSolutions-IAM5[Resource::{nag_resource(stack, key_arns[0])}]",
                        f"The replica key in {region} is named by its alias; the kms:ResourceAliases "
                        "condition limits this statement to that key.",
                    )
                )
        if copy_ec2_image_parameters:
            # ec2:DescribeImages has no resource-level permissions; SSM checks the AMI with the
            # caller's permissions when a parameter has the aws:ec2:image data type.
            statements.append(
                iam.PolicyStatement(
                    sid="ValidateAmiParameters", actions=["ec2:DescribeImages"], resources=["*"]
                )
            )
        self.policy.add_statements(*statements)
        for path in include:
            for region in [source, *self.target_regions]:
                wildcard = parameter_arns(stack, region, path)[-1]
                acks.append(
                    (
                        f"AwsSolutions-IAM5[Resource::{nag_resource(stack, wildcard)}]",
                        f"The replicator owns every parameter under the included path {path} in {region}.",
                    )
                )
        acknowledge(self.policy, acks)

    @staticmethod
    def _target_key(stack: Stack, region: str, key: str) -> tuple[list[str], dict[str, dict[str, object]]]:
        base = f"arn:{stack.partition}:kms:{region}:{stack.account}"
        if key.startswith("arn:") and ":key/" in key:
            return [key], {}
        if _KEY_ID_RE.match(key):
            return [f"{base}:key/{key}"], {}
        alias = key.split(":", 5)[-1] if key.startswith("arn:") else key  # alias/name
        # KMS authorises on the key, not the alias: any key of the region that carries this alias.
        return [f"{base}:key/*"], {"ForAnyValue:StringEquals": {"kms:ResourceAliases": [alias]}}

    # -- trail ----------------------------------------------------------------------------------

    def _create_trail(self) -> cloudtrail.CfnTrail:
        """A single-region trail of write management events (what EventBridge needs to see SSM
        writes), logging into a KMS-encrypted bucket that only this trail may write to."""
        stack = Stack.of(self)
        trail_name = f"{stack.stack_name}-ssm-writes"
        trail_arn = stack.format_arn(service="cloudtrail", resource="trail", resource_name=trail_name)
        cloudtrail_principal = iam.ServicePrincipal("cloudtrail.amazonaws.com")
        only_this_trail = {"aws:SourceArn": trail_arn}
        key = kms.Key(
            self,
            "TrailKey",
            description="Encrypts the SSM replication trail's log files",
            enable_key_rotation=True,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncryptLogs",
                principals=[cloudtrail_principal],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={
                    "StringEquals": only_this_trail,
                    "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn},
                },
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailDescribeKey",
                principals=[cloudtrail_principal],
                actions=["kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": only_this_trail},
            )
        )
        bucket = s3.Bucket(
            self,
            "TrailBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=Duration.days(90), noncurrent_version_expiration=Duration.days(1))
            ],
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailAclCheck",
                principals=[cloudtrail_principal],
                actions=["s3:GetBucketAcl"],
                resources=[bucket.bucket_arn],
                conditions={"StringEquals": only_this_trail},
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailWrite",
                principals=[cloudtrail_principal],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"AWSLogs/{stack.account}/*")],
                conditions={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **only_this_trail}},
            )
        )
        acknowledge(
            bucket,
            [
                (
                    "AwsSolutions-S1",
                    "The bucket only receives this trail's log files (written by CloudTrail, "
                    "integrity-checked by log file validation); server access logs would need another "
                    "bucket for no added audit value.",
                )
            ],
        )
        trail = cloudtrail.CfnTrail(
            self,
            "Trail",
            trail_name=trail_name,
            s3_bucket_name=bucket.bucket_name,
            is_logging=True,
            is_multi_region_trail=False,
            include_global_service_events=False,
            enable_log_file_validation=True,
            kms_key_id=key.key_arn,
            event_selectors=[
                cloudtrail.CfnTrail.EventSelectorProperty(
                    include_management_events=True, read_write_type="WriteOnly"
                )
            ],
        )
        checkov_skip(
            bucket,
            [
                (
                    "CKV_AWS_18",
                    "The bucket only receives this trail's log files (integrity-checked by log file "
                    "validation); server access logs would need another bucket for no added audit value.",
                )
            ],
        )
        checkov_skip(
            trail,
            [
                (
                    "CKV_AWS_67",
                    "Only the source region's SSM writes are needed; the account's own (organisation) trail "
                    "is the one that covers every region, and a second multi-region copy would be paid for.",
                )
            ],
        )
        assert bucket.policy is not None
        trail.node.add_dependency(bucket.policy)
        trail.node.add_dependency(key)
        return trail


@jsii.implements(IValidation)
class _NoTwoWayDeletes:
    """Synthesis fails when two replicators of one app copy the same paths both ways and one of them
    deletes unmanaged replicas: deleting a replica would then delete the other region's original."""

    def __init__(self, replicator: ParameterReplicator) -> None:
        self.replicator = replicator

    def validate(self) -> list[str]:
        me = self.replicator
        region = Stack.of(me).region
        if Token.is_unresolved(region):
            return []
        problems = []
        for other in me.node.root.node.find_all():
            if other is me or not isinstance(other, ParameterReplicator):
                continue
            other_region = Stack.of(other).region
            if not (me.delete_unmanaged_replicas or other.delete_unmanaged_replicas):
                continue
            if replicates_both_ways(
                region,
                me.target_regions,
                me.include_paths,
                other_region,
                other.target_regions,
                other.include_paths,
            ):
                problems.append(
                    f"{me.node.path} ({region}) and {other.node.path} ({other_region}) replicate the same "
                    "paths both ways with delete_unmanaged_replicas: a deleted replica would delete the "
                    "original in the other region; turn delete_unmanaged_replicas off"
                )
        return problems


def _sid(region: str) -> str:
    return "".join(part.capitalize() for part in region.split("-"))
