"""The deployable stacks, built from a ``DeploymentConfig`` (the validated ``infra.config_schema`` models).

``SecretsRotationStack``: one per account (and region) that owns rotated secrets.
``ParameterReplicationStack``: one per account and source region.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import (
    Annotations,
    App,
    Aspects,
    CfnDeletionPolicy,
    CfnElement,
    CfnOutput,
    CfnResource,
    CustomResource,
    Duration,
    Environment,
    IAspect,
    RemovalPolicy,
    Stack,
    Tags,
    Validations,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import AwsSolutionsChecks
from constructs import Construct, IConstruct

from infra import config_schema as schema
from infra import created_secrets, readonly_role
from infra.alerts import OperationsAlerts
from infra.config import DeploymentConfig
from infra.created_secrets import secret_names_file
from infra.dashboard import ReplicationDashboard, RotationDashboard
from infra.grants import grant_replica_key
from infra.nag import acknowledge, nag_resource
from infra.replication import EventSource, ParameterReplicator, ReconcileTuning
from infra.rotation import ExistingEndpoint, PasswordPolicy, RotationFunction, RotationSchedule
from infra.secret_fields import PASSWORD_ONLY_GENERATOR, SecretConnectionFields, password_only_generator

_RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}


def _retention(days: int) -> logs.RetentionDays:
    return logs.RetentionDays[_RETENTION[days]]


def _seconds(value: int | None) -> Duration | None:
    return None if value is None else Duration.seconds(value)


class SecretsRotationStack(Stack):
    """Rotation function, KMS keys, created secrets, schedules, and alerts for one account/region."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: schema.Rotation,
        alert_email: str | None = None,
        alert_topic_arn: str | None = None,
        env: Environment | None = None,
        description: str | None = None,
        generators: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """``generators``: entry name -> the ``GenerateSecretString`` its created secret keeps (template
        form, from ``infra.created_secrets``); an entry not in it gets this app's password-only one."""
        super().__init__(scope, construct_id, env=env, description=description)
        self._generators = dict(generators or {})
        self.created_secrets: dict[str, secretsmanager.Secret] = {}
        vpc, subnets, extra_sgs = self._network(config.network)
        fn_cfg = config.function
        pp = fn_cfg.password_policy
        net = config.network
        self.rotation = RotationFunction(
            self,
            "Rotation",
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=extra_sgs,
            create_secrets_manager_endpoint=bool(net and net.create_secrets_manager_endpoint),
            existing_secrets_manager_endpoint=_existing(
                net.existing_secrets_manager_endpoint if net else None
            ),
            create_rds_endpoint=bool(net and net.create_rds_endpoint),
            existing_rds_endpoint=_existing(net.existing_rds_endpoint if net else None),
            lock_timeout=_seconds(fn_cfg.db_lock_timeout_seconds),
            statement_timeout=_seconds(fn_cfg.db_statement_timeout_seconds),
            password_policy=PasswordPolicy(**pp.model_dump()),
            ca_bundle=fn_cfg.ca_bundle_path,
            memory_size=fn_cfg.memory_mb,
            timeout=Duration.seconds(fn_cfg.timeout_seconds),
            log_retention=_retention(fn_cfg.log_retention_days),
            reserved_concurrent_executions=fn_cfg.reserved_concurrency,
        )
        if config.network is not None:
            for i, access in enumerate(config.network.database_access):
                db_sg = ec2.SecurityGroup.from_security_group_id(
                    self, f"DatabaseSecurityGroup{i}", access.security_group_id, mutable=True
                )
                self.rotation.allow_to_database(db_sg, access.port)

        # KMS keys: only the groups some secret uses are created (or imported).
        used = {s.kms_key for s in config.secrets if s.kms_key in {g.name for g in config.key_groups}}
        used |= {s.master_kms_key for s in config.secrets if s.master_kms_key}
        used |= {"default" for s in config.secrets if s.create is not None and s.kms_key is None}
        self.keys: dict[str, kms.IKey] = {}
        for group in config.key_groups:
            if group.name not in used:
                continue
            cid = f"{_pascal(group.name)}Key"
            if group.existing_key_arn:
                self.keys[group.name] = kms.Key.from_key_arn(self, cid, group.existing_key_arn)
            else:
                self.keys[group.name] = kms.Key(
                    self,
                    cid,
                    description=group.description or f"Secrets of key group {group.name}",
                    enable_key_rotation=True,
                    alias=f"alias/secrets-rotation/{self.stack_name}/{group.name}",
                )

        # Secrets: masters first, so alternating secrets can reference them.
        self.secrets: dict[str, secretsmanager.ISecret] = {}
        self.connection_fields: SecretConnectionFields | None = None
        self._fields: dict[str, CustomResource] = {}
        ordered = sorted(config.secrets, key=lambda s: s.master_secret is not None)
        for secret_cfg in ordered:
            self.secrets[secret_cfg.name] = self._secret(secret_cfg, _retention(fn_cfg.log_retention_days))
        for secret_cfg in config.secrets:
            secret = self.secrets[secret_cfg.name]
            master = self._master(secret_cfg)
            schedule = self.rotation.attach_secret(
                secret,
                schedule=RotationSchedule(secret_cfg.schedule.expression, secret_cfg.schedule.window),
                master_secret=master,
                rotate_immediately_on_update=secret_cfg.rotate_immediately_on_update,
            )
            # Rotation (and the test AWS makes when a schedule is set) needs the connection fields.
            for name in (secret_cfg.name, secret_cfg.master_secret):
                if name in self._fields:
                    schedule.node.add_dependency(self._fields[name])

        self.alerts = OperationsAlerts(self, "Alerts", email=alert_email, existing_topic_arn=alert_topic_arn)
        # Needs a trail in this region (see README); the errors alarm below does not.
        self.alerts.notify_rotation_failures()
        self.alerts.alarm_on_function_errors("RotationErrorsAlarm", self.rotation.function)
        if config.scheduled_rotation_check:
            self.alerts.check_scheduled_rotations()
        RotationDashboard(self, "Metrics", alerts=self.alerts, function=self.rotation.function)

        CfnOutput(self, "RotationFunctionArn", value=self.rotation.function.function_arn)
        CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)
        if self.rotation.security_group is not None:
            CfnOutput(
                self,
                "RotationSecurityGroupId",
                value=self.rotation.security_group.security_group_id,
                description="Allow this security group into each database's security group on the DB port",
            )
        for name, secret in self.secrets.items():
            CfnOutput(self, f"{_pascal(name)}SecretArn", value=secret.secret_arn)

    def _network(
        self, network: schema.Network | None
    ) -> tuple[ec2.IVpc | None, ec2.SubnetSelection | None, list[ec2.ISecurityGroup]]:
        if network is None:
            return None, None, []
        azs = list(network.availability_zones)  # required by the configuration: real zones only
        vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=network.vpc_id,
            availability_zones=sorted(set(azs)),
        )
        subnets = ec2.SubnetSelection(
            subnets=[
                ec2.Subnet.from_subnet_attributes(self, f"Subnet{i}", subnet_id=sid, availability_zone=azs[i])
                for i, sid in enumerate(network.subnet_ids)
            ]
        )
        for subnet in subnets.subnets or []:
            Annotations.of(subnet).acknowledge_warning(
                "@aws-cdk/aws-ec2:noSubnetRouteTableId", "The stack never reads the subnets' route tables."
            )
        sgs = [
            ec2.SecurityGroup.from_security_group_id(self, f"ExtraSecurityGroup{i}", sg, mutable=False)
            for i, sg in enumerate(network.security_group_ids)
        ]
        return vpc, subnets, sgs

    def _key(self, ref: str | None) -> kms.IKey | None:
        if ref is None:
            return None
        if ref in self.keys:
            return self.keys[ref]
        cid = f"Key{hashlib.sha256(ref.encode()).hexdigest()[:8]}"
        existing = self.node.try_find_child(cid)
        return existing if existing is not None else kms.Key.from_key_arn(self, cid, ref)  # type: ignore[return-value]

    def _secret(self, cfg: schema.SecretEntry, log_retention: logs.RetentionDays) -> secretsmanager.ISecret:
        cid = f"{_pascal(cfg.name)}Secret"
        if cfg.arn is not None:
            existing = secretsmanager.Secret.from_secret_attributes(
                self, cid, secret_complete_arn=cfg.arn, encryption_key=self._key(cfg.kms_key)
            )
            name = cfg.arn.split(":secret:", 1)[1][:-7]  # without the 6-character suffix
            for region, ref in sorted(cfg.replica_kms_keys.items()):
                self._grant_replica_key(name, region, ref, [self.rotation.role])
            return existing
        assert cfg.create is not None
        c = cfg.create
        key = self._key(cfg.kms_key or "default")
        # The generator a secret was first deployed with, for its whole life: a changed one would make
        # CloudFormation generate a password the database never got (see infra/created_secrets.py).
        generator = self._generators.get(cfg.name, PASSWORD_ONLY_GENERATOR)
        secret = secretsmanager.Secret(
            self,
            cid,
            secret_name=c.secret_name,
            description=c.description or f"{c.engine} credentials of {c.username}@{c.host} (rotated)",
            encryption_key=key,
            # This app's own generator: only the password, with fixed settings.
            generate_secret_string=password_only_generator()
            if generator == PASSWORD_ONLY_GENERATOR
            else None,
            replica_regions=[
                secretsmanager.ReplicaRegion(
                    region=r.region,
                    encryption_key=kms.Key.from_key_arn(
                        self, f"{cid}Replica{_pascal(r.region)}Key", _key_arn(self, r.region, r.kms_key)
                    )
                    if r.kms_key
                    else None,
                )
                for r in c.replica_regions
            ]
            or None,
        )
        if generator != PASSWORD_ONLY_GENERATOR:
            # An earlier version's generator, verbatim (intrinsic functions included) over the L2's
            # empty default: the property stays byte-identical to the deployed one.
            cfn_secret = secret.node.default_child
            assert isinstance(cfn_secret, secretsmanager.CfnSecret)
            cfn_secret.add_property_override("GenerateSecretString", generator)
        self.created_secrets[cfg.name] = secret
        # A created secret outlives its stack and its config entry: the database knows its password.
        # Except when the deploy that creates it fails (RetainExceptOnCreate, see RetainExceptOnCreate).
        secret.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
        if self.connection_fields is None:
            self.connection_fields = SecretConnectionFields(
                self, "ConnectionFields", log_retention=log_retention
            )
        master = self._master(cfg)
        for r in c.replica_regions:
            if r.kms_key:
                self._grant_replica_key(c.secret_name, r.region, r.kms_key)
        self._fields[cfg.name] = self.connection_fields.add(
            secret,
            fields={
                "engine": c.engine,
                "host": c.host,
                "port": c.port,
                "dbname": c.dbname,
                "masterarn": master.secret_arn if master is not None else None,
            },
            # The alternating strategy switches username to <user>_clone and back: set it once only.
            seed_fields={"username": c.username},
            generator=generator,
        )
        return secret

    def created_secret_logical_ids(self) -> dict[str, str]:
        """Entry name -> the logical id of the secret it creates."""
        return {
            name: self.resolve(cast(CfnElement, secret.node.default_child).logical_id)
            for name, secret in self.created_secrets.items()
        }

    def logical_ids(self) -> set[str]:
        """Every logical id this stack defines."""
        return {self.resolve(c.logical_id) for c in self.node.find_all() if isinstance(c, CfnElement)}

    def _grant_replica_key(
        self, secret_name: str, region: str, ref: str, roles: list[iam.IRole] | None = None
    ) -> None:
        """The roles that change a secret's value encrypt its new versions with the replica Region's
        customer-managed key (see ``grant_replica_key``); by default both of a created secret's
        (rotation, connection fields)."""
        arn = _key_arn(self, region, ref)
        alias = None
        if ":alias/" in arn:
            alias = arn.split(":", 5)[-1]
            arn = f"arn:{self.partition}:kms:{region}:{self.account}:key/*"
        if roles is None:
            assert self.connection_fields is not None
            roles = [self.rotation.role, self.connection_fields.role]
        for role in roles:
            grant_replica_key(
                self, role, key_arn=arn, replica_region=region, secret_name=secret_name, alias=alias
            )
            if alias is not None:
                acknowledge(
                    role,
                    [
                        (
                            f"AwsSolutions-IAM5[Resource::{nag_resource(self, arn)}]",
                            f"The replica key in {region} is named by its alias {alias}; the "
                            "kms:ResourceAliases condition limits the statement to that key.",
                        )
                    ],
                )

    def _master(self, cfg: schema.SecretEntry) -> secretsmanager.ISecret | None:
        if cfg.master_secret is not None:
            return self.secrets[cfg.master_secret]
        if cfg.master_secret_arn is not None:
            cid = f"{_pascal(cfg.name)}MasterSecret"
            existing = self.node.try_find_child(cid)
            if existing is not None:
                return existing  # type: ignore[return-value]
            return secretsmanager.Secret.from_secret_attributes(
                self,
                cid,
                secret_complete_arn=cfg.master_secret_arn,
                encryption_key=self._key(cfg.master_kms_key),
            )
        return None


class ParameterReplicationStack(Stack):
    """SSM parameter replication from the stack's (source) region, plus alerts."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: schema.Replication,
        alert_email: str | None = None,
        alert_topic_arn: str | None = None,
        env: Environment | None = None,
        description: str | None = None,
        stage: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description=description)
        # Parameter names are per account and region: each stage keeps its own reconcile position.
        state = {} if stage is None else {"reconcile_state_parameter": reconcile_state_parameter(stage)}
        self.replicator = ParameterReplicator(
            self,
            "Replicator",
            target_regions=config.target_regions,
            include_paths=config.include_paths,
            exclude_paths=config.exclude_paths,
            target_kms_keys=config.target_kms_keys,
            source_kms_keys=config.source_kms_keys,
            reconcile_schedule=events.Schedule.expression(config.reconcile_schedule),
            event_source=EventSource(config.event_source),
            create_trail=config.create_trail,
            delete_unmanaged_replicas=config.delete_unmanaged_replicas,
            copy_ec2_image_parameters=config.copy_ec2_image_parameters,
            adopt_unmanaged_targets=config.adopt_unmanaged_targets,
            memory_size=config.memory_mb,
            timeout=Duration.seconds(config.timeout_seconds),
            reconcile_timeout=Duration.seconds(config.reconcile_timeout_seconds),
            log_retention=_retention(config.log_retention_days),
            reserved_concurrent_executions=config.reserved_concurrency,
            reconcile_tuning=ReconcileTuning(
                concurrency=config.reconcile_concurrency,
                max_rounds=config.max_rounds,
                deep_every=config.reconcile_deep_every,
                requests_per_second=config.reconcile_requests_per_second,
                bulk_tags=config.reconcile_bulk_tags,
                time_margin=_seconds(config.reconcile_time_margin_seconds),
            ),
            **state,
        )
        self.alerts = OperationsAlerts(self, "Alerts", email=alert_email, existing_topic_arn=alert_topic_arn)
        self.alerts.alarm_on_function_errors("ReplicationErrorsAlarm", self.replicator.function)
        self.alerts.alarm_on_function_errors("ReconcileErrorsAlarm", self.replicator.reconcile_function)
        self.alerts.alarm_on_queue_depth("DeadLetterQueueAlarm", self.replicator.dead_letter_queue)
        ReplicationDashboard(
            self,
            "Metrics",
            alerts=self.alerts,
            replicator=self.replicator,
            lag_alarm_seconds=config.lag_alarm_seconds,
        )
        CfnOutput(self, "ReplicationFunctionArn", value=self.replicator.function.function_arn)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.replicator.dead_letter_queue.queue_url)
        CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)


@jsii.implements(IAspect)
class RetainExceptOnCreate:
    """Every ``DeletionPolicy: Retain`` becomes ``RetainExceptOnCreate``.

    "RetainExceptOnCreate behaves like Retain for stack operations, except for the stack operation that
    initially created the resource. If the stack operation that created the resource is rolled back,
    CloudFormation deletes the resource"
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
    So a failed first deploy leaves no fixed-name secret or key behind for the retry to collide with;
    once created, secrets and keys are retained as before. ``UpdateReplacePolicy`` stays ``Retain``.
    """

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource) and node.cfn_options.deletion_policy == CfnDeletionPolicy.RETAIN:
            node.cfn_options.deletion_policy = CfnDeletionPolicy.RETAIN_EXCEPT_ON_CREATE


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").split("-"))


def _key_arn(stack: Stack, region: str, ref: str) -> str:
    if ref.startswith("arn:"):
        return ref
    resource = ref if ref.startswith("alias/") else f"key/{ref}"
    return f"arn:{stack.partition}:kms:{region}:{stack.account}:{resource}"


def _existing(cfg: schema.ExistingEndpoint | None) -> ExistingEndpoint | None:
    return None if cfg is None else ExistingEndpoint(cfg.dns_name, cfg.security_group_id)


def stack_names(config: DeploymentConfig) -> tuple[str, str]:
    """Names of the rotation stack and of the (first) replication stack."""
    rotation = f"SecretsRotation-{config.stage}"
    source = config.replications[0].source_region if config.replications else config.region
    return rotation, replication_stack_name(config.stage, source)


def reconcile_state_parameter(stage: str) -> str:
    """The reconcile state parameter of a stage's replication stacks (one per source region)."""
    return f"/parameter-replicator/{stage}/reconcile-state"


def replication_stack_name(stage: str, source_region: str) -> str:
    return f"ParameterReplication-{stage}-{source_region}"


def add_stacks(
    app: App, config: DeploymentConfig, *, nag: bool = True, secret_names: Path | None = None
) -> list[Stack]:
    """Add the stacks a configuration asks for to ``app`` (and the cdk-nag AwsSolutions checks).

    ``secret_names``: the record of created secrets (``secret_names_file``; ``infra.created_secrets``):
    names checked, each secret's recorded ``GenerateSecretString`` kept, the record updated; a created
    secret whose generator only the deployed stack knows is refused. None: no record, every created
    secret gets this app's own generator (tests of a fresh deployment).
    """
    record = None
    generators: dict[str, Any] = {}
    rotation_name, _ = stack_names(config)
    if secret_names is not None:
        record = created_secrets.CreatedSecretsRecord.load(secret_names)
        created_secrets.check_names(config, record, secret_names)
        generators, unknown = created_secrets.resolve_generators(config, record)
        if unknown:
            raise created_secrets.unknown_error(config, unknown, secret_names, rotation_name)
    stacks: list[Stack] = []
    if config.rotation is not None:
        rotation = SecretsRotationStack(
            app,
            rotation_name,
            config=config.rotation,
            alert_email=config.alerts.email,
            alert_topic_arn=config.alerts.topic_arn,
            env=Environment(account=config.account, region=config.region),
            description=f"Secrets Manager rotation ({config.stage})",
            generators=generators,
        )
        created_secrets.check_references(config, generators, rotation.logical_ids())
        stacks.append(rotation)
    if record is not None and secret_names is not None:
        new = created_secrets.updated(config, generators)
        if new != record and (new.names or secret_names.exists()):  # no file for a config creating none
            new.save(secret_names)
    for replication in config.replications:
        source = replication.source_region
        stacks.append(
            ParameterReplicationStack(
                app,
                replication_stack_name(config.stage, source),
                config=replication,
                alert_email=config.alerts.email,
                alert_topic_arn=config.alerts.topic_arn,
                env=Environment(account=config.account, region=source),
                description=f"SSM parameter replication from {source} ({config.stage})",
                stage=config.stage,
            )
        )
    if config.secretsctl_read_only_role is not None:
        stacks.append(
            readonly_role.stack(
                app,
                config.stage,
                config.account,
                config.region,
                config.secretsctl_read_only_role.trusted_account,
                config.secretsctl_read_only_role.role_name,
            )
        )
    for stack in stacks:
        Aspects.of(stack).add(RetainExceptOnCreate())
        Tags.of(stack).add("service", "secrets-rotation")
        Tags.of(stack).add("stage", config.stage)
        for key, value in sorted(config.tags.items()):
            Tags.of(stack).add(key, value)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks


__all__ = [
    "ParameterReplicationStack",
    "SecretsRotationStack",
    "add_stacks",
    "secret_names_file",
    "stack_names",
]
