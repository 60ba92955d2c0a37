"""``RotationFunction``: one Secrets Manager rotation function serving many secrets in one network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.bundling import ca_bundle_path_in_function, rotation_code
from infra.grants import SecretKeyGrants
from infra.nag import ENV_KMS, LOG_GROUP_KMS, acknowledge, checkov_skip, nag_resource
from rotation_handlers.rds_endpoints import RDS_ACTIONS

ROTATION_RUNTIME = lambda_.Runtime.PYTHON_3_14
ROTATION_HANDLER = "rotation_handlers.rotate.handler"

# boto3 reads a service-specific endpoint from AWS_ENDPOINT_URL_<service id> ("Secrets Manager" ->
# SECRETS_MANAGER): https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
SECRETS_MANAGER_ENDPOINT_ENV = "AWS_ENDPOINT_URL_SECRETS_MANAGER"
RDS_ENDPOINT_ENV = "AWS_ENDPOINT_URL_RDS"
# The handler's database timeouts (rotation_handlers.engines.users): whole seconds, with their ranges.
LOCK_TIMEOUT_ENV = "DB_LOCK_TIMEOUT"  # PostgreSQL and MySQL: longest wait of one statement for a lock
STATEMENT_TIMEOUT_ENV = "DB_STATEMENT_TIMEOUT"  # PostgreSQL only: longest run of one statement
DB_TIMEOUTS = {
    LOCK_TIMEOUT_ENV: ("lock_timeout", 1, 60),
    STATEMENT_TIMEOUT_ENV: ("statement_timeout", 1, 300),
}

# Secrets Manager calls of the rotation steps (createSecret, setSecret, testSecret, finishSecret).
# GetRandomPassword is deliberately absent: the handler generates passwords locally with `secrets`.
ROTATE_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)


@dataclass(frozen=True)
class RotationSchedule:
    """A Secrets Manager rotation schedule (``RotationRules``): rate or cron, with an optional window.

    CDK's L2 ``add_rotation_schedule`` offers only a rate; this maps to the full ``RotationRules``.
    """

    expression: str
    window: str | None = None

    @staticmethod
    def rate(interval: Duration, window: Duration | None = None) -> RotationSchedule:
        hours = int(interval.to_hours())
        if hours % 24 == 0:
            days = hours // 24
            expression = f"rate({days} {'day' if days == 1 else 'days'})"
        else:
            expression = f"rate({hours} hours)"
        return RotationSchedule(expression, _window(window))

    @staticmethod
    def cron(expression: str, window: Duration | None = None) -> RotationSchedule:
        """``expression``: a Secrets Manager cron, e.g. ``cron(0 4 ? * SUN *)``."""
        return RotationSchedule(expression, _window(window))


def _endpoint_url(endpoint: ec2.InterfaceVpcEndpoint) -> str:
    """``https://`` + the endpoint's regional DNS name (its first DNS entry is ``<zone id>:<name>``)."""
    first = Fn.select(0, endpoint.vpc_endpoint_dns_entries)
    return Fn.join("", ["https://", Fn.select(1, Fn.split(":", first))])


def _pascal_service(short_name: str) -> str:
    return {"secretsmanager": "SecretsManager", "rds": "Rds"}.get(short_name, short_name.capitalize())


def _window(window: Duration | None) -> str | None:
    return None if window is None else f"{int(window.to_hours())}h"


@dataclass(frozen=True)
class ExistingEndpoint:
    """An interface endpoint that already serves the VPC (e.g. a shared Secrets Manager endpoint).

    ``dns_name``: the endpoint's own DNS name (``vpce-...vpce.amazonaws.com``) when its private DNS is
    off; the function is pointed at it. None when private DNS is on (the public name resolves to it).
    ``security_group_id``: the endpoint's security group; the stack admits the function on 443.
    """

    dns_name: str | None = None
    security_group_id: str | None = None


@dataclass(frozen=True)
class PasswordPolicy:
    """What the handler's password generator produces (passed as environment variables)."""

    length: int = 32
    #: None: the function's per-engine default (rotation_handlers.passwords.DEFAULT_EXCLUDE_CHARACTERS).
    exclude_characters: str | None = None
    exclude_numbers: bool = False
    exclude_punctuation: bool = False
    exclude_uppercase: bool = False
    exclude_lowercase: bool = False
    require_each_included_type: bool = True

    def environment(self) -> dict[str, str]:
        def flag(value: bool) -> str:
            return "true" if value else "false"

        env = {
            "PASSWORD_LENGTH": str(self.length),
            "EXCLUDE_NUMBERS": flag(self.exclude_numbers),
            "EXCLUDE_PUNCTUATION": flag(self.exclude_punctuation),
            "EXCLUDE_UPPERCASE": flag(self.exclude_uppercase),
            "EXCLUDE_LOWERCASE": flag(self.exclude_lowercase),
            "REQUIRE_EACH_INCLUDED_TYPE": flag(self.require_each_included_type),
        }
        if self.exclude_characters is not None:
            env["EXCLUDE_CHARACTERS"] = self.exclude_characters
        return env


class RotationFunction(Construct):
    """A rotation Lambda for database secrets, with IAM scoped to exactly the secrets attached to it.

    Without ``vpc`` the function runs outside any VPC. With ``vpc`` it gets its own security group
    (``connections``/``security_group``; open a database to it with ``allow_to_database``) and,
    optionally, a Secrets Manager interface endpoint.

    Attach secrets with ``attach_secret``: it grants the rotation permissions on the secret (and its
    KMS key, and its master secret for the alternating strategy) and creates the rotation schedule.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] = (),
        create_secrets_manager_endpoint: bool = False,
        existing_secrets_manager_endpoint: ExistingEndpoint | None = None,
        create_rds_endpoint: bool = False,
        existing_rds_endpoint: ExistingEndpoint | None = None,
        password_policy: PasswordPolicy | None = None,
        ca_bundle: Path | None = None,
        memory_size: int = 256,
        timeout: Duration | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        reserved_concurrent_executions: int | None = None,
        lock_timeout: Duration | None = None,
        statement_timeout: Duration | None = None,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        timeout = timeout or Duration.seconds(90)
        if timeout.to_seconds() < 30:
            # ~3 database logins x 5 s connect timeout + Secrets Manager calls, with room to spare.
            raise ValueError("RotationFunction timeout must be at least 30 seconds")
        if reserved_concurrent_executions is not None and reserved_concurrent_executions < 10:
            # Secrets Manager names too few concurrent executions as a cause of rotation failures
            # (https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot_rotation.html);
            # one function serves every attached secret.
            raise ValueError("reserved_concurrent_executions must be at least 10 (or None: no reservation)")
        if vpc_subnets is not None and vpc is None:
            raise ValueError("vpc_subnets needs vpc")
        for name, create, existing in (
            ("secrets_manager", create_secrets_manager_endpoint, existing_secrets_manager_endpoint),
            ("rds", create_rds_endpoint, existing_rds_endpoint),
        ):
            if (create or existing is not None) and vpc is None:
                raise ValueError(f"a {name} endpoint needs vpc")
            if create and existing is not None:
                raise ValueError(f"create_{name}_endpoint and existing_{name}_endpoint exclude each other")

        self.password_policy = password_policy or PasswordPolicy()
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Secrets Manager rotation function (scoped to the attached secrets)",
        )
        # Written out instead of AWSLambdaBasicExecutionRole / AWSLambdaVPCAccessExecutionRole.
        base = iam.Policy(self, "BasePolicy", roles=[self.role])
        base.add_statements(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )

        self.security_group: ec2.ISecurityGroup | None = None
        function_sgs: list[ec2.ISecurityGroup] = []
        if vpc is not None:
            self.security_group = ec2.SecurityGroup(
                self,
                "SecurityGroup",
                vpc=vpc,
                description="Secrets Manager rotation function",
                allow_all_outbound=True,
            )
            function_sgs = [self.security_group, *security_groups]
            sel = vpc_subnets or ec2.SubnetSelection()
            subnets = vpc.select_subnets(
                availability_zones=sel.availability_zones,
                one_per_az=sel.one_per_az,
                subnet_filters=sel.subnet_filters,
                subnet_group_name=sel.subnet_group_name,
                subnets=sel.subnets,
                subnet_type=sel.subnet_type,
            )
            subnet_arns = [
                stack.format_arn(service="ec2", resource="subnet", resource_name=s)
                for s in subnets.subnet_ids
            ]
            sg_arns = [
                stack.format_arn(service="ec2", resource="security-group", resource_name=sg.security_group_id)
                for sg in function_sgs
            ]
            eni_arn = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
            base.add_statements(
                iam.PolicyStatement(
                    sid="CreateEniInOwnSubnetsAndGroups",
                    actions=["ec2:CreateNetworkInterface"],
                    resources=[eni_arn, *subnet_arns, *sg_arns],
                ),
                iam.PolicyStatement(
                    sid="ManageEnis",
                    actions=[
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=[eni_arn],
                ),
                # ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets have no resource-level
                # permissions: AWS only accepts "*".
                iam.PolicyStatement(
                    sid="DescribeEnis",
                    actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
                    resources=["*"],
                ),
            )
            acknowledge(
                base,
                [
                    (
                        "AwsSolutions-IAM5[Resource::*]",
                        "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets have no resource-level "
                        "permissions; Lambda needs them to attach the function to the VPC.",
                    ),
                    (
                        f"AwsSolutions-IAM5[Resource::{nag_resource(stack, eni_arn)}]",
                        "Lambda creates and deletes its hyperplane ENIs with ids unknown before deploy; "
                        "creation is further limited to the function's subnets and security groups.",
                    ),
                ],
            )

        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        endpoint_env: dict[str, str] = {}
        if vpc is not None and self.security_group is not None:
            for service, env_name, create, existing in (
                (
                    ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
                    SECRETS_MANAGER_ENDPOINT_ENV,
                    create_secrets_manager_endpoint,
                    existing_secrets_manager_endpoint,
                ),
                (
                    ec2.InterfaceVpcEndpointAwsService.RDS,
                    RDS_ENDPOINT_ENV,
                    create_rds_endpoint,
                    existing_rds_endpoint,
                ),
            ):
                url = None
                if create:
                    endpoint = self._create_endpoint(vpc, vpc_subnets, service, self.security_group)
                    self.endpoints[service.short_name] = endpoint
                    url = _endpoint_url(endpoint)
                elif existing is not None:
                    url = self._use_existing_endpoint(service.short_name, existing, self.security_group)
                if url is not None:
                    endpoint_env[env_name] = url
        self.secrets_manager_endpoint: ec2.InterfaceVpcEndpoint | None = self.endpoints.get("secretsmanager")

        environment = self.password_policy.environment()
        if ca_bundle is not None:
            environment["DB_CA_BUNDLE"] = ca_bundle_path_in_function()
        for env_name, value in ((LOCK_TIMEOUT_ENV, lock_timeout), (STATEMENT_TIMEOUT_ENV, statement_timeout)):
            if value is not None:
                argument, low, high = DB_TIMEOUTS[env_name]
                seconds = value.to_seconds()
                if not low <= seconds <= high or seconds != int(seconds):
                    raise ValueError(f"{argument} must be a whole number of seconds, {low} to {high}")
                environment[env_name] = str(int(seconds))
        environment.update(endpoint_env)

        self.function = lambda_.Function(
            self,
            "Function",
            description="Rotates database secrets (single-user and alternating-users strategies)",
            runtime=ROTATION_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=ROTATION_HANDLER,
            code=code or rotation_code(ROTATION_RUNTIME, lambda_.Architecture.ARM_64, ca_bundle),
            memory_size=memory_size,
            timeout=timeout,
            role=self.role,
            environment=environment,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            vpc=vpc,
            vpc_subnets=vpc_subnets if vpc is not None else None,
            security_groups=function_sgs or None,
            allow_public_subnet=False,
            reserved_concurrent_executions=reserved_concurrent_executions,
        )
        self.function.node.add_dependency(base)
        skips = [
            ENV_KMS,
            (
                "CKV_AWS_116",
                "Secrets Manager invokes the rotation function synchronously and retries the step itself: "
                "a dead-letter queue (asynchronous invocations only) never receives anything.",
            ),
        ]
        if reserved_concurrent_executions is None:
            skips.append(
                (
                    "CKV_AWS_115",
                    "Secrets Manager runs one rotation per secret at a time; a reservation is optional "
                    "(rotation.function.reservedConcurrency) and would take from the account's pool.",
                )
            )
        if vpc is None:
            skips.append(
                (
                    "CKV_AWS_117",
                    'Configured outside any VPC on purpose ({"vpc": false}): the databases are reachable '
                    "without one.",
                )
            )
        checkov_skip(self.function, skips)
        checkov_skip(self.log_group, [LOG_GROUP_KMS])
        # Secrets Manager invokes the function; only on behalf of this account.
        self.invoke_permission = lambda_.CfnPermission(
            self,
            "SecretsManagerInvoke",
            action="lambda:InvokeFunction",
            function_name=self.function.function_arn,
            principal="secretsmanager.amazonaws.com",
            source_account=stack.account,
        )
        self._key_grants = SecretKeyGrants(self, self.role)
        self._secret_statement: iam.PolicyStatement | None = None
        self._master_statement: iam.PolicyStatement | None = None
        self.schedules: list[secretsmanager.CfnRotationSchedule] = []
        self._grant_rds_describe(stack)

    def _grant_rds_describe(self, stack: Stack) -> None:
        """The RDS calls of the alternating strategy's endpoint check (the handler's RDS_ACTIONS).

        Per the Service Authorization Reference
        (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html)
        these actions take only the cluster / db resource types (DescribeDBClusterEndpoints also
        cluster-endpoint, for Aurora custom endpoints): no condition narrows them further. The
        statement stays in this Region: a cross-Region replica's lookup in its own Region is
        refused (the rotation then refuses the endpoint) unless an operator grants that Region too.
        """
        resources = [
            stack.format_arn(
                service="rds", resource=kind, resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
            )
            for kind in ("cluster", "db", "cluster-endpoint")
        ]
        statement = iam.PolicyStatement(
            sid="DescribeDatabases", actions=list(RDS_ACTIONS), resources=resources
        )
        policy = iam.Policy(self, "DescribeDatabasesPolicy", roles=[self.role], statements=[statement])
        acknowledge(
            policy,
            [
                (
                    f"AwsSolutions-IAM5[Resource::{nag_resource(stack, arn)}]",
                    "Read-only rds:Describe* of the account's clusters and instances in this region: the "
                    "alternating strategy verifies that a secret's host is an endpoint of its master's "
                    "cluster or instance, whose identifiers are only known from the secrets at run time.",
                )
                for arn in resources
            ],
        )

    # -- endpoints ------------------------------------------------------------------------------

    def _create_endpoint(
        self,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection | None,
        service: ec2.InterfaceVpcEndpointAwsService,
        function_sg: ec2.ISecurityGroup,
    ) -> ec2.InterfaceVpcEndpoint:
        """An interface endpoint used by this function only: private DNS off, so the public service
        name keeps resolving as before for every other workload of the VPC; the function is pointed
        at the endpoint's own DNS name, and only the function's security group may connect."""
        name = _pascal_service(service.short_name)
        endpoint_sg = ec2.SecurityGroup(
            self,
            # The Secrets Manager endpoint's group keeps the id it always had (no replacement).
            "EndpointSecurityGroup" if name == "SecretsManager" else f"{name}EndpointSecurityGroup",
            vpc=vpc,
            description=f"{service.short_name} endpoint of the rotation function",
            allow_all_outbound=False,
        )
        sel = vpc_subnets or ec2.SubnetSelection()
        endpoint = ec2.InterfaceVpcEndpoint(
            self,
            f"{name}Endpoint",
            vpc=vpc,
            service=service,
            # An interface endpoint takes at most one subnet per availability zone.
            subnets=ec2.SubnetSelection(subnets=sel.subnets, subnet_type=sel.subnet_type, one_per_az=True),
            private_dns_enabled=False,
            open=False,
            security_groups=[endpoint_sg],
        )
        endpoint.connections.allow_default_port_from(function_sg, "HTTPS from the rotation function")
        return endpoint

    def _use_existing_endpoint(
        self, short_name: str, existing: ExistingEndpoint, function_sg: ec2.ISecurityGroup
    ) -> str | None:
        if existing.security_group_id is not None:
            sg = ec2.SecurityGroup.from_security_group_id(
                self,
                f"{_pascal_service(short_name)}ExistingEndpointSecurityGroup",
                existing.security_group_id,
            )
            sg.connections.allow_from(function_sg, ec2.Port.tcp(443), "HTTPS from the rotation function")
        return None if existing.dns_name is None else f"https://{existing.dns_name}"

    # -- network --------------------------------------------------------------------------------

    @property
    def connections(self) -> ec2.Connections:
        """The function's network connections (``IConnectable``); empty outside a VPC."""
        return self.function.connections

    def allow_to_database(self, database: ec2.IConnectable, port: int) -> None:
        """Let the function reach a database (a security group, a DB instance/cluster, ...).

        Adds an ingress rule on the database's security group(s) from the function's own group.
        """
        if self.security_group is None:
            raise ValueError("the rotation function is not in a VPC; open the database by other means")
        database.connections.allow_from(
            self.security_group, ec2.Port.tcp(port), "Secrets Manager rotation function"
        )

    # -- grants ---------------------------------------------------------------------------------

    def grant_rotate(self, secret: secretsmanager.ISecret) -> None:
        """The rotation steps on ``secret`` (and its KMS key, bound to the secret's ARN)."""
        if self._secret_statement is None:
            self._secret_statement = iam.PolicyStatement(sid="RotateSecrets", actions=list(ROTATE_ACTIONS))
            self.role.add_to_principal_policy(self._secret_statement)
        self._secret_statement.add_resources(secret.secret_arn)
        if secret.encryption_key is not None:
            self._key_grants.grant(
                secret.encryption_key, secret.secret_arn, ("kms:Decrypt", "kms:GenerateDataKey")
            )

    def grant_read_master(self, secret: secretsmanager.ISecret) -> None:
        """Read a master secret (alternating-users strategy: the master user clones the app user)."""
        if self._master_statement is None:
            self._master_statement = iam.PolicyStatement(
                sid="ReadMasterSecrets", actions=["secretsmanager:GetSecretValue"]
            )
            self.role.add_to_principal_policy(self._master_statement)
        self._master_statement.add_resources(secret.secret_arn)
        if secret.encryption_key is not None:
            self._key_grants.grant(secret.encryption_key, secret.secret_arn, ("kms:Decrypt",))

    # -- secrets --------------------------------------------------------------------------------

    def attach_secret(
        self,
        secret: secretsmanager.ISecret,
        *,
        schedule: RotationSchedule,
        master_secret: secretsmanager.ISecret | None = None,
        rotate_immediately_on_update: bool = False,
    ) -> secretsmanager.CfnRotationSchedule:
        """Rotate ``secret`` with this function on ``schedule``.

        With ``master_secret`` the handler uses the alternating-users strategy (the secret's
        ``masterarn`` field must name it). Rotation does not start on every deploy unless
        ``rotate_immediately_on_update``.
        """
        self.grant_rotate(secret)
        if master_secret is not None:
            self.grant_read_master(secret=master_secret)
        rules = secretsmanager.CfnRotationSchedule.RotationRulesProperty(
            schedule_expression=schedule.expression,
            duration=schedule.window,
        )
        # L1 on purpose: the L2 add_rotation_schedule grants GetRandomPassword on "*", which the
        # handler does not need, and offers only a rate.
        schedule_id = f"{secret.node.id}Schedule"
        if self.node.try_find_child(schedule_id) is not None:
            schedule_id = f"{schedule_id}{len(self.schedules)}"
        rotation = secretsmanager.CfnRotationSchedule(
            self,
            schedule_id,
            secret_id=secret.secret_arn,
            rotation_lambda_arn=self.function.function_arn,
            rotation_rules=rules,
            rotate_immediately_on_update=rotate_immediately_on_update,
        )
        rotation.node.add_dependency(self.invoke_permission)
        rotation.node.add_dependency(self.role)
        self.schedules.append(rotation)
        return rotation

    # -- metrics --------------------------------------------------------------------------------

    def metric_errors(self) -> cloudwatch.Metric:
        return self.function.metric_errors(period=Duration.minutes(5), statistic="Sum")
