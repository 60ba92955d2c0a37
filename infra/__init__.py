"""CDK infrastructure for the secrets-rotation and SSM-replication service.

Reusable constructs (usable from any CDK app): ``RotationFunction``, ``ParameterReplicator``,
``OperationsAlerts``, ``SecretConnectionFields``. Stacks built from a validated configuration:
``SecretsRotationStack``, ``ParameterReplicationStack`` (see ``add_stacks``).
"""

from infra.alerts import OperationsAlerts
from infra.config import ConfigError, DeploymentConfig, load_config, parse_config
from infra.replication import EventSource, ParameterReplicator
from infra.rotation import ExistingEndpoint, PasswordPolicy, RotationFunction, RotationSchedule
from infra.secret_fields import SecretConnectionFields
from infra.stacks import ParameterReplicationStack, SecretsRotationStack, add_stacks

__all__ = [
    "ConfigError",
    "DeploymentConfig",
    "EventSource",
    "ExistingEndpoint",
    "OperationsAlerts",
    "ParameterReplicationStack",
    "ParameterReplicator",
    "PasswordPolicy",
    "RotationFunction",
    "RotationSchedule",
    "SecretConnectionFields",
    "SecretsRotationStack",
    "add_stacks",
    "load_config",
    "parse_config",
]
