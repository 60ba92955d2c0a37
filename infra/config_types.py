"""The typed deployment configuration that the stacks read (the output of ``infra.config``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


class ConfigError(ValueError):
    """The configuration file is invalid; ``errors`` lists every problem as ``path: message``."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"invalid configuration {source} ({len(errors)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class RotationScheduleConfig:
    """When Secrets Manager rotates: a rate expression, or a cron expression with a window."""

    expression: str  # "rate(30 days)", "rate(8 hours)" or "cron(0 4 ? * SUN *)"
    window: str | None = None  # rotation window ("Duration"), e.g. "3h"


@dataclass(frozen=True)
class PasswordPolicyConfig:
    length: int = 32
    exclude_characters: str | None = None  # the function's per-engine default
    exclude_numbers: bool = False
    exclude_punctuation: bool = False
    exclude_uppercase: bool = False
    exclude_lowercase: bool = False
    require_each_included_type: bool = True


@dataclass(frozen=True)
class DatabaseAccessConfig:
    """A database security group that the stack opens to the rotation function on ``port``."""

    security_group_id: str
    port: int


@dataclass(frozen=True)
class ExistingEndpointConfig:
    """An interface endpoint the VPC already has: its own DNS name (when its private DNS is off) and
    its security group (the stack admits the function on 443)."""

    dns_name: str | None = None
    security_group_id: str | None = None


@dataclass(frozen=True)
class NetworkConfig:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    availability_zones: tuple[str, ...]
    security_group_ids: tuple[str, ...] = ()  # extra groups besides the function's own
    create_secrets_manager_endpoint: bool = False
    database_access: tuple[DatabaseAccessConfig, ...] = ()
    existing_secrets_manager_endpoint: ExistingEndpointConfig | None = None
    create_rds_endpoint: bool = False
    existing_rds_endpoint: ExistingEndpointConfig | None = None


@dataclass(frozen=True)
class KeyGroupConfig:
    """A KMS key for a group of secrets: created by the stack (rotation on) or an existing key ARN."""

    name: str
    existing_key_arn: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ReplicaRegionConfig:
    region: str
    kms_key: str | None = None  # key id / ARN / alias in that region; None = aws/secretsmanager


@dataclass(frozen=True)
class NewDatabaseSecretConfig:
    """What the stack needs to create a database secret with a generated password."""

    secret_name: str
    engine: str
    host: str
    port: int
    username: str
    dbname: str | None = None
    description: str | None = None
    replica_regions: tuple[ReplicaRegionConfig, ...] = ()


@dataclass(frozen=True)
class SecretConfig:
    """One rotated secret: an existing one (``arn``) or one the stack creates (``create``)."""

    name: str  # construct id / reference name inside the config
    strategy: Literal["single", "alternating"]
    schedule: RotationScheduleConfig
    arn: str | None = None
    create: NewDatabaseSecretConfig | None = None
    # Key group name (for created secrets, and existing ones encrypted by one of our keys), a KMS key
    # ARN (existing secrets under another customer-managed key) or None (existing secret under the
    # AWS managed key aws/secretsmanager: no KMS grant is needed).
    kms_key: str | None = None
    master_secret: str | None = None  # name of another entry in rotation.secrets
    master_secret_arn: str | None = None  # an existing master secret outside this config
    master_kms_key: str | None = None  # key group or key ARN of master_secret_arn
    rotate_immediately_on_update: bool = False


@dataclass(frozen=True)
class RotationFunctionConfig:
    memory_mb: int = 256
    timeout_seconds: int = 90
    log_retention_days: int = 90
    ca_bundle: Path | None = None  # resolved, absolute
    password_policy: PasswordPolicyConfig = field(default_factory=PasswordPolicyConfig)
    reserved_concurrency: int | None = None
    lock_timeout_seconds: int | None = None  # DB_LOCK_TIMEOUT; None: the function's default
    statement_timeout_seconds: int | None = None  # DB_STATEMENT_TIMEOUT; None: the function's default


@dataclass(frozen=True)
class RotationConfig:
    network: NetworkConfig | None  # None: function outside any VPC (explicit "network": {"vpc": false})
    function: RotationFunctionConfig
    key_groups: tuple[KeyGroupConfig, ...]
    secrets: tuple[SecretConfig, ...]
    scheduled_rotation_check: bool = False  # AWS Config rule secretsmanager-scheduled-rotation-success-check

    def secret(self, name: str) -> SecretConfig:
        return next(s for s in self.secrets if s.name == name)

    def key_group(self, name: str) -> KeyGroupConfig:
        return next(k for k in self.key_groups if k.name == name)


@dataclass(frozen=True)
class ReplicationConfig:
    source_region: str
    target_regions: tuple[str, ...]
    include_paths: tuple[str, ...] = ("/",)
    exclude_paths: tuple[str, ...] = ()
    target_kms_keys: dict[str, str] = field(default_factory=dict)  # region -> key id / alias / ARN
    source_kms_keys: tuple[str, ...] = ()  # key ARNs of source SecureStrings; () = any key via SSM
    reconcile_schedule: str = "rate(6 hours)"
    event_source: Literal["cloudtrail", "parameter-store"] = "cloudtrail"
    create_trail: bool = False  # default: the account's existing trail
    delete_unmanaged_replicas: bool = False
    copy_ec2_image_parameters: bool = False
    adopt_unmanaged_targets: bool = False
    memory_mb: int = 256
    timeout_seconds: int = 120
    reconcile_timeout_seconds: int = 900
    log_retention_days: int = 90
    reserved_concurrency: int | None = 5  # event function; reconcile gets 1; None: no reservation
    # Handler settings (None: the handler's default).
    reconcile_concurrency: int | None = None  # RECONCILE_CONCURRENCY (threads in total)
    max_rounds: int | None = None  # REPLICATION_MAX_ROUNDS
    reconcile_deep_every: int | None = None  # RECONCILE_DEEP_EVERY
    reconcile_requests_per_second: int | None = None  # RECONCILE_REQUESTS_PER_SECOND
    reconcile_bulk_tags: bool = True  # RECONCILE_BULK_TAGS
    reconcile_time_margin_seconds: int | None = None  # RECONCILE_TIME_MARGIN_SECONDS
    lag_alarm_seconds: int = 900  # the dashboard's replication-lag alarm


#: Reconcile schedules by event source: native Parameter Store events carry no tag changes, so tag
#: edits reach the targets only through reconcile.
DEFAULT_RECONCILE_SCHEDULE = {"cloudtrail": "rate(6 hours)", "parameter-store": "rate(1 hour)"}
DEFAULT_KEY_GROUP = "default"
#: The replication handler's default RECONCILE_TIME_MARGIN_SECONDS: reconcile stops this long before
#: its Lambda timeout, so the timeout must be longer.
RECONCILE_TIME_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class AlertsConfig:
    email: str | None = None
    topic_arn: str | None = None  # an existing SNS topic instead of the stack's own


@dataclass(frozen=True)
class DeploymentConfig:
    source: str
    stage: str
    account: str
    region: str
    alerts: AlertsConfig
    tags: dict[str, str]
    rotation: RotationConfig | None
    replication: ReplicationConfig | None  # the first of ``replications`` (None if there is none)
    replications: tuple[ReplicationConfig, ...] = ()  # one per source region
    #: (trusted account, role name) of secretsctl's cross-account read-only role, or None.
    secretsctl_read_only_role: tuple[str, str] | None = None
