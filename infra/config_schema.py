"""The deployment configuration: pydantic models of the JSON (camelCase keys), one per section.

These models are the one typed configuration: ``infra.config`` validates a file into a
:class:`Deployment` and the stacks read it as it is. Each field carries its own check (format, range,
choices) with the message a reader needs. Rules that relate several fields (a master secret that must
exist, a window that depends on the schedule, an ARN in the stack's account and region, ...) are the
``_check`` methods of the section they concern; :class:`Deployment`'s model validator runs them all
once every field is valid (pydantic runs a model's after-validator only then), so every such problem
is reported at once, each with its JSON path. Values that follow from other fields (a replication
section's source region, an engine's default port, the default key group, ...) are filled in by the
validators, so readers never re-derive them. ``config/schema.json`` is generated from these models
(``json_schema()``).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

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
#: Reconcile schedules by event source: native Parameter Store events carry no tag changes, so tag
#: edits reach the targets only through reconcile.
DEFAULT_RECONCILE_SCHEDULE = {"cloudtrail": "rate(6 hours)", "parameter-store": "rate(1 hour)"}
DEFAULT_KEY_GROUP = "default"
#: The replication handler's default RECONCILE_TIME_MARGIN_SECONDS: reconcile stops this long before
#: its Lambda timeout, so the timeout must be longer.
RECONCILE_TIME_MARGIN_SECONDS = 60

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
    return cron_values(field_, 0, 23)


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


# -- rules across fields --------------------------------------------------------------------------

#: A JSON path below the model that found a problem: keys and list indexes.
Loc = tuple[str | int, ...]
RULES_ERROR = "config_rules"


class Problems:
    """What the rules across fields find, each with its JSON path (built from nested ``at`` blocks);
    :meth:`raise_if_any` raises them together as one pydantic error of type ``config_rules`` whose
    context holds the list (``infra.config`` writes one ``path: message`` line each)."""

    def __init__(self) -> None:
        self.items: list[tuple[Loc, str]] = []
        self._at: list[str | int] = []

    @contextmanager
    def at(self, *keys: str | int) -> Iterator[None]:
        self._at.extend(keys)
        try:
            yield
        finally:
            del self._at[len(self._at) - len(keys) :]

    def add(self, key: str | int | None, message: str) -> None:
        loc = (*self._at, key) if key is not None else tuple(self._at)
        self.items.append((loc, message))

    def check(self, key: str | int | None, value: Any, check: Check) -> None:
        if value is not None:
            problem = check(value)
            if problem:
                self.add(key, problem)

    def raise_if_any(self) -> None:
        if self.items:
            raise PydanticCustomError(
                RULES_ERROR,
                "{count} problem(s) across fields",
                {"count": len(self.items), "problems": list(self.items)},
            )


def _fill(model: BaseModel, name: str, value: Any) -> None:
    """Set a value that follows from other fields, during validation (the models stay frozen for
    their readers)."""
    model.__dict__[name] = value


def _base_dir(info: ValidationInfo) -> Path:
    """The directory relative file paths of the configuration start from (the file's own)."""
    base = (info.context or {}).get("base_dir")
    return Path(base) if base is not None else Path.cwd()


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

    def _check(self, p: Problems) -> None:
        if self.window is None:
            return
        hours = int(WINDOW_RE.match(self.window).group(1))  # type: ignore[union-attr]
        max_window = self.rate_hours - 1 if self.rate_hours is not None else 24
        if not 1 <= hours <= max_window:
            p.add("window", f"{self.window!r} is out of range (1h..{max_window}h)")
            return
        if self.cron is not None:
            # A window must not extend into the next rotation window or the next UTC day
            # (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotationRulesType.html).
            fields = self.cron[len("cron(") : -1].split()
            selected = cron_hours(fields[1]) or [0]
            minute = int(fields[0])
            gap = min_cron_gap(selected)
            if hours > gap:
                p.add(
                    "window", f"'{hours}h' is longer than the {gap} h between two rotations of this schedule"
                )
            elif selected[-1] * 60 + minute + hours * 60 > 24 * 60:
                p.add(
                    "window",
                    f"'{hours}h' from {selected[-1]:02d}:{minute:02d} UTC extends into the next UTC day",
                )

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

    def _check(self, p: Problems) -> None:
        if (
            self.exclude_numbers
            and self.exclude_punctuation
            and self.exclude_uppercase
            and self.exclude_lowercase
        ):
            p.add(None, "excludes every character type")


class DatabaseAccess(Section):
    security_group_id: SecurityGroupId  # type: ignore[valid-type]
    port: int_in(1, 65535)  # type: ignore[valid-type]


class ExistingEndpoint(Section):
    """An interface endpoint the VPC already has."""

    dns_name: str | None = None  # checked per service by Network
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

    def _check(self, p: Problems, region: str) -> None:
        given = sorted(k for k in self.model_fields_set if k != "vpc")
        if self.vpc is False:
            if given:
                aliases = sorted(Network.model_fields[k].alias or k for k in given)
                p.add(None, f"'vpc': false (no VPC) cannot be combined with {aliases}")
            return
        if self.vpc is not None:
            p.add("vpc", "only 'vpc': false is accepted (to run the function outside any VPC)")
        if self.vpc_id is None:
            p.add("vpcId", "required")
        if self.subnet_ids is None:
            p.add("subnetIds", "required")
        elif not self.subnet_ids:
            p.add("subnetIds", "give at least one subnet (two or more in different AZs recommended)")
        elif self.availability_zones is None:
            # Without the real zones CDK would invent placeholder ones, and an interface endpoint given
            # two subnets of the same real zone fails at deploy.
            p.add(
                "availabilityZones",
                "required: the availability zone of each subnet id, in the same order (without them "
                "placeholder zones are used, and an endpoint given two subnets of one zone fails at deploy)",
            )
        elif len(self.availability_zones) != len(self.subnet_ids):
            p.add("availabilityZones", "give one availability zone per subnet id, in the same order")
        for i, az in enumerate(self.availability_zones or ()):
            if not az.startswith(region):
                with p.at("availabilityZones"):
                    p.add(i, f"{az!r} is not an availability zone of {region}")
        for key, create, existing, service in (
            (
                "SecretsManager",
                self.create_secrets_manager_endpoint,
                self.existing_secrets_manager_endpoint,
                "secretsmanager",
            ),
            ("Rds", self.create_rds_endpoint, self.existing_rds_endpoint, "rds"),
        ):
            if create and existing is not None:
                p.add(
                    f"existing{key}Endpoint",
                    f"give either create{key}Endpoint or existing{key}Endpoint, not both",
                )
            if existing is not None:
                with p.at(f"existing{key}Endpoint"):
                    p.check("dnsName", existing.dns_name, vpce_dns_check(service))


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
    _ca_bundle_path: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _resolve_ca_bundle(self, info: ValidationInfo) -> Function:
        if self.ca_bundle is not None:
            self._ca_bundle_path = (_base_dir(info) / self.ca_bundle).resolve()
        return self

    @property
    def ca_bundle_path(self) -> Path | None:
        """``caBundle`` resolved against the configuration file's directory (absolute)."""
        return self._ca_bundle_path

    def _check(self, p: Problems) -> None:
        if self.ca_bundle_path is not None and not self.ca_bundle_path.is_file():
            p.add("caBundle", f"file not found: {self.ca_bundle_path}")
        with p.at("passwordPolicy"):
            self.password_policy._check(p)


class KeyGroup(Section):
    # A KMS key for a group of secrets: created by the stack (rotation on) or an existing key ARN.
    # (No docstring: it would become the group's description in config/schema.json.)
    existing_key_arn: KmsKeyArn | None = None  # type: ignore[valid-type]
    description: str | None = None
    _name: str = PrivateAttr("")

    @property
    def name(self) -> str:
        """Its key in ``rotation.kmsKeys`` (``default`` for the group the stack adds)."""
        return self._name


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

    @model_validator(mode="after")
    def _defaults(self) -> NewSecret:
        """The engine's port when none is given; every replica region as a ``ReplicaRegion``."""
        if self.port is None:
            _fill(self, "port", ENGINES[self.engine])
        replicas = tuple(
            ReplicaRegion.model_validate({"region": r}) if isinstance(r, str) else r
            for r in self.replica_regions
        )
        _fill(self, "replica_regions", replicas)
        return self

    def _check(self, p: Problems, region: str) -> None:
        with p.at("replicaRegions"):
            seen: list[str] = []
            for i, replica in enumerate(self.replica_regions):
                name = replica if isinstance(replica, str) else replica.region
                if name == region:
                    with p.at(i):
                        p.add("region", f"{name} is the secret's own region")
                seen.append(name)
            if len(set(seen)) != len(seen):
                p.add(None, "contains duplicate regions")


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
    # An existing secret's replicas under customer-managed keys: Region -> key id, alias or ARN. The
    # rotation role may then encrypt the secret's new versions for them (a created secret's come from
    # create.replicaRegions).
    replica_kms_keys: dict[str, str] = {}
    rotate_immediately_on_update: bool = False

    def _check(
        self, p: Problems, by_name: dict[str, SecretEntry], groups: set[str], account: str, region: str
    ) -> None:
        if (self.arn is None) == (self.create is None):
            p.add(None, "give exactly one of 'arn' (an existing secret) or 'create' (a new database secret)")
        p.check("arn", self.arn, secret_arn_check(account, region))
        p.check("masterSecretArn", self.master_secret_arn, secret_arn_check(account, region))
        if self.schedule is None:
            p.add("schedule", "required (rateDays, rateHours, or cron with an optional window)")
        else:
            with p.at("schedule"):
                self.schedule._check(p)
        if self.create is not None:
            with p.at("create"):
                self.create._check(p, region)
        master, master_arn = self.master_secret, self.master_secret_arn
        if self.strategy == "alternating" and not (master or master_arn):
            p.add("strategy", "alternating needs 'masterSecret' (an entry name) or 'masterSecretArn'")
        if self.strategy == "single" and (master or master_arn):
            p.add("masterSecret", "only the alternating strategy uses a master secret")
        if master and master_arn:
            p.add("masterSecretArn", "give either masterSecret or masterSecretArn, not both")
        if self.master_kms_key and not master_arn:
            p.add("masterKmsKey", "only used with masterSecretArn")
        for key, ref in (("kmsKey", self.kms_key), ("masterKmsKey", self.master_kms_key)):
            if ref is not None and ref not in groups and kms_arn_check(None, region)(ref) is not None:
                p.add(
                    key,
                    f"{ref!r} is neither a key group in rotation.kmsKeys ({', '.join(sorted(groups))}) nor a "
                    f"KMS key ARN in {region}",
                )
        with p.at("replicaKmsKeys"):
            if self.replica_kms_keys and self.create is not None:
                p.add(
                    None, "only for an existing secret ('arn'): a created one's are in create.replicaRegions"
                )
            for reg, key in self.replica_kms_keys.items():
                if region_check(reg) is not None:
                    p.add(reg, region_check(reg))
                elif reg == region:
                    p.add(reg, f"{reg} is the secret's own region")
                elif not KMS_KEY_REF_RE.match(key):
                    p.add(reg, f"{key!r} is not a KMS key id, alias or ARN")
                elif key.startswith("arn:") and f":kms:{reg}:" not in key:
                    p.add(reg, f"{key!r} is not a key in {reg}")
        if self.create is not None and self.kms_key is not None and self.kms_key not in groups:
            p.add("kmsKey", "secrets the stack creates are encrypted with a key group of rotation.kmsKeys")
        if master is not None:
            if master not in by_name:
                p.add("masterSecret", f"{master!r} is not the name of an entry in rotation.secrets")
            elif master == self.name:
                p.add("masterSecret", "a secret cannot be its own master")
            elif by_name[master].strategy != "single":
                p.add("masterSecret", f"{master!r} must itself use the single strategy")
        if self.create is not None and self.rotate_immediately_on_update:
            # The database does not know a created secret's generated password until the operator
            # creates the user with it, and rotation starts by logging in with it: a rotation started by
            # the deploy (RotateImmediatelyOnUpdate,
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-rotationschedule.html)
            # cannot succeed.
            p.add(
                "rotateImmediatelyOnUpdate",
                "the stack creates this secret, and its first rotation can only succeed after the "
                "database user has been created with the generated password: leave it false and "
                "let the schedule (or `aws secretsmanager rotate-secret`) rotate it afterwards",
            )


class Rotation(Section):
    network: Network | None = None
    function: Function = Function()
    kms_keys: dict[str, KeyGroup] = {}
    secrets: tuple[SecretEntry, ...]
    scheduled_rotation_check: bool = False
    _key_groups: tuple[KeyGroup, ...] = PrivateAttr(())

    @model_validator(mode="after")
    def _name_key_groups(self) -> Rotation:
        """``kmsKeys`` as named groups, with the stack's ``default`` group first unless given."""
        groups = []
        for name, group in self.kms_keys.items():
            group._name = name
            groups.append(group)
        if DEFAULT_KEY_GROUP not in self.kms_keys:
            default = KeyGroup.model_validate({"description": "Secrets rotated by this stack"})
            default._name = DEFAULT_KEY_GROUP
            groups.insert(0, default)
        self._key_groups = tuple(groups)
        return self

    @property
    def key_groups(self) -> tuple[KeyGroup, ...]:
        return self._key_groups

    def secret(self, name: str) -> SecretEntry:
        return next(s for s in self.secrets if s.name == name)

    def _check(self, p: Problems, account: str, region: str) -> None:
        if self.network is not None:
            with p.at("network"):
                self.network._check(p, region)
        elif self.secrets:
            p.add(
                "network",
                "missing: the database secrets need the rotation function's network placement "
                '(vpcId, subnetIds, securityGroupIds), or {"vpc": false} for databases reachable '
                "without a VPC",
            )
        with p.at("function"):
            self.function._check(p)
        with p.at("kmsKeys"):
            for name, group in self.kms_keys.items():
                if not NAME_RE.match(name):
                    p.add(name, "key group names are letters, digits and '-', starting with a letter")
                with p.at(name):
                    p.check("existingKeyArn", group.existing_key_arn, kms_arn_check(account, region))
        if not self.secrets:
            p.add("secrets", "give at least one secret to rotate")
        groups = {DEFAULT_KEY_GROUP, *self.kms_keys}
        by_name = {s.name: s for s in self.secrets}
        names = [s.name for s in self.secrets]
        with p.at("secrets"):
            for i, s in enumerate(self.secrets):
                if names.count(s.name) > 1:
                    p.add(i, f"duplicate name {s.name!r}")
                with p.at(i):
                    s._check(p, by_name, groups, account, region)
            created = [s.create.secret_name for s in self.secrets if s.create]
            for dup in sorted({n for n in created if created.count(n) > 1}):
                p.add(None, f"two entries create the secret {dup!r}")


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
    def _defaults(self) -> Replication:
        """Paths with their trailing slash; the reconcile schedule of the event source when none is
        given (native Parameter Store events carry no tag changes: those wait for reconcile). The
        source region (default: the file's region) is filled in by :class:`Deployment`."""
        _fill(self, "include_paths", tuple(normalize_path(x) for x in self.include_paths))
        _fill(self, "exclude_paths", tuple(normalize_path(x) for x in self.exclude_paths))
        if self.reconcile_schedule is None:
            _fill(self, "reconcile_schedule", DEFAULT_RECONCILE_SCHEDULE[self.event_source])
        return self

    def _check(self, p: Problems, account: str, region: str) -> None:
        source = self.source_region or region
        if not self.target_regions:
            p.add("targetRegions", "give at least one target region")
        if source in self.target_regions:
            p.add("targetRegions", f"{source} is the source region")
        include = [normalize_path(x) for x in self.include_paths]
        for x in (normalize_path(e) for e in self.exclude_paths):
            if not any(x.startswith(i) for i in include):
                p.add("excludePaths", f"{x!r} is not under any included path")
        if len(include) > 1 and "/" in include:
            p.add("includePaths", "'/' already includes every path")
        with p.at("targetKmsKeys"):
            for reg, key in self.target_kms_keys.items():
                if reg not in self.target_regions:
                    p.add(reg, "not one of targetRegions")
                elif not KMS_KEY_REF_RE.match(key):
                    p.add(reg, f"{key!r} is not a KMS key id, alias or ARN")
                elif key.startswith("arn:") and f":kms:{reg}:" not in key:
                    p.add(reg, f"{key!r} is not a key in {reg}")
        with p.at("sourceKmsKeys"):
            for i, key in enumerate(self.source_kms_keys):
                p.check(i, key, kms_arn_check(account, source))
        if self.create_trail and self.event_source == "parameter-store":
            p.add("createTrail", "the trail is only needed for eventSource 'cloudtrail'")
        margin = self.reconcile_time_margin_seconds
        if margin is not None and margin >= self.reconcile_timeout_seconds:
            p.add(
                "reconcileTimeMarginSeconds",
                f"{margin} s is not shorter than reconcileTimeoutSeconds "
                f"({self.reconcile_timeout_seconds} s): reconcile would stop before it started",
            )
        elif margin is None and RECONCILE_TIME_MARGIN_SECONDS >= self.reconcile_timeout_seconds:
            p.add(
                "reconcileTimeoutSeconds",
                f"{self.reconcile_timeout_seconds} s leaves no time after the handler's default margin of "
                f"{RECONCILE_TIME_MARGIN_SECONDS} s: raise it or set a smaller reconcileTimeMarginSeconds",
            )
        # EventBridge starts the target on every tick of the schedule, whether the last run ended or not
        # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-rule-schedule.html). The
        # event source's default schedule (filled in when none is given) is always far enough apart.
        interval = events_schedule_interval(self.reconcile_schedule) if self.reconcile_schedule else None
        if interval is not None and interval < self.reconcile_timeout_seconds:
            p.add(
                "reconcileSchedule",
                f"{self.reconcile_schedule!r} starts reconcile every {interval} s, sooner than "
                f"reconcileTimeoutSeconds ({self.reconcile_timeout_seconds} s): runs would overlap "
                "(or be throttled); schedule it at least that far apart or lower the timeout",
            )


class Alerts(Section):
    email: pattern_str(EMAIL_RE, "an email address") | None = None  # type: ignore[valid-type]
    topic_arn: checked(str, topic_arn_check(), pattern=SNS_TOPIC_ARN_RE.pattern) | None = None  # type: ignore[valid-type]

    def _check(self, p: Problems, account: str) -> None:
        p.check("topicArn", self.topic_arn, topic_arn_check(account))
        if self.email and self.topic_arn:
            p.add(
                "topicArn",
                "give either email (a subscription to the stack's own topic) or topicArn (an existing "
                "topic), not both",
            )


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
    _source: str = PrivateAttr("<config>")

    @model_validator(mode="after")
    def _rules_across_fields(self) -> Deployment:
        """Every rule relating fields to each other, once every field is valid, all problems at
        once; then the values that follow from the whole file are filled in."""
        problems = Problems()
        self._check(problems)
        problems.raise_if_any()
        for section in self.replications:
            if section.source_region is None:
                _fill(section, "source_region", self.region)
        if (
            self.rotation is not None
            and self.rotation.network is not None
            and self.rotation.network.vpc is False
        ):
            _fill(self.rotation, "network", None)  # {"vpc": false}: the function runs outside any VPC
        return self

    @property
    def source(self) -> str:
        """Where the configuration was read from (for messages)."""
        return self._source

    @property
    def replications(self) -> tuple[Replication, ...]:
        """The replication sections, one per source region (``replication`` may be one or a list)."""
        if self.replication is None:
            return ()
        return tuple(self.replication) if isinstance(self.replication, tuple) else (self.replication,)

    def _check(self, p: Problems) -> None:
        if self.rotation is None and self.replication is None:
            p.add(None, "nothing to deploy: give 'rotation', 'replication' or both")
        if self.tags and not all(isinstance(v, str) for v in self.tags.values()):
            p.add("tags", "tag keys and values are strings")
        with p.at("alerts"):
            self.alerts._check(p, self.account)
        if self.rotation is not None:
            with p.at("rotation"):
                self.rotation._check(p, self.account, self.region)
        reps = self.replications
        if isinstance(self.replication, tuple):
            with p.at("replication"):
                if not reps:
                    p.add(None, "give at least one replication section")
                for i, section in enumerate(reps):
                    with p.at(i):
                        section._check(p, self.account, self.region)
                self._check_two_way(p)
        elif self.replication is not None:
            with p.at("replication"):
                self.replication._check(p, self.account, self.region)
        if self.alerts.topic_arn and SNS_TOPIC_ARN_RE.match(self.alerts.topic_arn):
            topic_region = SNS_TOPIC_ARN_RE.match(self.alerts.topic_arn).group("region")  # type: ignore[union-attr]
            regions = ([self.region] if self.rotation else []) + [
                r.source_region or self.region for r in reps
            ]
            for other in sorted({x for x in regions if x != topic_region}):
                p.add(
                    "alerts.topicArn",
                    f"the topic is in {topic_region} but a stack deploys to {other}: alarms publish only "
                    "to a topic of their own region (use one configuration file per region)",
                )

    def _check_two_way(self, p: Problems) -> None:
        """Two sections replicating the same paths both ways must not delete unmanaged replicas."""
        reps = self.replications

        def source(r: Replication) -> str:
            return r.source_region or self.region

        paths = [[normalize_path(x) for x in r.include_paths] for r in reps]
        for i, a in enumerate(reps):
            if [source(r) for r in reps].count(source(a)) > 1:
                p.add(i, f"another section also replicates from {source(a)} (one per source region)")
            for j, b in enumerate(reps):
                if i < j and (a.delete_unmanaged_replicas or b.delete_unmanaged_replicas):
                    if replicates_both_ways(
                        source(a), a.target_regions, paths[i], source(b), b.target_regions, paths[j]
                    ):
                        with p.at(i if a.delete_unmanaged_replicas else j):
                            p.add(
                                "deleteUnmanagedReplicas",
                                f"sections {i} and {j} replicate the same paths both ways ({source(a)} <-> "
                                f"{source(b)}); deleting unmanaged replicas would then delete originals (a "
                                "deleted replica looks like a deleted source): set it to false",
                            )


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
