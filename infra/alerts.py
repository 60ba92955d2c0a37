"""``OperationsAlerts``: an SNS topic that tells the platform team when rotation or replication breaks."""

from __future__ import annotations

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_config as config
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

ROTATION_FAILURE_EVENTS = ("RotationFailed", "RotationAbandoned")


class OperationsAlerts(Construct):
    """An encrypted SNS topic (optionally with an email subscription) plus helpers that feed it.

    The topic's customer-managed key lets EventBridge and CloudWatch alarms publish to it (they
    cannot use the AWS managed ``aws/sns`` key).

    With ``existing_topic_arn`` no topic is created: alarms and rules publish to that topic (e.g. one
    a platform team routes to PagerDuty or Chatbot). Its access policy must let
    ``events.amazonaws.com`` publish, and a customer-managed key on it must let ``events`` and
    ``cloudwatch`` use it: this stack cannot change another stack's topic.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        email: str | None = None,
        existing_topic_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if email and existing_topic_arn:
            raise ValueError("give either email or existing_topic_arn")
        self.key: kms.IKey | None = None
        self.topic: sns.ITopic
        if existing_topic_arn:
            self.topic = sns.Topic.from_topic_arn(self, "Topic", existing_topic_arn)
        else:
            self.topic = self._own_topic(email)
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []
        self.rules: list[events.Rule] = []
        # One statement per publishing service, created with its first publisher (see _allow_publish).
        self._publish: dict[str, iam.PolicyStatement] = {}
        self._sources: dict[str, list[str]] = {}

    def _own_topic(self, email: str | None) -> sns.ITopic:
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the secrets-rotation/replication alert topic",
            enable_key_rotation=True,
        )
        # Publishers of an encrypted topic need these on its key
        # (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
        # "Adding the aws:SourceAccount and aws:SourceArn to a AWS KMS policy is not supported for
        # EventBridge-to-encrypted topics" (same page): EventBridge's statement has no such condition, or
        # every rule's delivery fails. The key encrypts this topic only; the topic policy decides who
        # publishes (this stack's rules and alarms).
        for service, conditions in (
            ("events.amazonaws.com", None),
            ("cloudwatch.amazonaws.com", {"StringEquals": {"aws:SourceAccount": stack.account}}),
        ):
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    principals=[iam.ServicePrincipal(service)],
                    resources=["*"],  # in a key policy "*" means this key
                    conditions=conditions,
                )
            )
        topic = sns.Topic(
            self,
            "Topic",
            display_name="Secrets rotation / replication alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        if email:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def notify_rotation_failures(self) -> events.Rule:
        """Secrets Manager's RotationFailed / RotationAbandoned events (any secret in the region)."""
        rule = events.Rule(
            self,
            "RotationFailedRule",
            description="Secrets Manager rotation failed or was abandoned",
            event_pattern=rotation_failure_pattern(),
        )
        self._target(rule)
        return rule

    def check_scheduled_rotations(self) -> config.ManagedRule:
        """AWS Config's ``secretsmanager-scheduled-rotation-success-check``, non-compliance to the topic.

        Catches what no function error shows: a schedule that never invokes the function, a rotation
        that never completes. Needs AWS Config recording ``AWS::SecretsManager::Secret`` in the region.
        """
        rule = config.ManagedRule(
            self,
            "ScheduledRotationCheck",
            identifier=config.ManagedRuleIdentifiers.SECRETSMANAGER_SCHEDULED_ROTATION_SUCCESS_CHECK,
            rule_scope=config.RuleScope.from_resources([config.ResourceType.SECRETS_MANAGER_SECRET]),
            description="Secrets with rotation on have rotated on their schedule",
        )
        events_rule = rule.on_compliance_change(
            "NonCompliant",
            description="A secret missed its scheduled rotation",
            event_pattern=events.EventPattern(
                detail={"newEvaluationResult": {"complianceType": ["NON_COMPLIANT"]}}
            ),
        )
        self._target(events_rule)  # type: ignore[arg-type]
        return rule

    def alarm_on_function_errors(self, construct_id: str, function: lambda_.IFunction) -> cloudwatch.Alarm:
        """Alarm when the function reports any error in a 5-minute period."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=f"Errors in {function.node.path}",
            metric=function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return self.notify_on(alarm)

    def alarm_on_queue_depth(self, construct_id: str, queue: sqs.IQueue) -> cloudwatch.Alarm:
        """Alarm when a dead-letter queue holds any message."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=f"Messages waiting in the dead-letter queue {queue.node.path}",
            metric=queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return self.notify_on(alarm)

    def notify_on(self, alarm: cloudwatch.Alarm) -> cloudwatch.Alarm:
        """Send ``alarm``'s state changes to the topic (and let CloudWatch publish them there)."""
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)
        self._allow_publish("cloudwatch.amazonaws.com", alarm.alarm_arn)
        return alarm

    def _target(self, rule: events.Rule) -> None:
        rule.add_target(_TopicTarget(self.topic))
        self.rules.append(rule)
        self._allow_publish("events.amazonaws.com", rule.rule_arn)

    def _allow_publish(self, service: str, source_arn: str) -> None:
        """Let ``service`` publish on behalf of ``source_arn`` (one of this construct's alarms or rules).

        The topic policy that ``enforce_ssl`` makes replaces SNS's default policy, so without these statements
        only what CDK adds could publish. CloudWatch and EventBridge send ``aws:SourceArn`` (the alarm's,
        the rule's ARN) and ``aws:SourceAccount`` with their publish: conditioning on both means no other
        account's and no other alarm's or rule's publish is allowed (confused deputy):
        https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html,
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions.
        An existing topic (``existing_topic_arn``) keeps its own policy: nothing is added.
        """
        if not isinstance(self.topic, sns.Topic):
            return
        statement = self._publish.get(service)
        if statement is None:
            statement = iam.PolicyStatement(
                sid=f"Publish{service.split('.')[0].capitalize()}",
                principals=[iam.ServicePrincipal(service)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
            )
            self._publish[service] = statement
            self._sources[service] = []
            self.topic.add_to_resource_policy(statement)
        self._sources[service].append(source_arn)
        statement.add_condition("StringEquals", {"aws:SourceAccount": Stack.of(self).account})
        statement.add_condition("ArnEquals", {"aws:SourceArn": list(self._sources[service])})


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """An SNS topic as a rule target, without CDK's unconditioned ``events.amazonaws.com`` Allow (the
    construct adds its own statement, bound to the rule's ARN)."""

    def __init__(self, topic: sns.ITopic) -> None:
        self.topic = topic

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.topic.topic_arn)


def rotation_failure_pattern() -> events.EventPattern:
    return events.EventPattern(
        source=["aws.secretsmanager"],
        detail_type=["AWS Service Event via CloudTrail"],
        detail={
            "eventSource": ["secretsmanager.amazonaws.com"],
            "eventName": list(ROTATION_FAILURE_EVENTS),
        },
    )
