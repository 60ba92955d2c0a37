"""Typed deployment configuration: loading and validation.

One JSON file per deployment (account/stage). ``cdk.json`` names the default file in the ``config``
context key; ``cdk synth -c config=PATH`` overrides it. Every problem found is reported at once, each
with the JSON path of the offending value, so a platform team can fix a file in one pass.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from infra.topology import replicates_both_ways

REGION_RE = re.compile(
    r"^(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov|-iso[a-z]?)?"
    r"-(north|south|east|west|central|northeast|northwest|southeast|southwest)-\d{1,2}$"
)
ACCOUNT_RE = re.compile(r"^\d{12}$")
SECRET_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):secretsmanager:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"secret:(?P<name>[A-Za-z0-9/_+=.@-]+)-[A-Za-z0-9]{6}$"
)
KMS_KEY_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/[A-Za-z0-9-]+$"
)
KMS_KEY_REF_RE = re.compile(
    r"^(alias/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+)$"
)
VPC_RE = re.compile(r"^vpc-[0-9a-f]{8,17}$")
SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
SG_RE = re.compile(r"^sg-[0-9a-f]{8,17}$")
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
DB_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SNS_TOPIC_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:sns:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):[A-Za-z0-9_-]{1,256}(\.fifo)?$"
)
VPCE_DNS_RE = re.compile(r"^vpce-[0-9a-z-]+\.[a-z0-9-]+\.[a-z0-9-]+\.vpce\.amazonaws\.com(\.cn)?$")
PARAM_PATH_RE = re.compile(r"^/([A-Za-z0-9_.-]+/)*$")
WINDOW_RE = re.compile(r"^(\d{1,2})h$")
CRON_RE = re.compile(r"^cron\((?P<body>[^()]+)\)$")
EVENTS_RATE_RE = re.compile(r"^rate\((?P<n>\d+) (?P<unit>minute|minutes|hour|hours|day|days)\)$")
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
ENGINES = {"postgres": 5432, "mysql": 3306, "mariadb": 3306}

DEFAULT_KEY_GROUP = "default"


class ConfigError(ValueError):
    """The configuration file is invalid; ``errors`` lists every problem as ``path: message``."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"invalid configuration {source} ({len(errors)} problem(s)):\n{lines}")


# ---------------------------------------------------------------------------------------------
# Typed model
# ---------------------------------------------------------------------------------------------


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
    lock_timeout_seconds: int | None = None  # DB_LOCK_TIMEOUT_SECONDS; None: the function's default


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
    memory_mb: int = 256
    timeout_seconds: int = 120
    reconcile_timeout_seconds: int = 900
    log_retention_days: int = 90
    reserved_concurrency: int = 5  # of the event function; the reconcile function always gets 1


#: Reconcile schedules by event source: native Parameter Store events carry no tag changes, so tag
#: edits reach the targets only through reconcile.
DEFAULT_RECONCILE_SCHEDULE = {"cloudtrail": "rate(6 hours)", "parameter-store": "rate(1 hour)"}


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


# ---------------------------------------------------------------------------------------------
# Reader: walks the raw JSON, records errors with their paths, flags unknown keys
# ---------------------------------------------------------------------------------------------

_MISSING = object()


class _Reader:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self._path: list[str] = []

    def where(self, key: str | int | None = None) -> str:
        parts = list(self._path)
        if key is not None:
            parts.append(f"[{key}]" if isinstance(key, int) else str(key))
        out = ""
        for p in parts:
            out += p if p.startswith("[") or not out else f".{p}"
        return out or "<root>"

    def error(self, key: str | int | None, message: str) -> None:
        self.errors.append(f"{self.where(key)}: {message}")

    @contextmanager
    def at(self, key: str | int) -> Iterator[None]:
        self._path.append(f"[{key}]" if isinstance(key, int) else key)
        try:
            yield
        finally:
            self._path.pop()

    def obj(self, raw: Any, allowed: set[str], key: str | int | None = None) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.error(key, f"expected an object, got {type(raw).__name__}")
            return None
        for k in sorted(set(raw) - allowed):
            hint = ", ".join(sorted(allowed))
            self.error(None if key is None else key, f"unknown key {k!r} (allowed: {hint})")
        return raw

    def get(
        self,
        raw: dict[str, Any],
        key: str,
        kind: type | tuple[type, ...],
        default: Any = _MISSING,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        if key not in raw:
            if default is _MISSING:
                self.error(key, "required")
                return None
            return default
        value = raw[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.error(key, f"expected {_kind_name(kinds)}, got a boolean")
            return None
        if not isinstance(value, kinds):
            self.error(key, f"expected {_kind_name(kinds)}, got {type(value).__name__}")
            return None
        if check is not None:
            problem = check(value)
            if problem:
                self.error(key, problem)
                return None
        return value

    def str_list(
        self, raw: dict[str, Any], key: str, check: Callable[[str], str | None], default: Any = _MISSING
    ) -> tuple[str, ...] | None:
        value = self.get(raw, key, list, default)
        if value is None or value is default:
            return value if value is None else tuple(value)
        out = []
        with self.at(key):
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    self.error(i, f"expected a string, got {type(item).__name__}")
                    continue
                problem = check(item)
                if problem:
                    self.error(i, problem)
                    continue
                out.append(item)
        if len(set(out)) != len(out):
            self.error(key, "contains duplicates")
        return tuple(out)


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "a boolean", list: "a list", dict: "an object"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _regex(pattern: re.Pattern[str], what: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if pattern.match(value) else f"{value!r} is not {what}"

    return check


def _region(value: str) -> str | None:
    return None if REGION_RE.match(value) else f"{value!r} is not an AWS region (like eu-west-1)"


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"{value!r} is not one of {', '.join(choices)}"

    return check


def _int_range(lo: int, hi: int) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        return None if lo <= value <= hi else f"{value} is out of range ({lo}..{hi})"

    return check


def _param_path(value: str) -> str | None:
    if value == "/":
        return None
    candidate = value if value.endswith("/") else value + "/"
    if not PARAM_PATH_RE.match(candidate):
        return f"{value!r} is not a parameter path (like /app/ or /)"
    return None


def normalize_path(path: str) -> str:
    """Parameter paths are stored with a trailing slash: '/', '/app/', '/app/db/'."""
    return path if path.endswith("/") else path + "/"


# ---------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------


def _rotation_schedule(r: _Reader, raw: Any) -> RotationScheduleConfig | None:
    obj = r.obj(raw, {"rateDays", "rateHours", "cron", "window"}, "schedule")
    if obj is None:
        return None
    with r.at("schedule"):
        given = [k for k in ("rateDays", "rateHours", "cron") if k in obj]
        if len(given) != 1:
            r.error(None, "give exactly one of rateDays, rateHours, cron")
            return None
        expression: str | None = None
        max_window = 24
        if "rateDays" in obj:
            n = r.get(obj, "rateDays", int, check=_int_range(1, 1000))
            if n is not None:
                expression = f"rate({n} {'day' if n == 1 else 'days'})"
        elif "rateHours" in obj:
            n = r.get(obj, "rateHours", int, check=_int_range(4, 23))
            if n is not None:
                expression = f"rate({n} hours)"
                max_window = n - 1
        else:
            expression = r.get(obj, "cron", str, check=_secrets_manager_cron)
        window = r.get(obj, "window", str, None)
        if window is not None:
            m = WINDOW_RE.match(window)
            if not m:
                r.error("window", f"{window!r} is not a window like '3h'")
                window = None
            elif not 1 <= int(m.group(1)) <= max_window:
                r.error("window", f"{window!r} is out of range (1h..{max_window}h)")
                window = None
            elif "cron" in obj and expression is not None:
                problem = _cron_window_problem(expression, int(m.group(1)))
                if problem:
                    r.error("window", problem)
                    window = None
        if expression is None:
            return None
        return RotationScheduleConfig(expression=expression, window=window)


def _secrets_manager_cron(value: str) -> str | None:
    m = CRON_RE.match(value)
    if not m:
        return f"{value!r} is not a cron expression like 'cron(0 4 ? * SUN *)'"
    fields = m.group("body").split()
    if len(fields) != 6:
        return f"{value!r} needs 6 fields (minutes hours day-of-month month day-of-week year)"
    if fields[2] != "?" and fields[4] != "?":
        return f"{value!r}: one of day-of-month and day-of-week must be '?'"
    if not re.match(r"^\d{1,2}$", fields[0]) or int(fields[0]) > 59:
        # Secrets Manager rotates at most once every four hours: no minute steps or lists.
        return f"{value!r}: rotation can run at most every 4 hours; use a single minute value (0-59)"
    hours = cron_hours(fields[1])
    if hours is None:
        return f"{value!r}: cannot read the hours field {fields[1]!r} (like 4, 0,12, 2-20/6 or */6)"
    gap = min_cron_gap(hours)
    if gap < 4:
        return (
            f"{value!r} is out of range: rotation can run at most every 4 hours "
            f"(hours {','.join(map(str, hours))} are {gap} h apart)"
        )
    return None


def cron_hours(field_: str) -> list[int] | None:
    """The hours (0-23) a cron hours field selects: ``*``, ``n``, ``a-b``, ``x/step``, lists of these."""
    out: set[int] = set()
    for part in field_.split(","):
        m = re.match(r"^(\*|\d{1,2}(?:-\d{1,2})?)(?:/(\d{1,2}))?$", part)
        if not m:
            return None
        base, step = m.group(1), int(m.group(2) or 1)
        if base == "*":
            lo, hi = 0, 23
        elif "-" in base:
            lo, hi = (int(x) for x in base.split("-"))
        else:
            lo = int(base)
            hi = 23 if m.group(2) else lo
        if not (0 <= lo <= hi <= 23) or step < 1:
            return None
        out.update(range(lo, hi + 1, step))
    return sorted(out)


def min_cron_gap(hours: list[int]) -> int:
    """Smallest distance in hours between two rotations, counting the one into the next day."""
    gaps = [b - a for a, b in itertools.pairwise(hours)]
    gaps.append(24 - hours[-1] + hours[0])
    return min(gaps)


def _cron_window_problem(expression: str, hours: int) -> str | None:
    """A window must not extend into the next rotation window or the next UTC day
    (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotationRulesType.html)."""
    fields = expression[len("cron(") : -1].split()
    selected = cron_hours(fields[1]) or [0]
    minute = int(fields[0])
    gap = min_cron_gap(selected)
    if hours > gap:
        return f"'{hours}h' is longer than the {gap} h between two rotations of this schedule"
    last = selected[-1]
    if last * 60 + minute + hours * 60 > 24 * 60:
        return f"'{hours}h' from {last:02d}:{minute:02d} UTC extends into the next UTC day"
    return None


def _events_schedule(value: str) -> str | None:
    m = EVENTS_RATE_RE.match(value)
    if m:
        n = int(m.group("n"))
        unit = m.group("unit")
        minutes = n * {"m": 1, "h": 60, "d": 1440}[unit[0]]
        if (n == 1) != (not unit.endswith("s")):
            return f"{value!r}: use '1 {unit.rstrip('s')}' / 'N {unit.rstrip('s')}s'"
        if not 5 <= minutes <= 30 * 1440:
            return f"{value!r} is out of range (rate(5 minutes)..rate(30 days))"
        return None
    m = CRON_RE.match(value)
    if m and len(m.group("body").split()) == 6:
        return None
    return f"{value!r} is not an EventBridge schedule (rate(1 hour), cron(0 * * * ? *))"


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def _network(r: _Reader, raw: Any, region: str | None) -> NetworkConfig | Literal[False] | None:
    allowed = {
        "vpc",
        "vpcId",
        "subnetIds",
        "availabilityZones",
        "securityGroupIds",
        "createSecretsManagerEndpoint",
        "existingSecretsManagerEndpoint",
        "createRdsEndpoint",
        "existingRdsEndpoint",
        "databaseAccess",
    }
    obj = r.obj(raw, allowed, "network")
    if obj is None:
        return None
    with r.at("network"):
        if obj.get("vpc") is False:
            extra = set(obj) - {"vpc"}
            if extra:
                r.error(None, f"'vpc': false (no VPC) cannot be combined with {sorted(extra)}")
            return False
        if "vpc" in obj:
            r.error("vpc", "only 'vpc': false is accepted (to run the function outside any VPC)")
        vpc_id = r.get(obj, "vpcId", str, check=_regex(VPC_RE, "a VPC id (vpc-...)"))
        subnets = r.str_list(obj, "subnetIds", _regex(SUBNET_RE, "a subnet id (subnet-...)"))
        if subnets is not None and not subnets:
            r.error("subnetIds", "give at least one subnet (two or more in different AZs recommended)")
        # Required: without the real zones CDK would invent placeholder ones, and an interface
        # endpoint given two subnets of the same real zone fails at deploy.
        azs = r.str_list(obj, "availabilityZones", _az_check(region), ())
        if subnets and "availabilityZones" not in obj:
            r.error(
                "availabilityZones",
                "required: the availability zone of each subnet id, in the same order (without them "
                "placeholder zones are used, and an endpoint given two subnets of one zone fails at deploy)",
            )
        if subnets and "availabilityZones" in obj and azs is not None and len(azs) != len(subnets):
            r.error("availabilityZones", "give one availability zone per subnet id, in the same order")
        sgs = r.str_list(obj, "securityGroupIds", _regex(SG_RE, "a security group id (sg-...)"), ())
        endpoint = r.get(obj, "createSecretsManagerEndpoint", bool, False)
        existing_endpoint = _existing_endpoint(r, obj, "existingSecretsManagerEndpoint", "secretsmanager")
        if endpoint and existing_endpoint is not None:
            r.error(
                "existingSecretsManagerEndpoint",
                "give either createSecretsManagerEndpoint or existingSecretsManagerEndpoint, not both",
            )
        rds_endpoint = r.get(obj, "createRdsEndpoint", bool, False)
        existing_rds = _existing_endpoint(r, obj, "existingRdsEndpoint", "rds")
        if rds_endpoint and existing_rds is not None:
            r.error("existingRdsEndpoint", "give either createRdsEndpoint or existingRdsEndpoint, not both")
        access: list[DatabaseAccessConfig] = []
        raw_access = r.get(obj, "databaseAccess", list, [])
        with r.at("databaseAccess"):
            for i, item in enumerate(raw_access or []):
                a = r.obj(item, {"securityGroupId", "port"}, i)
                if a is None:
                    continue
                with r.at(i):
                    sg = r.get(a, "securityGroupId", str, check=_regex(SG_RE, "a security group id (sg-...)"))
                    port = r.get(a, "port", int, check=_int_range(1, 65535))
                if sg and port:
                    access.append(DatabaseAccessConfig(security_group_id=sg, port=port))
        if vpc_id is None or not subnets:
            return None
        return NetworkConfig(
            vpc_id=vpc_id,
            subnet_ids=subnets,
            availability_zones=azs or (),
            security_group_ids=sgs or (),
            create_secrets_manager_endpoint=bool(endpoint),
            database_access=tuple(access),
            existing_secrets_manager_endpoint=existing_endpoint,
            create_rds_endpoint=bool(rds_endpoint),
            existing_rds_endpoint=existing_rds,
        )


def _existing_endpoint(
    r: _Reader, obj: dict[str, Any], key: str, service: str
) -> ExistingEndpointConfig | None:
    if key not in obj:
        return None
    e = r.obj(obj[key], {"dnsName", "securityGroupId"}, key)
    if e is None:
        return None
    with r.at(key):
        dns = r.get(e, "dnsName", str, None, _vpce_dns_check(service))
        sg = r.get(e, "securityGroupId", str, None, _regex(SG_RE, "a security group id (sg-...)"))
    return ExistingEndpointConfig(dns_name=dns, security_group_id=sg)


def _vpce_dns_check(service: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not VPCE_DNS_RE.match(value) or f".{service}." not in value:
            return (
                f"{value!r} is not the DNS name of a {service} interface endpoint "
                f"(vpce-<id>.{service}.<region>.vpce.amazonaws.com); omit it when the endpoint's private "
                "DNS is on"
            )
        return None

    return check


def _az_check(region: str | None) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not re.match(r"^[a-z0-9-]+[a-z]$", value) or (region and not value.startswith(region)):
            return f"{value!r} is not an availability zone of {region}"
        return None

    return check


def _password_policy(r: _Reader, raw: Any) -> PasswordPolicyConfig | None:
    keys = {
        "length": "length",
        "excludeCharacters": "exclude_characters",
        "excludeNumbers": "exclude_numbers",
        "excludePunctuation": "exclude_punctuation",
        "excludeUppercase": "exclude_uppercase",
        "excludeLowercase": "exclude_lowercase",
        "requireEachIncludedType": "require_each_included_type",
    }
    obj = r.obj(raw, set(keys), "passwordPolicy")
    if obj is None:
        return None
    defaults = PasswordPolicyConfig()
    values: dict[str, Any] = {}
    with r.at("passwordPolicy"):
        for key, attr in keys.items():
            default = getattr(defaults, attr)
            if key == "length":
                v = r.get(obj, key, int, default, _int_range(16, 4096))
            elif key == "excludeCharacters":
                v = r.get(obj, key, str, default)
            else:
                v = r.get(obj, key, type(default), default)
            values[attr] = default if v is None else v
    excluded = [values[a] for a in ("exclude_numbers", "exclude_punctuation", "exclude_uppercase")]
    if all(excluded) and values["exclude_lowercase"]:
        r.error("passwordPolicy", "excludes every character type")
    return PasswordPolicyConfig(**values)


def _function(r: _Reader, raw: Any, base_dir: Path) -> RotationFunctionConfig | None:
    allowed = {
        "memoryMb",
        "timeoutSeconds",
        "logRetentionDays",
        "caBundle",
        "passwordPolicy",
        "reservedConcurrency",
        "dbLockTimeoutSeconds",
    }
    obj = r.obj(raw, allowed, "function")
    if obj is None:
        return None
    d = RotationFunctionConfig()
    with r.at("function"):
        memory = r.get(obj, "memoryMb", int, d.memory_mb, _int_range(128, 10240))
        # Worst case per invocation: ~3 database logins x 5 s connect timeout + Secrets Manager calls.
        timeout = r.get(obj, "timeoutSeconds", int, d.timeout_seconds, _int_range(30, 900))
        retention = r.get(obj, "logRetentionDays", int, d.log_retention_days, _log_retention)
        ca = r.get(obj, "caBundle", str, None)
        ca_path: Path | None = None
        if ca is not None:
            ca_path = (base_dir / ca).resolve()
            if not ca_path.is_file():
                r.error("caBundle", f"file not found: {ca_path}")
                ca_path = None
        policy = _password_policy(r, obj["passwordPolicy"]) if "passwordPolicy" in obj else d.password_policy
        reserved = r.get(obj, "reservedConcurrency", int, None, _int_range(1, 1000))
        # How long the master's transaction waits for a lock on the user (alternating strategy).
        lock_timeout = r.get(obj, "dbLockTimeoutSeconds", int, None, _int_range(1, 60))
    return RotationFunctionConfig(
        memory_mb=memory or d.memory_mb,
        timeout_seconds=timeout or d.timeout_seconds,
        log_retention_days=retention or d.log_retention_days,
        ca_bundle=ca_path,
        password_policy=policy or d.password_policy,
        reserved_concurrency=reserved,
        lock_timeout_seconds=lock_timeout,
    )


def _log_retention(value: int) -> str | None:
    if value in LOG_RETENTION_DAYS:
        return None
    return f"{value} is not a CloudWatch Logs retention period ({', '.join(map(str, LOG_RETENTION_DAYS))})"


def _key_groups(r: _Reader, raw: Any, account: str | None, region: str | None) -> list[KeyGroupConfig]:
    out: list[KeyGroupConfig] = []
    if not isinstance(raw, dict):
        r.error("kmsKeys", "expected an object (group name -> {existingKeyArn?, description?})")
        return out
    with r.at("kmsKeys"):
        for name, spec in raw.items():
            if not NAME_RE.match(name):
                r.error(name, "key group names are letters, digits and '-', starting with a letter")
                continue
            obj = r.obj(spec, {"existingKeyArn", "description"}, name)
            if obj is None:
                continue
            with r.at(name):
                arn = r.get(obj, "existingKeyArn", str, None, _kms_arn_check(account, region))
                desc = r.get(obj, "description", str, None)
            out.append(KeyGroupConfig(name=name, existing_key_arn=arn, description=desc))
    return out


def _kms_arn_check(account: str | None, region: str | None) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        m = KMS_KEY_ARN_RE.match(value)
        if not m:
            return f"{value!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
        if region and m.group("region") != region:
            return f"{value!r} is in {m.group('region')}, not in the stack's region {region}"
        return None

    return check


def _replica_regions(r: _Reader, raw: Any, region: str | None) -> tuple[ReplicaRegionConfig, ...]:
    out: list[ReplicaRegionConfig] = []
    if not isinstance(raw, list):
        r.error("replicaRegions", "expected a list")
        return ()
    with r.at("replicaRegions"):
        for i, item in enumerate(raw):
            if isinstance(item, str):
                item = {"region": item}
            obj = r.obj(item, {"region", "kmsKey"}, i)
            if obj is None:
                continue
            with r.at(i):
                reg = r.get(obj, "region", str, check=_region)
                key = r.get(obj, "kmsKey", str, None, _regex(KMS_KEY_REF_RE, "a KMS key id, alias or ARN"))
                if reg and reg == region:
                    r.error("region", f"{reg} is the secret's own region")
                    reg = None
            if reg:
                out.append(ReplicaRegionConfig(region=reg, kms_key=key))
    if len({x.region for x in out}) != len(out):
        r.error("replicaRegions", "contains duplicate regions")
    return tuple(out)


def _new_secret(r: _Reader, raw: Any, region: str | None) -> NewDatabaseSecretConfig | None:
    allowed = {"secretName", "engine", "host", "port", "username", "dbname", "description", "replicaRegions"}
    obj = r.obj(raw, allowed, "create")
    if obj is None:
        return None
    with r.at("create"):
        name = r.get(obj, "secretName", str, check=_regex(SECRET_NAME_RE, "a secret name"))
        engine = r.get(
            obj, "engine", str, check=lambda v: None if v in ENGINES else f"one of {sorted(ENGINES)}"
        )
        host = r.get(obj, "host", str, check=lambda v: None if v.strip() else "empty")
        port = r.get(obj, "port", int, ENGINES.get(engine or "", 5432), _int_range(1, 65535))
        user = r.get(obj, "username", str, check=_regex(DB_USER_RE, "a database user name"))
        dbname = r.get(obj, "dbname", str, None)
        desc = r.get(obj, "description", str, None)
        replicas = _replica_regions(r, obj["replicaRegions"], region) if "replicaRegions" in obj else ()
    if None in (name, engine, host, port, user):
        return None
    return NewDatabaseSecretConfig(
        secret_name=name,
        engine=engine,
        host=host,
        port=port,
        username=user,
        dbname=dbname,
        description=desc,
        replica_regions=replicas,
    )


def _secret(r: _Reader, raw: Any, i: int, account: str | None, region: str | None) -> SecretConfig | None:
    allowed = {
        "name",
        "arn",
        "create",
        "strategy",
        "schedule",
        "kmsKey",
        "masterSecret",
        "masterSecretArn",
        "masterKmsKey",
        "rotateImmediatelyOnUpdate",
    }
    obj = r.obj(raw, allowed, i)
    if obj is None:
        return None
    with r.at(i):
        name = r.get(obj, "name", str, check=_regex(NAME_RE, "a name (letters, digits, '-')"))
        arn = r.get(obj, "arn", str, None, _secret_arn_check(account, region))
        create = _new_secret(r, obj["create"], region) if "create" in obj else None
        if ("arn" in obj) == ("create" in obj):
            r.error(
                None, "give exactly one of 'arn' (an existing secret) or 'create' (a new database secret)"
            )
        strategy = r.get(obj, "strategy", str, "single", _one_of("single", "alternating"))
        schedule = _rotation_schedule(r, obj["schedule"]) if "schedule" in obj else None
        if "schedule" not in obj:
            r.error("schedule", "required (rateDays, rateHours, or cron with an optional window)")
        kms_key = r.get(obj, "kmsKey", str, None)
        master = r.get(obj, "masterSecret", str, None)
        master_arn = r.get(obj, "masterSecretArn", str, None, _secret_arn_check(account, region))
        master_key = r.get(obj, "masterKmsKey", str, None)
        immediate = r.get(obj, "rotateImmediatelyOnUpdate", bool, False)
        if strategy == "alternating" and not (master or master_arn):
            r.error("strategy", "alternating needs 'masterSecret' (an entry name) or 'masterSecretArn'")
        if strategy == "single" and (master or master_arn):
            r.error("masterSecret", "only the alternating strategy uses a master secret")
        if master and master_arn:
            r.error("masterSecretArn", "give either masterSecret or masterSecretArn, not both")
        if master_key and not master_arn:
            r.error("masterKmsKey", "only used with masterSecretArn")
    if name is None or schedule is None or strategy is None:
        return None
    return SecretConfig(
        name=name,
        strategy=strategy,
        schedule=schedule,
        arn=arn,
        create=create,
        kms_key=kms_key,
        master_secret=master,
        master_secret_arn=master_arn,
        master_kms_key=master_key,
        rotate_immediately_on_update=bool(immediate),
    )


def _topic_arn_check(account: str | None) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        m = SNS_TOPIC_ARN_RE.match(value)
        if not m:
            return f"{value!r} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
        if account and m.group("account") != account:
            return f"{value!r} belongs to account {m.group('account')}, not {account}"
        return None

    return check


def _secret_arn_check(account: str | None, region: str | None) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        m = SECRET_ARN_RE.match(value)
        if not m:
            return (
                f"{value!r} is not a complete secret ARN (arn:aws:secretsmanager:<region>:<account>:"
                "secret:<name>-<6 characters>); the suffix is needed for exact IAM policies"
            )
        if region and m.group("region") != region:
            return f"{value!r} is in {m.group('region')}; the rotation function runs in {region}"
        if account and m.group("account") != account:
            return f"{value!r} belongs to account {m.group('account')}, not {account}"
        return None

    return check


def _rotation(
    r: _Reader, raw: Any, base_dir: Path, account: str | None, region: str | None
) -> RotationConfig | None:
    obj = r.obj(raw, {"network", "function", "kmsKeys", "secrets", "scheduledRotationCheck"}, "rotation")
    if obj is None:
        return None
    with r.at("rotation"):
        network = _network(r, obj["network"], region) if "network" in obj else None
        function = _function(r, obj["function"], base_dir) if "function" in obj else RotationFunctionConfig()
        groups = _key_groups(r, obj.get("kmsKeys", {}), account, region)
        if not any(g.name == DEFAULT_KEY_GROUP for g in groups):
            groups.insert(
                0, KeyGroupConfig(name=DEFAULT_KEY_GROUP, description="Secrets rotated by this stack")
            )
        raw_secrets = r.get(obj, "secrets", list)
        secrets: list[SecretConfig] = []
        with r.at("secrets"):
            for i, item in enumerate(raw_secrets or []):
                s = _secret(r, item, i, account, region)
                if s is not None:
                    secrets.append(s)
        if raw_secrets is not None and not raw_secrets:
            r.error("secrets", "give at least one secret to rotate")
        if raw_secrets and "network" not in obj:
            r.error(
                "network",
                "missing: the database secrets need the rotation function's network placement "
                '(vpcId, subnetIds, securityGroupIds), or {"vpc": false} for databases reachable '
                "without a VPC",
            )
        _cross_check_secrets(r, secrets, {g.name for g in groups}, region)
        check = r.get(obj, "scheduledRotationCheck", bool, False)
    if function is None:
        return None
    return RotationConfig(
        network=network or None,
        function=function,
        key_groups=tuple(groups),
        secrets=tuple(secrets),
        scheduled_rotation_check=bool(check),
    )


def _cross_check_secrets(
    r: _Reader, secrets: list[SecretConfig], groups: set[str], region: str | None
) -> None:
    names = [s.name for s in secrets]
    by_name = {s.name: s for s in secrets}
    with r.at("secrets"):
        for i, s in enumerate(secrets):
            if names.count(s.name) > 1:
                r.error(i, f"duplicate name {s.name!r}")
            with r.at(i):
                for key, ref in (("kmsKey", s.kms_key), ("masterKmsKey", s.master_kms_key)):
                    if (
                        ref is not None
                        and ref not in groups
                        and _kms_arn_check(None, region)(ref) is not None
                    ):
                        r.error(
                            key,
                            f"{ref!r} is neither a key group in rotation.kmsKeys "
                            f"({', '.join(sorted(groups))}) nor a KMS key ARN in {region}",
                        )
                if s.create is not None and s.kms_key is not None and s.kms_key not in groups:
                    r.error(
                        "kmsKey",
                        "secrets the stack creates are encrypted with a key group of rotation.kmsKeys",
                    )
                if s.master_secret is not None:
                    if s.master_secret not in by_name:
                        r.error(
                            "masterSecret",
                            f"{s.master_secret!r} is not the name of an entry in rotation.secrets",
                        )
                    elif s.master_secret == s.name:
                        r.error("masterSecret", "a secret cannot be its own master")
                    elif by_name[s.master_secret].strategy != "single":
                        r.error("masterSecret", f"{s.master_secret!r} must itself use the single strategy")
        created = [s.create.secret_name for s in secrets if s.create]
        for dup in sorted({n for n in created if created.count(n) > 1}):
            r.error(None, f"two entries create the secret {dup!r}")


def _replications(r: _Reader, raw: Any, account: str | None, region: str | None) -> list[ReplicationConfig]:
    """``replication``: one section (an object) or one per source region (a list)."""
    if not isinstance(raw, list):
        one = _replication(r, raw, account, region, "replication")
        return [one] if one is not None else []
    out: list[tuple[int, ReplicationConfig]] = []
    if not raw:
        r.error("replication", "give at least one replication section")
    with r.at("replication"):
        for i, item in enumerate(raw):
            c = _replication(r, item, account, region, i)
            if c is not None:
                out.append((i, c))
        sources = [c.source_region for _, c in out]
        for i, c in out:
            if sources.count(c.source_region) > 1:
                r.error(i, f"another section also replicates from {c.source_region} (one per source region)")
        for i, a in out:
            for j, b in out:
                if i < j and (a.delete_unmanaged_replicas or b.delete_unmanaged_replicas):
                    if replicates_both_ways(
                        a.source_region,
                        a.target_regions,
                        a.include_paths,
                        b.source_region,
                        b.target_regions,
                        b.include_paths,
                    ):
                        k = i if a.delete_unmanaged_replicas else j
                        with r.at(k):
                            r.error(
                                "deleteUnmanagedReplicas",
                                f"sections {i} and {j} replicate the same paths both ways "
                                f"({a.source_region} <-> {b.source_region}); deleting unmanaged replicas "
                                "would then delete originals (a deleted replica looks like a deleted "
                                "source): set it to false",
                            )
    return [c for _, c in out]


def _replication(
    r: _Reader, raw: Any, account: str | None, region: str | None, key: str | int
) -> ReplicationConfig | None:
    allowed = {
        "sourceRegion",
        "targetRegions",
        "includePaths",
        "excludePaths",
        "targetKmsKeys",
        "sourceKmsKeys",
        "reconcileSchedule",
        "eventSource",
        "createTrail",
        "deleteUnmanagedReplicas",
        "copyEc2ImageParameters",
        "memoryMb",
        "timeoutSeconds",
        "reconcileTimeoutSeconds",
        "logRetentionDays",
        "reservedConcurrency",
    }
    obj = r.obj(raw, allowed, key)
    if obj is None:
        return None
    d = ReplicationConfig(source_region="", target_regions=())
    with r.at(key):
        source = r.get(obj, "sourceRegion", str, region, _region)
        targets = r.str_list(obj, "targetRegions", _region)
        if targets is not None and not targets:
            r.error("targetRegions", "give at least one target region")
        if targets and source in targets:
            r.error("targetRegions", f"{source} is the source region")
        include = r.str_list(obj, "includePaths", _param_path, ("/",))
        exclude = r.str_list(obj, "excludePaths", _param_path, ())
        inc = tuple(normalize_path(p) for p in include or ())
        exc = tuple(normalize_path(p) for p in exclude or ())
        for p in exc:
            if not any(p.startswith(i) for i in inc):
                r.error("excludePaths", f"{p!r} is not under any included path")
        if len(inc) > 1 and "/" in inc:
            r.error("includePaths", "'/' already includes every path")
        keys: dict[str, str] = {}
        raw_keys = r.get(obj, "targetKmsKeys", dict, {})
        with r.at("targetKmsKeys"):
            for reg, key in (raw_keys or {}).items():
                if targets is not None and reg not in targets:
                    r.error(reg, "not one of targetRegions")
                elif not isinstance(key, str) or not KMS_KEY_REF_RE.match(key):
                    r.error(reg, f"{key!r} is not a KMS key id, alias or ARN")
                elif key.startswith("arn:") and f":kms:{reg}:" not in key:
                    r.error(reg, f"{key!r} is not a key in {reg}")
                else:
                    keys[reg] = key
        src_keys = r.str_list(obj, "sourceKmsKeys", _kms_arn_check(account, source), ())
        event_source = r.get(
            obj, "eventSource", str, d.event_source, _one_of("cloudtrail", "parameter-store")
        )
        default_schedule = DEFAULT_RECONCILE_SCHEDULE.get(event_source or "", d.reconcile_schedule)
        schedule = r.get(obj, "reconcileSchedule", str, default_schedule, _events_schedule)
        trail = r.get(obj, "createTrail", bool, False)
        if trail and event_source == "parameter-store":
            r.error("createTrail", "the trail is only needed for eventSource 'cloudtrail'")
        delete = r.get(obj, "deleteUnmanagedReplicas", bool, False)
        ec2 = r.get(obj, "copyEc2ImageParameters", bool, False)
        memory = r.get(obj, "memoryMb", int, d.memory_mb, _int_range(128, 10240))
        timeout = r.get(obj, "timeoutSeconds", int, d.timeout_seconds, _int_range(10, 900))
        rtimeout = r.get(
            obj, "reconcileTimeoutSeconds", int, d.reconcile_timeout_seconds, _int_range(60, 900)
        )
        retention = r.get(obj, "logRetentionDays", int, d.log_retention_days, _log_retention)
        # Concurrent replication invocations: a bulk import must not throttle the targets.
        reserved = r.get(obj, "reservedConcurrency", int, d.reserved_concurrency, _int_range(1, 100))
    if source is None or not targets:
        return None
    return ReplicationConfig(
        source_region=source,
        target_regions=targets,
        include_paths=inc or ("/",),
        exclude_paths=exc,
        target_kms_keys=keys,
        source_kms_keys=src_keys or (),
        reconcile_schedule=schedule or default_schedule,
        event_source=event_source or d.event_source,
        create_trail=bool(trail),
        delete_unmanaged_replicas=bool(delete),
        copy_ec2_image_parameters=bool(ec2),
        memory_mb=memory or d.memory_mb,
        timeout_seconds=timeout or d.timeout_seconds,
        reconcile_timeout_seconds=rtimeout or d.reconcile_timeout_seconds,
        log_retention_days=retention or d.log_retention_days,
        reserved_concurrency=reserved or d.reserved_concurrency,
    )


def parse_config(raw: Any, source: str = "<config>", base_dir: Path | None = None) -> DeploymentConfig:
    """Validate a decoded JSON document; raise ``ConfigError`` listing every problem."""
    r = _Reader()
    base = base_dir or Path.cwd()
    allowed = {
        "$schema",
        "description",
        "stage",
        "account",
        "region",
        "alerts",
        "tags",
        "rotation",
        "replication",
    }
    obj = r.obj(raw, allowed)
    if obj is None:
        raise ConfigError(source, r.errors)
    stage = r.get(obj, "stage", str, check=_regex(NAME_RE, "a stage name (letters, digits, '-')"))
    account = r.get(obj, "account", str, check=_regex(ACCOUNT_RE, "a 12-digit account id"))
    region = r.get(obj, "region", str, check=_region)
    alerts = AlertsConfig()
    if "alerts" in obj:
        a = r.obj(obj["alerts"], {"email", "topicArn"}, "alerts")
        if a is not None:
            with r.at("alerts"):
                alerts = AlertsConfig(
                    email=r.get(a, "email", str, None, _regex(EMAIL_RE, "an email address")),
                    topic_arn=r.get(a, "topicArn", str, None, _topic_arn_check(account)),
                )
                if alerts.email and alerts.topic_arn:
                    r.error(
                        "topicArn",
                        "give either email (a subscription to the stack's own topic) or topicArn "
                        "(an existing topic), not both",
                    )
    tags = r.get(obj, "tags", dict, {})
    if tags and not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        r.error("tags", "tag keys and values are strings")
    rotation = _rotation(r, obj["rotation"], base, account, region) if "rotation" in obj else None
    replications = _replications(r, obj["replication"], account, region) if "replication" in obj else []
    if "rotation" not in obj and "replication" not in obj:
        r.error(None, "nothing to deploy: give 'rotation', 'replication' or both")
    if alerts.topic_arn:
        topic_region = SNS_TOPIC_ARN_RE.match(alerts.topic_arn).group("region")  # type: ignore[union-attr]
        stack_regions = ([region] if "rotation" in obj else []) + [c.source_region for c in replications]
        for other in sorted({x for x in stack_regions if x and x != topic_region}):
            r.error(
                "alerts.topicArn",
                f"the topic is in {topic_region} but a stack deploys to {other}: alarms publish only to a "
                "topic of their own region (use one configuration file per region)",
            )
    if r.errors:
        raise ConfigError(source, r.errors)
    return DeploymentConfig(
        source=source,
        stage=stage,
        account=account,
        region=region,
        alerts=alerts,
        tags=dict(tags or {}),
        rotation=rotation,
        replication=replications[0] if replications else None,
        replications=tuple(replications),
    )


def load_config(path: str | Path) -> DeploymentConfig:
    """Read and validate a JSON configuration file. Relative file paths inside it are relative to it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [f"cannot read the file: {exc.strerror}"]) from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(str(p), [f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"]) from exc
    return parse_config(raw, source=str(p), base_dir=p.resolve().parent)
