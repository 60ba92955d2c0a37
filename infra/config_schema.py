"""The configuration file's schema: pydantic models of the JSON (camelCase keys), one per section.

Each field carries its own check (format, range, choices) with the message a reader needs; rules that
relate several fields (a master secret that must exist, a window that depends on the schedule, ...)
are in ``infra.config``. ``config/schema.json`` is generated from these models (``json_schema()``).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

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
AZ_RE = re.compile(r"^[a-z0-9-]+[a-z]$")
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
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192)
LOG_RETENTION_DAYS += (2557, 2922, 3288, 3653)
ENGINES = {"postgres": 5432, "mysql": 3306, "mariadb": 3306}

Check = Callable[[Any], "str | None"]


# -- checks: each returns the problem, or None ----------------------------------------------------


def regex(pattern: re.Pattern[str], what: str) -> Check:
    def check(value: str) -> str | None:
        return None if pattern.match(value) else f"{value!r} is not {what}"

    return check


def region_check(value: str) -> str | None:
    return None if REGION_RE.match(value) else f"{value!r} is not an AWS region (like eu-west-1)"


def one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"{value!r} is not one of {', '.join(choices)}"

    return check


def int_range(lo: int, hi: int) -> Check:
    def check(value: int) -> str | None:
        return None if lo <= value <= hi else f"{value} is out of range ({lo}..{hi})"

    return check


def param_path_check(value: str) -> str | None:
    if value == "/":
        return None
    if not PARAM_PATH_RE.match(normalize_path(value)):
        return f"{value!r} is not a parameter path (like /app/ or /)"
    return None


def normalize_path(path: str) -> str:
    """Parameter paths are stored with a trailing slash: '/', '/app/', '/app/db/'."""
    return path if path.endswith("/") else path + "/"


def log_retention_check(value: int) -> str | None:
    if value in LOG_RETENTION_DAYS:
        return None
    return f"{value} is not a CloudWatch Logs retention period ({', '.join(map(str, LOG_RETENTION_DAYS))})"


def arn_check(
    pattern: re.Pattern[str], what: str, account: str | None, region: str | None, elsewhere: str
) -> Check:
    """``pattern`` (with ``region`` and ``account`` groups) matched, then compared with the stack's
    region (``elsewhere`` says why it matters) and account."""

    def check(value: str) -> str | None:
        m = pattern.match(value)
        if not m:
            return f"{value!r} is not {what}"
        if region and m.group("region") != region:
            return f"{value!r} is in {m.group('region')}{elsewhere.format(region=region)}"
        if account and m.group("account") != account:
            return f"{value!r} belongs to account {m.group('account')}, not {account}"
        return None

    return check


def kms_arn_check(account: str | None = None, region: str | None = None) -> Check:
    what = "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
    # Keys of another account are allowed (a key policy may share them).
    return arn_check(KMS_KEY_ARN_RE, what, None, region, ", not in the stack's region {region}")


def secret_arn_check(account: str | None = None, region: str | None = None) -> Check:
    what = (
        "a complete secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>); "
        "the suffix is needed for exact IAM policies"
    )
    return arn_check(SECRET_ARN_RE, what, account, region, "; the rotation function runs in {region}")


def topic_arn_check(account: str | None = None) -> Check:
    what = "an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
    return arn_check(SNS_TOPIC_ARN_RE, what, account, None, "")


def vpce_dns_check(service: str) -> Check:
    def check(value: str) -> str | None:
        if not VPCE_DNS_RE.match(value) or f".{service}." not in value:
            return (
                f"{value!r} is not the DNS name of a {service} interface endpoint "
                f"(vpce-<id>.{service}.<region>.vpce.amazonaws.com); omit it when the endpoint's private "
                "DNS is on"
            )
        return None

    return check


def secrets_manager_cron(value: str) -> str | None:
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


def cron_values(field_: str, lo: int, hi: int) -> list[int] | None:
    """The values (lo..hi) a cron field selects: ``*``, ``n``, ``a-b``, ``x/step``, lists of these."""
    out: set[int] = set()
    for part in field_.split(","):
        m = re.match(r"^(\*|\d{1,2}(?:-\d{1,2})?)(?:/(\d{1,2}))?$", part)
        if not m:
            return None
        base, step = m.group(1), int(m.group(2) or 1)
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            first, last = (int(x) for x in base.split("-"))
        else:
            first = int(base)
            last = hi if m.group(2) else first
        if not (lo <= first <= last <= hi) or step < 1:
            return None
        out.update(range(first, last + 1, step))
    return sorted(out)


def events_schedule_interval(value: str) -> int | None:
    """Shortest time in seconds between two starts of an EventBridge schedule (None: unknown, or
    at least a day)."""
    m = EVENTS_RATE_RE.match(value)
    if m:
        return int(m.group("n")) * {"m": 60, "h": 3600, "d": 86400}[m.group("unit")[0]]
    m = CRON_RE.match(value)
    if not m or len(m.group("body").split()) != 6:
        return None
    minutes_f, hours_f, dom, _month, dow, _year = m.group("body").split()
    minutes, hours = cron_values(minutes_f, 0, 59), cron_values(hours_f, 0, 23)
    if not minutes or not hours:
        return None
    starts = sorted(h * 60 + mi for h in hours for mi in minutes)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    if dom in ("*", "?") and dow in ("*", "?"):  # every day: the last start is followed by the first
        gaps.append(24 * 60 - starts[-1] + starts[0])
    return min(gaps) * 60 if gaps else None


def located(model: str, problems: list[tuple[str, Any, str]]) -> ValidationError:
    """An error of a rule across fields, reported at a field: ``(field alias, value, message)``. Raised
    from a model validator, pydantic puts the model's own location in front (the JSON path)."""
    return ValidationError.from_exception_data(
        model,
        [
            InitErrorDetails(
                type=PydanticCustomError("config", "{problem}", {"problem": message}),
                loc=(key,),
                input=value,
            )
            for key, value, message in problems
        ],
    )


def events_schedule_check(value: str) -> str | None:
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


def no_duplicates(values: tuple[Any, ...]) -> str | None:
    return "contains duplicates" if len(set(values)) != len(values) else None


# -- annotated field types ------------------------------------------------------------------------


def _raise_on(check: Check) -> AfterValidator:
    def validate(value: Any) -> Any:
        problem = check(value)
        if problem:
            raise PydanticCustomError("config", "{problem}", {"problem": problem})
        return value

    return AfterValidator(validate)


def checked(kind: Any, check: Check, **schema: Any) -> Any:
    """``kind`` validated by ``check``; ``schema`` adds JSON Schema keywords (pattern, minimum, ...)."""
    if "pattern" in schema:
        schema["pattern"] = ecma(schema["pattern"])
    return Annotated[kind, _raise_on(check), Field(json_schema_extra=schema or None)]


def ecma(pattern: str) -> str:
    """A Python regular expression as JSON Schema (ECMA-262) writes it: named groups ``(?<name>...)``."""
    return pattern.replace("(?P<", "(?<")


def pattern_str(pattern: re.Pattern[str], what: str) -> Any:
    return checked(str, regex(pattern, what), pattern=pattern.pattern)


def int_in(lo: int, hi: int) -> Any:
    return checked(int, int_range(lo, hi), minimum=lo, maximum=hi)


def choice(*choices: str) -> Any:
    return checked(str, one_of(*choices), enum=list(choices))


def unique(item: Any) -> Any:
    return Annotated[tuple[item, ...], _raise_on(no_duplicates)]


#: Tags of ``either``'s branches: dropped from error paths.
BRANCH_TAGS = ("many", "name", "object")


def either(simple: Any, structured: Any) -> Any:
    """A union decided by the input's JSON type (a string or list vs. an object): errors then come from
    that branch only, not from every branch."""

    def pick(value: Any) -> str:
        if isinstance(value, str):
            return "name"
        return "many" if isinstance(value, (list, tuple)) else "object"  # anything else: "expected an object"

    if simple is tuple or getattr(structured, "__origin__", None) is tuple:
        return Annotated[
            Annotated[simple, Tag("object")] | Annotated[structured, Tag("many")],
            Discriminator(pick),
        ]
    return Annotated[
        Annotated[simple, Tag("name")] | Annotated[structured, Tag("object")], Discriminator(pick)
    ]


Region = checked(str, region_check, pattern=REGION_RE.pattern)
SecurityGroupId = pattern_str(SG_RE, "a security group id (sg-...)")
Name = pattern_str(NAME_RE, "a name (letters, digits, '-')")
#: Checked with the rules across fields (it depends on the account and region), so that a malformed
#: ARN is reported together with the other problems of its entry.
SecretArn = Annotated[str, Field(json_schema_extra={"pattern": ecma(SECRET_ARN_RE.pattern)})]
KmsKeyArn = checked(str, kms_arn_check(), pattern=KMS_KEY_ARN_RE.pattern)
KmsKeyRef = pattern_str(KMS_KEY_REF_RE, "a KMS key id, alias or ARN")
ParamPath = checked(str, param_path_check)
LogRetention = checked(int, log_retention_check, enum=list(LOG_RETENTION_DAYS))


class Section(BaseModel):
    """JSON keys are camelCase; unknown keys are errors; types are strict (no "30" for 30)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
        field_title_generator=lambda name, info: info.alias or to_camel(name),
    )


# -- rotation -------------------------------------------------------------------------------------


class Schedule(Section):
    """When Secrets Manager rotates: exactly one of rateDays, rateHours, cron; optional window."""

    rate_days: int_in(1, 1000) | None = None  # type: ignore[valid-type]
    rate_hours: int_in(4, 23) | None = None  # type: ignore[valid-type]
    cron: checked(str, secrets_manager_cron) | None = None  # type: ignore[valid-type]
    window: checked(str, regex(WINDOW_RE, "a window like '3h'"), pattern=WINDOW_RE.pattern) | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _exactly_one(self) -> Schedule:
        if sum(x is not None for x in (self.rate_days, self.rate_hours, self.cron)) != 1:
            raise PydanticCustomError("config", "give exactly one of rateDays, rateHours, cron")
        return self

    @property
    def expression(self) -> str:
        if self.rate_days is not None:
            return f"rate({self.rate_days} {'day' if self.rate_days == 1 else 'days'})"
        if self.rate_hours is not None:
            return f"rate({self.rate_hours} hours)"
        assert self.cron is not None
        return self.cron


class PasswordPolicy(Section):
    length: int_in(16, 4096) = 32  # type: ignore[valid-type]
    exclude_characters: str | None = None
    exclude_numbers: bool = False
    exclude_punctuation: bool = False
    exclude_uppercase: bool = False
    exclude_lowercase: bool = False
    require_each_included_type: bool = True


class DatabaseAccess(Section):
    security_group_id: SecurityGroupId  # type: ignore[valid-type]
    port: int_in(1, 65535)  # type: ignore[valid-type]


class ExistingEndpoint(Section):
    """An interface endpoint the VPC already has."""

    dns_name: str | None = None  # checked per service in infra.config
    security_group_id: SecurityGroupId | None = None  # type: ignore[valid-type]


class Network(Section):
    """The function's VPC placement, or ``{"vpc": false}`` to run it outside any VPC."""

    vpc: bool | None = None
    vpc_id: pattern_str(VPC_RE, "a VPC id (vpc-...)") | None = None  # type: ignore[valid-type]
    subnet_ids: unique(pattern_str(SUBNET_RE, "a subnet id (subnet-...)")) | None = None  # type: ignore[valid-type]
    availability_zones: unique(checked(str, regex(AZ_RE, "an availability zone"))) | None = None  # type: ignore[valid-type]
    security_group_ids: unique(SecurityGroupId) = ()  # type: ignore[valid-type]
    create_secrets_manager_endpoint: bool = False
    existing_secrets_manager_endpoint: ExistingEndpoint | None = None
    create_rds_endpoint: bool = False
    existing_rds_endpoint: ExistingEndpoint | None = None
    database_access: tuple[DatabaseAccess, ...] = ()


class Function(Section):
    memory_mb: int_in(128, 10240) = 256  # type: ignore[valid-type]
    # Worst case per invocation: ~3 database logins x 5 s connect timeout + Secrets Manager calls.
    timeout_seconds: int_in(30, 900) = 90  # type: ignore[valid-type]
    log_retention_days: LogRetention = 90  # type: ignore[valid-type]
    ca_bundle: str | None = None  # relative to the configuration file
    password_policy: PasswordPolicy = PasswordPolicy()
    # Unset: no reservation. Set: at least 10 concurrent rotations (one function serves every secret;
    # Secrets Manager names too few concurrent executions as a cause of rotation failures:
    # https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot_rotation.html).
    reserved_concurrency: int_in(10, 1000) | None = None  # type: ignore[valid-type]
    # How long one master statement waits for a lock on the user (DB_LOCK_TIMEOUT).
    db_lock_timeout_seconds: int_in(1, 60) | None = None  # type: ignore[valid-type]
    # How long one master statement may run, PostgreSQL only (DB_STATEMENT_TIMEOUT).
    db_statement_timeout_seconds: int_in(1, 300) | None = None  # type: ignore[valid-type]


class KeyGroup(Section):
    existing_key_arn: KmsKeyArn | None = None  # type: ignore[valid-type]
    description: str | None = None


class ReplicaRegion(Section):
    region: Region  # type: ignore[valid-type]
    kms_key: KmsKeyRef | None = None  # type: ignore[valid-type]


class NewSecret(Section):
    """A database secret the stack creates (the password is generated by Secrets Manager)."""

    secret_name: pattern_str(SECRET_NAME_RE, "a secret name")  # type: ignore[valid-type]
    engine: checked(str, lambda v: None if v in ENGINES else f"one of {sorted(ENGINES)}", enum=list(ENGINES))  # type: ignore[valid-type]
    host: checked(str, lambda v: None if v.strip() else "empty")  # type: ignore[valid-type]
    port: int_in(1, 65535) | None = None  # type: ignore[valid-type]  # default: the engine's
    username: pattern_str(DB_USER_RE, "a database user name")  # type: ignore[valid-type]
    dbname: str | None = None
    description: str | None = None
    replica_regions: tuple[either(Region, ReplicaRegion), ...] = ()  # type: ignore[valid-type]


class SecretEntry(Section):
    """One rotated secret: an existing one (``arn``) or one the stack creates (``create``)."""

    name: Name  # type: ignore[valid-type]
    arn: SecretArn | None = None  # type: ignore[valid-type]
    create: NewSecret | None = None
    strategy: choice("single", "alternating") = "single"  # type: ignore[valid-type]
    schedule: Schedule | None = None
    kms_key: str | None = None
    master_secret: str | None = None
    master_secret_arn: SecretArn | None = None  # type: ignore[valid-type]
    master_kms_key: str | None = None
    rotate_immediately_on_update: bool = False

    @model_validator(mode="after")
    def _no_immediate_rotation_of_a_created_secret(self) -> SecretEntry:
        # The database does not know a created secret's generated password until the operator creates
        # the user with it, and rotation starts by logging in with it: a rotation started by the deploy
        # (RotateImmediatelyOnUpdate, https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/
        # aws-resource-secretsmanager-rotationschedule.html) cannot succeed.
        if self.create is not None and self.rotate_immediately_on_update:
            raise located(
                "SecretEntry",
                [
                    (
                        "rotateImmediatelyOnUpdate",
                        True,
                        "the stack creates this secret, and its first rotation can only succeed after the "
                        "database user has been created with the generated password: leave it false and "
                        "let the schedule (or `aws secretsmanager rotate-secret`) rotate it afterwards",
                    )
                ],
            )
        return self


class Rotation(Section):
    network: Network | None = None
    function: Function = Function()
    kms_keys: dict[str, KeyGroup] = {}
    secrets: tuple[SecretEntry, ...]
    scheduled_rotation_check: bool = False


# -- replication ----------------------------------------------------------------------------------


class Replication(Section):
    source_region: Region | None = None  # type: ignore[valid-type]  # default: the file's region
    target_regions: unique(Region)  # type: ignore[valid-type]
    include_paths: unique(ParamPath) = ("/",)  # type: ignore[valid-type]
    exclude_paths: unique(ParamPath) = ()  # type: ignore[valid-type]
    target_kms_keys: dict[str, str] = {}
    source_kms_keys: unique(KmsKeyArn) = ()  # type: ignore[valid-type]
    reconcile_schedule: checked(str, events_schedule_check) | None = None  # type: ignore[valid-type]
    event_source: choice("cloudtrail", "parameter-store") = "cloudtrail"  # type: ignore[valid-type]
    create_trail: bool = False
    delete_unmanaged_replicas: bool = False
    copy_ec2_image_parameters: bool = False
    # Overwrite and take over same-named target parameters without the replicator's marker tag
    # (ADOPT_UNMANAGED_TARGETS); off: they are left alone and reported.
    adopt_unmanaged_targets: bool = False
    memory_mb: int_in(128, 10240) = 256  # type: ignore[valid-type]
    timeout_seconds: int_in(10, 900) = 120  # type: ignore[valid-type]
    reconcile_timeout_seconds: int_in(60, 900) = 900  # type: ignore[valid-type]
    log_retention_days: LogRetention = 90  # type: ignore[valid-type]
    # Concurrent replication invocations: a bulk import must not throttle the targets. null: no reservation
    # at all (for an account at Lambda's floor of 100 unreserved concurrent executions).
    reserved_concurrency: int_in(1, 100) | None = 5  # type: ignore[valid-type]
    # Optional handler settings; unset: the handler's default (README, replication settings).
    reconcile_concurrency: int_in(1, 64) | None = None  # type: ignore[valid-type]  # threads in total
    max_rounds: int_in(1, 20) | None = None  # type: ignore[valid-type]
    reconcile_deep_every: int_in(1, 1000) | None = None  # type: ignore[valid-type]
    reconcile_requests_per_second: int_in(0, 1000) | None = None  # type: ignore[valid-type]  # 0: no limit
    reconcile_bulk_tags: bool = True
    # Reconcile stops this long before its timeout (must be shorter than reconcileTimeoutSeconds).
    reconcile_time_margin_seconds: int_in(0, 899) | None = None  # type: ignore[valid-type]
    # The dashboard's alarm: a replica written more than this long after its source changed.
    lag_alarm_seconds: int_in(1, 86400) = 900  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _reconcile_runs_do_not_overlap(self) -> Replication:
        # EventBridge starts the target on every tick of the schedule, whether the last run ended or not
        # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-rule-schedule.html).
        if self.reconcile_schedule is None:
            return self
        interval = events_schedule_interval(self.reconcile_schedule)
        if interval is not None and interval < self.reconcile_timeout_seconds:
            raise located(
                "Replication",
                [
                    (
                        "reconcileSchedule",
                        self.reconcile_schedule,
                        f"{self.reconcile_schedule!r} starts reconcile every {interval} s, sooner than "
                        f"reconcileTimeoutSeconds ({self.reconcile_timeout_seconds} s): runs would overlap "
                        "(or be throttled); schedule it at least that far apart or lower the timeout",
                    )
                ],
            )
        return self


class Alerts(Section):
    email: pattern_str(EMAIL_RE, "an email address") | None = None  # type: ignore[valid-type]
    topic_arn: checked(str, topic_arn_check(), pattern=SNS_TOPIC_ARN_RE.pattern) | None = None  # type: ignore[valid-type]


class SecretsctlReadOnlyRole(Section):
    """The read-only role `secretsctl status --accounts/--organization --role NAME` assumes here."""

    trusted_account: pattern_str(ACCOUNT_RE, "a 12-digit account id")  # type: ignore[valid-type]
    role_name: pattern_str(NAME_RE, "a role name (letters, digits, '-')") = "secretsctl-readonly"  # type: ignore[valid-type]


class Deployment(Section):
    """One deployment (account/stage): what ``config/*.json`` holds."""

    schema_: str | None = Field(default=None, alias="$schema")
    description: str | None = None
    stage: pattern_str(NAME_RE, "a stage name (letters, digits, '-')")  # type: ignore[valid-type]
    account: pattern_str(ACCOUNT_RE, "a 12-digit account id")  # type: ignore[valid-type]
    region: Region  # type: ignore[valid-type]
    alerts: Alerts = Alerts()
    tags: dict[str, str] = {}
    secretsctl_read_only_role: SecretsctlReadOnlyRole | None = None
    rotation: Rotation | None = None
    # One section, or one per source region.
    replication: either(Replication, tuple[Replication, ...]) | None = None  # type: ignore[valid-type]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a configuration file (``config/schema.json``)."""
    schema = Deployment.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "secrets-rotation-service deployment configuration"
    return schema


SCHEMA_FILE = Path(__file__).resolve().parent.parent / "config" / "schema.json"


def render_schema() -> str:
    """``config/schema.json``'s exact content."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def write_schema() -> None:
    """Regenerate ``config/schema.json`` after changing a model (a test keeps the two in sync)."""
    SCHEMA_FILE.write_text(render_schema())
