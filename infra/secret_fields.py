"""``SecretConnectionFields``: connection fields of created secrets, written without touching the password.

CloudFormation regenerates ``GenerateSecretString`` whenever any of its properties changes
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-secret.html),
and a regenerated password is one the database never got. So a secret this app creates generates
only ``{"password": ...}`` with literal, fixed settings, a secret created by an earlier version keeps
the generator it was deployed with (``infra.created_secrets``), and this custom resource writes the
non-secret fields (engine, host, port, dbname, masterarn; username once) into the secret's current
value; see ``infra/secret_fields_handler/index.py``.

Deploy lifecycle (design; docs/deploying.md "Upgrades, rollbacks and rotations"): with the record
kept, no deploy changes ``GenerateSecretString``. A deploy that changes it anyway (a record that does
not match the deployed stack) regenerates the password; in each such deploy that invokes this
resource at all, it gets a request right after the regeneration and writes back the password the
database knows: the upgrade's Create; that upgrade's rollback, as the Delete of the resource created
in the failed update (CloudFormation deletes it after the secret went back, in
``UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS``, which the function reads with DescribeStacks;
the Create labels its write, so that Delete recognises it even when the Create died before its
answer reached CloudFormation and the Delete carries an id CloudFormation generated); and,
for a settings change, the Update and the rollback Update, because the ``Generator`` property below
changes with the settings. Writes are staged and moved to AWSCURRENT only from the version they were
computed from (``UpdateSecretVersionStage``), so an older password is never published.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.grants import SecretKeyGrants
from infra.nag import LOG_GROUP_KMS, NO_VPC, checkov_skip

HANDLER_DIR = Path(__file__).resolve().parent / "secret_fields_handler"
RESOURCE_TYPE = "Custom::SecretConnectionFields"
FIELDS_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)
#: The function's own time limit: up to 40 s waiting for a pending rotation, then its answer.
FIELDS_FUNCTION_TIMEOUT = Duration.seconds(120)

#: The only settings of a created secret's password generation. Written here, never derived from the
#: handler package or the configuration, so that no code or config change regenerates a password.
#: Characters that break connection strings, URLs, shells, DSNs and .pgpass (both engines).
CREATED_SECRET_EXCLUDE_CHARACTERS = "/@\"'\\`$;&|<>(){}[]!?*#%=,~+ :"  # noqa: S105 - not a password
CREATED_SECRET_PASSWORD_LENGTH = 32

#: How long CloudFormation waits for the function's answer (``ServiceTimeout``; without it, an hour:
#: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudformation-customresource.html#cfn-cloudformation-customresource-servicetimeout).
#: It covers the function's whole run plus the response's upload, so a request the function never
#: answers (a crash, a Lambda timeout) fails the deploy within three minutes instead of an hour.
SERVICE_TIMEOUT = FIELDS_FUNCTION_TIMEOUT.plus(Duration.seconds(60))


def password_only_generator() -> secretsmanager.SecretStringGenerator:
    """``{"password": <generated>}``: nothing in it may ever change."""
    return secretsmanager.SecretStringGenerator(
        secret_string_template="{}",  # noqa: S106 - an empty JSON object, not a password
        generate_string_key="password",
        password_length=CREATED_SECRET_PASSWORD_LENGTH,
        exclude_characters=CREATED_SECRET_EXCLUDE_CHARACTERS,
    )


#: ``password_only_generator`` in the template's form: what every secret this app creates from now on
#: is generated with (``infra.created_secrets`` keeps an earlier one for a secret that has it).
PASSWORD_ONLY_GENERATOR: dict[str, Any] = {
    "ExcludeCharacters": CREATED_SECRET_EXCLUDE_CHARACTERS,
    "GenerateStringKey": "password",
    "PasswordLength": CREATED_SECRET_PASSWORD_LENGTH,
    "SecretStringTemplate": "{}",
}


def _flatten(value: Any) -> str:
    """A ``SecretStringTemplate`` as one string, each intrinsic function replaced by a placeholder."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        return str(sep).join(_flatten(p) for p in parts)
    return "?"


def generator_fingerprint(generator: dict[str, Any] | None = None) -> str:
    """A secret's ``GenerateSecretString`` (template form) as the custom resource's ``Generator`` property:
    a deploy that changes it regenerates the password, and then also sends the resource the Update that
    restores it. A template built with intrinsic functions is flattened, so its keys can still be read."""
    settings = dict(PASSWORD_ONLY_GENERATOR if generator is None else generator)
    if "SecretStringTemplate" in settings:
        settings["SecretStringTemplate"] = _flatten(settings["SecretStringTemplate"])
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


class SecretConnectionFields(Construct):
    """One small function per stack; ``add`` makes one custom resource per created secret."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Writes the connection fields of the secrets this stack creates",
        )
        self.policy = iam.Policy(self, "Policy", roles=[self.role])
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self._statement = iam.PolicyStatement(sid="WriteConnectionFields", actions=list(FIELDS_ACTIONS))
        self.policy.add_statements(self._statement)
        # The stack's status tells a rollback's requests from a deploy's (DescribeStacks on this stack only).
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="ReadOwnStackStatus",
                actions=["cloudformation:DescribeStacks"],
                resources=[Stack.of(self).stack_id],
            )
        )
        self._key_grants = SecretKeyGrants(self, self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description="Writes created secrets' connection fields next to their generated password",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "*.pyc"]),
            timeout=FIELDS_FUNCTION_TIMEOUT,
            # CloudFormation invokes it asynchronously; Lambda's retries of a failed invocation (twice, up
            # to minutes later: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html)
            # would write the secret while CloudFormation, past SERVICE_TIMEOUT, already rolls back.
            retry_attempts=0,
            memory_size=128,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
        )
        self.function.node.add_dependency(self.policy)
        checkov_skip(self.log_group, [LOG_GROUP_KMS])
        checkov_skip(
            self.function,
            [
                NO_VPC,
                (
                    "CKV_AWS_116",
                    "CloudFormation invokes the function synchronously and fails the deploy on an error: "
                    "a dead-letter queue never receives anything.",
                ),
                (
                    "CKV_AWS_115",
                    "Invoked only by CloudFormation during deploys, once per created secret and change.",
                ),
            ],
        )

    def add(
        self,
        secret: secretsmanager.ISecret,
        *,
        fields: dict[str, Any],
        seed_fields: dict[str, Any],
        generator: dict[str, Any] | None = None,
    ) -> CustomResource:
        """Write ``fields`` (None removes a key) on every deploy, ``seed_fields`` only where absent.

        ``generator``: the secret's ``GenerateSecretString`` (template form; None: this app's own)."""
        stack = Stack.of(self)
        self._statement.add_resources(secret.secret_arn)
        if secret.encryption_key is not None:
            self._key_grants.grant(
                secret.encryption_key, secret.secret_arn, ("kms:Decrypt", "kms:GenerateDataKey")
            )
        resource = CustomResource(
            self,
            f"{secret.node.id}Fields",
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            service_timeout=SERVICE_TIMEOUT,
            properties={
                "SecretId": secret.secret_arn,
                # Custom resource properties arrive as strings: JSON keeps the port a number.
                "Fields": stack.to_json_string({k: v for k, v in fields.items() if v is not None}),
                "RemoveFields": stack.to_json_string(sorted(k for k, v in fields.items() if v is None)),
                "SeedFields": stack.to_json_string(seed_fields),
                "Generator": generator_fingerprint(generator),
            },
        )
        resource.node.add_dependency(self.policy)
        resource.node.add_dependency(self.role)
        return resource
