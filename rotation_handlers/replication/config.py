"""Replication configuration, read from the environment and validated up front.

Every error names the offending variable so a bad deployment fails loudly on the first
invocation instead of replicating the wrong thing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Tag the replicator puts on every parameter it creates; value = source region.
MARKER_TAG_KEY = "ssm-replicator:source"

#: Prefixes that are never replicated, whatever the configuration says.
ALWAYS_EXCLUDED: tuple[str, ...] = ("/aws/", "/cdk-bootstrap/", "/cdk/exports/")

DEFAULT_KMS_KEY = "alias/aws/ssm"

#: Tag keys with this prefix are reserved for AWS (CloudFormation puts ``aws:cloudformation:*`` on
#: every resource it creates); they cannot be written, edited or removed by users ("Tag naming
#: limits and requirements", https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html).
RESERVED_TAG_PREFIX = "aws:"


def replicated_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags that replicate: all but the replicator's marker and ``aws:`` reserved ones.

    Neither kind is ever copied, and neither is ever removed from a target.
    """
    return {
        k: v for k, v in tags.items() if k != MARKER_TAG_KEY and not k.lower().startswith(RESERVED_TAG_PREFIX)
    }


#: Where reconcile keeps its position (run number, rotating-slice cursor) in the source region.
DEFAULT_STATE_PARAMETER = "/parameter-replicator/reconcile-state"

_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


class ConfigError(ValueError):
    """Invalid replication configuration; the message names the variable."""


def _match_name(name: str) -> str:
    """Name used for prefix matching: ``foo`` (root level, no slash) is treated as ``/foo``."""
    return name if name.startswith("/") else "/" + name


def path_matches(name: str, prefix: str) -> bool:
    """Path-segment prefix match: ``/app`` matches ``/app`` and ``/app/x`` but not ``/apple``.

    A prefix ending in ``/`` matches only names below it; ``/`` matches everything.
    """
    candidate = _match_name(name)
    if prefix.endswith("/"):
        return candidate.startswith(prefix)
    return candidate == prefix or candidate.startswith(prefix + "/")


@dataclass(frozen=True)
class ReplicationConfig:
    source_region: str
    target_regions: tuple[str, ...]
    include_paths: tuple[str, ...] = ("/",)
    exclude_paths: tuple[str, ...] = ()
    kms_keys: Mapping[str, str] = field(default_factory=dict)
    delete_unmanaged: bool = False
    #: Write over (and take over) target parameters without our marker tag; off by default.
    adopt_unmanaged: bool = False
    copy_ec2_image: bool = False
    replicator_role_arn: str | None = None
    max_attempts: int = 8
    backoff_base: float = 0.2
    backoff_cap: float = 10.0
    concurrency: int = 4
    max_rounds: int = 5
    bulk_tags: bool = True
    deep_every: int = 24
    #: Half of Parameter Store's default shared throughput of 40 TPS per account and region
    #: ("AWS Systems Manager endpoints and quotas", https://docs.aws.amazon.com/general/latest/gr/ssm.html).
    requests_per_second: float = 20.0
    state_parameter: str = DEFAULT_STATE_PARAMETER
    time_margin: float = 60.0

    def kms_key_for(self, region: str) -> str:
        return self.kms_keys.get(region, DEFAULT_KMS_KEY)

    def exclusion_reason(self, name: str) -> str | None:
        """Why ``name`` is not replicated, or ``None`` if it is."""
        if name == self.state_parameter:
            return "reconcile-state-parameter"
        for prefix in ALWAYS_EXCLUDED:
            if path_matches(name, prefix):
                return f"always-excluded-path:{prefix}"
        if not any(path_matches(name, p) for p in self.include_paths):
            return "not-in-REPLICATE_PATHS"
        for prefix in self.exclude_paths:
            if path_matches(name, prefix):
                return f"EXCLUDE_PATHS:{prefix}"
        return None

    def is_included(self, name: str) -> bool:
        return self.exclusion_reason(name) is None


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _bool(env: Mapping[str, str], var: str, default: bool) -> bool:
    raw = env.get(var)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{var} must be 'true' or 'false', got {raw!r}")


def _number(env: Mapping[str, str], var: str, default: float, minimum: float, integer: bool) -> float:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{var} must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{var} must be >= {minimum}, got {raw!r}")
    return value


def _paths(env: Mapping[str, str], var: str, default: str) -> tuple[str, ...]:
    raw = env.get(var, default)
    paths = _split(raw)
    for path in paths:
        if not path.startswith("/"):
            raise ConfigError(f"{var}: path prefix {path!r} must start with '/'")
    return tuple(dict.fromkeys(paths))


def load_config(env: Mapping[str, str]) -> ReplicationConfig:
    """Parse and validate the replication settings from ``env`` (normally ``os.environ``)."""
    source = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
    if not source:
        raise ConfigError("AWS_REGION is not set: cannot tell the source region")
    if not _REGION_RE.match(source):
        raise ConfigError(f"AWS_REGION: {source!r} is not a region name")

    targets = _split(env.get("REPLICA_REGIONS", ""))
    if not targets:
        raise ConfigError("REPLICA_REGIONS is empty: set a comma-separated list of target regions")
    for region in targets:
        if not _REGION_RE.match(region):
            raise ConfigError(f"REPLICA_REGIONS: {region!r} is not a region name")
    if source in targets:
        raise ConfigError(
            f"REPLICA_REGIONS lists the source region {source} (AWS_REGION) as a target; "
            "a region cannot replicate to itself"
        )
    targets = list(dict.fromkeys(targets))

    include = _paths(env, "REPLICATE_PATHS", "/")
    if not include:
        raise ConfigError("REPLICATE_PATHS is empty: use '/' to replicate everything")
    exclude = _paths(env, "EXCLUDE_PATHS", "")

    kms_keys: dict[str, str] = {}
    raw_keys = env.get("REPLICA_KMS_KEYS", "").strip()
    if raw_keys:
        try:
            parsed = json.loads(raw_keys)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"REPLICA_KMS_KEYS is not valid JSON ({exc.msg})") from None
        if not isinstance(parsed, dict):
            raise ConfigError('REPLICA_KMS_KEYS must be a JSON object like {"eu-west-1": "alias/my-key"}')
        for region, key in parsed.items():
            if region not in targets:
                raise ConfigError(
                    f"REPLICA_KMS_KEYS names region {region!r}, which is not in REPLICA_REGIONS"
                )
            if not isinstance(key, str) or not key.strip():
                raise ConfigError(f"REPLICA_KMS_KEYS[{region!r}] must be a non-empty key id, alias or ARN")
            kms_keys[region] = key.strip()

    role_arn = env.get("REPLICATOR_ROLE_ARN", "").strip() or None
    if role_arn is not None and not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+", role_arn):
        raise ConfigError(f"REPLICATOR_ROLE_ARN must be an IAM role ARN, got {role_arn!r}")

    state_parameter = env.get("RECONCILE_STATE_PARAMETER", "").strip() or DEFAULT_STATE_PARAMETER
    if not state_parameter.startswith("/"):
        raise ConfigError(
            f"RECONCILE_STATE_PARAMETER must be a parameter name starting with '/', got {state_parameter!r}"
        )

    return ReplicationConfig(
        source_region=source,
        target_regions=tuple(targets),
        include_paths=include,
        exclude_paths=exclude,
        kms_keys=kms_keys,
        delete_unmanaged=_bool(env, "DELETE_UNMANAGED_REPLICAS", False),
        adopt_unmanaged=_bool(env, "ADOPT_UNMANAGED_TARGETS", False),
        copy_ec2_image=_bool(env, "COPY_EC2_IMAGE_PARAMETERS", False),
        replicator_role_arn=role_arn,
        max_attempts=int(_number(env, "REPLICATION_MAX_ATTEMPTS", 8, 1, integer=True)),
        backoff_base=_number(env, "REPLICATION_BACKOFF_BASE_SECONDS", 0.2, 0, integer=False),
        backoff_cap=_number(env, "REPLICATION_BACKOFF_MAX_SECONDS", 10.0, 0, integer=False),
        concurrency=int(_number(env, "RECONCILE_CONCURRENCY", 4, 1, integer=True)),
        max_rounds=int(_number(env, "REPLICATION_MAX_ROUNDS", 5, 1, integer=True)),
        bulk_tags=_bool(env, "RECONCILE_BULK_TAGS", True),
        deep_every=int(_number(env, "RECONCILE_DEEP_EVERY", 24, 1, integer=True)),
        requests_per_second=_number(env, "RECONCILE_REQUESTS_PER_SECOND", 20.0, 0, integer=False),
        state_parameter=state_parameter,
        time_margin=_number(env, "RECONCILE_TIME_MARGIN_SECONDS", 60.0, 0, integer=False),
    )
