"""Deployment configuration: loading and validation.

One JSON file per deployment (account/stage). ``cdk.json`` names the default file in the ``config``
context key; ``cdk synth -c config=PATH`` overrides it. The file's schema is the pydantic models of
``infra.config_schema`` (published as ``config/schema.json`` for editors). Problems are reported with
the JSON path of the offending value, all at once: first every field (type, format, range, unknown
keys), then, once every field is valid, every rule that relates fields to each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from infra import config_schema as schema
from infra.config_schema import (
    ENGINES,
    SNS_TOPIC_ARN_RE,
    WINDOW_RE,
    cron_hours,
    kms_arn_check,
    min_cron_gap,
    normalize_path,
    secret_arn_check,
    topic_arn_check,
    vpce_dns_check,
)
from infra.config_types import (
    DEFAULT_KEY_GROUP,
    DEFAULT_RECONCILE_SCHEDULE,
    RECONCILE_TIME_MARGIN_SECONDS,
    AlertsConfig,
    ConfigError,
    DatabaseAccessConfig,
    DeploymentConfig,
    ExistingEndpointConfig,
    KeyGroupConfig,
    NetworkConfig,
    NewDatabaseSecretConfig,
    PasswordPolicyConfig,
    ReplicaRegionConfig,
    ReplicationConfig,
    RotationConfig,
    RotationFunctionConfig,
    RotationScheduleConfig,
    SecretConfig,
)
from infra.topology import replicates_both_ways

__all__ = [
    "AlertsConfig",
    "ConfigError",
    "DatabaseAccessConfig",
    "DeploymentConfig",
    "ExistingEndpointConfig",
    "KeyGroupConfig",
    "NetworkConfig",
    "NewDatabaseSecretConfig",
    "PasswordPolicyConfig",
    "ReplicaRegionConfig",
    "ReplicationConfig",
    "RotationConfig",
    "RotationFunctionConfig",
    "RotationScheduleConfig",
    "SecretConfig",
    "cron_hours",
    "load_config",
    "min_cron_gap",
    "normalize_path",
    "parse_config",
]


# -- field errors: pydantic's, in this project's words ----------------------------------------------

_KINDS = {
    "int": "an integer",
    "str": "a string",
    "bool": "a boolean",
    "list": "a list",
    "tuple": "a list",
    "dict": "an object",
    "model": "an object",
}
_TYPE_ERRORS = {
    "int_type": "int",
    "int_from_float": "int",
    "string_type": "str",
    "bool_type": "bool",
    "list_type": "list",
    "tuple_type": "tuple",
    "dict_type": "dict",
    "model_type": "model",
    "model_attributes_type": "model",
}
_JSON_TYPES = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    list: "list",
    dict: "dict",
    type(None): "NoneType",
}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in schema.BRANCH_TAGS:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys of the section at ``loc`` (for 'unknown key' errors)."""
    kinds: list[Any] = [schema.Deployment]
    for part in loc:
        if part in schema.BRANCH_TAGS:
            continue
        following: list[Any] = []
        for kind in (c for k in kinds for c in _flatten(k)):
            origin, args = get_origin(kind), get_args(kind)
            if isinstance(part, int) and origin in (tuple, list):
                following.append(args[0])
            elif isinstance(part, str) and origin is dict:
                following.append(args[1])
            elif isinstance(part, str) and isinstance(kind, type) and issubclass(kind, BaseModel):
                following += [f.annotation for n, f in kind.model_fields.items() if (f.alias or n) == part]
        kinds = following
    for kind in (c for k in kinds for c in _flatten(k)):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return sorted(f.alias or n for n, f in kind.model_fields.items())
    return []


def _flatten(kind: Any) -> list[Any]:
    """``Annotated``, ``Optional`` and unions, resolved to their member types."""
    if get_origin(kind) is Annotated:
        return _flatten(get_args(kind)[0])
    if get_origin(kind) in (Union, UnionType):
        return [c for a in get_args(kind) for c in _flatten(a)]
    return [kind]


def _field_errors(exc: ValidationError) -> list[str]:
    out: list[str] = []
    for e in exc.errors(include_url=False):
        loc, kind = tuple(e["loc"]), e["type"]
        if kind == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(loc[:-1]))
            out.append(f"{_path(loc[:-1])}: unknown key {loc[-1]!r} (allowed: {allowed})")
        elif kind == "missing":
            out.append(f"{_path(loc)}: required")
        elif kind in _TYPE_ERRORS:
            given = _JSON_TYPES.get(type(e["input"]), type(e["input"]).__name__)
            got = "a boolean" if given == "bool" else given
            out.append(f"{_path(loc)}: expected {_KINDS[_TYPE_ERRORS[kind]]}, got {got}")
        else:
            out.append(f"{_path(loc)}: {e['msg']}")
    return out


# -- rules across fields ----------------------------------------------------------------------------


class _Errors:
    """Collects ``path: message`` with the path built from nested ``at`` blocks."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._path: list[str | int] = []

    @contextmanager
    def at(self, *keys: str | int) -> Iterator[None]:
        self._path.extend(keys)
        try:
            yield
        finally:
            del self._path[len(self._path) - len(keys) :]

    def add(self, key: str | int | None, message: str) -> None:
        loc = (*self._path, key) if key is not None else tuple(self._path)
        self.items.append(f"{_path(loc)}: {message}")

    def check(self, key: str | int | None, value: Any, check: Any) -> None:
        if value is not None:
            problem = check(value)
            if problem:
                self.add(key, problem)


def _check_network(err: _Errors, net: schema.Network, region: str) -> None:
    given = sorted(k for k in net.model_fields_set if k != "vpc")
    if net.vpc is False:
        if given:
            aliases = sorted(schema.Network.model_fields[k].alias or k for k in given)
            err.add(None, f"'vpc': false (no VPC) cannot be combined with {aliases}")
        return
    if net.vpc is not None:
        err.add("vpc", "only 'vpc': false is accepted (to run the function outside any VPC)")
    if net.vpc_id is None:
        err.add("vpcId", "required")
    if net.subnet_ids is None:
        err.add("subnetIds", "required")
    elif not net.subnet_ids:
        err.add("subnetIds", "give at least one subnet (two or more in different AZs recommended)")
    elif net.availability_zones is None:
        # Without the real zones CDK would invent placeholder ones, and an interface endpoint given
        # two subnets of the same real zone fails at deploy.
        err.add(
            "availabilityZones",
            "required: the availability zone of each subnet id, in the same order (without them "
            "placeholder zones are used, and an endpoint given two subnets of one zone fails at deploy)",
        )
    elif len(net.availability_zones) != len(net.subnet_ids):
        err.add("availabilityZones", "give one availability zone per subnet id, in the same order")
    for i, az in enumerate(net.availability_zones or ()):
        if not az.startswith(region):
            with err.at("availabilityZones"):
                err.add(i, f"{az!r} is not an availability zone of {region}")
    for key, create, existing, service in (
        (
            "SecretsManager",
            net.create_secrets_manager_endpoint,
            net.existing_secrets_manager_endpoint,
            "secretsmanager",
        ),
        ("Rds", net.create_rds_endpoint, net.existing_rds_endpoint, "rds"),
    ):
        if create and existing is not None:
            err.add(
                f"existing{key}Endpoint",
                f"give either create{key}Endpoint or existing{key}Endpoint, not both",
            )
        if existing is not None:
            with err.at(f"existing{key}Endpoint"):
                err.check("dnsName", existing.dns_name, vpce_dns_check(service))


def _check_schedule(err: _Errors, s: schema.Schedule) -> None:
    if s.window is None:
        return
    hours = int(WINDOW_RE.match(s.window).group(1))  # type: ignore[union-attr]
    max_window = s.rate_hours - 1 if s.rate_hours is not None else 24
    if not 1 <= hours <= max_window:
        err.add("window", f"{s.window!r} is out of range (1h..{max_window}h)")
        return
    if s.cron is not None:
        # A window must not extend into the next rotation window or the next UTC day
        # (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotationRulesType.html).
        fields = s.cron[len("cron(") : -1].split()
        selected = cron_hours(fields[1]) or [0]
        minute = int(fields[0])
        gap = min_cron_gap(selected)
        if hours > gap:
            err.add("window", f"'{hours}h' is longer than the {gap} h between two rotations of this schedule")
        elif selected[-1] * 60 + minute + hours * 60 > 24 * 60:
            err.add(
                "window", f"'{hours}h' from {selected[-1]:02d}:{minute:02d} UTC extends into the next UTC day"
            )


def _check_rotation(err: _Errors, rot: schema.Rotation, cfg: schema.Deployment, base_dir: Path) -> None:
    account, region = cfg.account, cfg.region
    with err.at("rotation"):
        if rot.network is not None:
            with err.at("network"):
                _check_network(err, rot.network, region)
        elif rot.secrets:
            err.add(
                "network",
                "missing: the database secrets need the rotation function's network placement "
                '(vpcId, subnetIds, securityGroupIds), or {"vpc": false} for databases reachable '
                "without a VPC",
            )
        if rot.function.ca_bundle is not None and not (base_dir / rot.function.ca_bundle).resolve().is_file():
            with err.at("function"):
                err.add("caBundle", f"file not found: {(base_dir / rot.function.ca_bundle).resolve()}")
        pp = rot.function.password_policy
        if pp.exclude_numbers and pp.exclude_punctuation and pp.exclude_uppercase and pp.exclude_lowercase:
            with err.at("function"):
                err.add("passwordPolicy", "excludes every character type")
        with err.at("kmsKeys"):
            for name, group in rot.kms_keys.items():
                if not schema.NAME_RE.match(name):
                    err.add(name, "key group names are letters, digits and '-', starting with a letter")
                with err.at(name):
                    err.check("existingKeyArn", group.existing_key_arn, kms_arn_check(account, region))
        if not rot.secrets:
            err.add("secrets", "give at least one secret to rotate")
        groups = {DEFAULT_KEY_GROUP, *rot.kms_keys}
        by_name = {s.name: s for s in rot.secrets}
        names = [s.name for s in rot.secrets]
        with err.at("secrets"):
            for i, s in enumerate(rot.secrets):
                if names.count(s.name) > 1:
                    err.add(i, f"duplicate name {s.name!r}")
                with err.at(i):
                    _check_secret(err, s, by_name, groups, account, region)
            created = [s.create.secret_name for s in rot.secrets if s.create]
            for dup in sorted({n for n in created if created.count(n) > 1}):
                err.add(None, f"two entries create the secret {dup!r}")


def _check_secret(
    err: _Errors,
    s: schema.SecretEntry,
    by_name: dict[str, schema.SecretEntry],
    groups: set[str],
    account: str,
    region: str,
) -> None:
    if (s.arn is None) == (s.create is None):
        err.add(None, "give exactly one of 'arn' (an existing secret) or 'create' (a new database secret)")
    err.check("arn", s.arn, secret_arn_check(account, region))
    err.check("masterSecretArn", s.master_secret_arn, secret_arn_check(account, region))
    if s.schedule is None:
        err.add("schedule", "required (rateDays, rateHours, or cron with an optional window)")
    else:
        with err.at("schedule"):
            _check_schedule(err, s.schedule)
    if s.create is not None:
        with err.at("create", "replicaRegions"):
            seen: list[str] = []
            for i, replica in enumerate(s.create.replica_regions):
                name = replica if isinstance(replica, str) else replica.region
                if name == region:
                    with err.at(i):
                        err.add("region", f"{name} is the secret's own region")
                seen.append(name)
            if len(set(seen)) != len(seen):
                err.add(None, "contains duplicate regions")
    master, master_arn = s.master_secret, s.master_secret_arn
    if s.strategy == "alternating" and not (master or master_arn):
        err.add("strategy", "alternating needs 'masterSecret' (an entry name) or 'masterSecretArn'")
    if s.strategy == "single" and (master or master_arn):
        err.add("masterSecret", "only the alternating strategy uses a master secret")
    if master and master_arn:
        err.add("masterSecretArn", "give either masterSecret or masterSecretArn, not both")
    if s.master_kms_key and not master_arn:
        err.add("masterKmsKey", "only used with masterSecretArn")
    for key, ref in (("kmsKey", s.kms_key), ("masterKmsKey", s.master_kms_key)):
        if ref is not None and ref not in groups and kms_arn_check(None, region)(ref) is not None:
            err.add(
                key,
                f"{ref!r} is neither a key group in rotation.kmsKeys ({', '.join(sorted(groups))}) nor a KMS "
                f"key ARN in {region}",
            )
    if s.create is not None and s.kms_key is not None and s.kms_key not in groups:
        err.add("kmsKey", "secrets the stack creates are encrypted with a key group of rotation.kmsKeys")
    if master is not None:
        if master not in by_name:
            err.add("masterSecret", f"{master!r} is not the name of an entry in rotation.secrets")
        elif master == s.name:
            err.add("masterSecret", "a secret cannot be its own master")
        elif by_name[master].strategy != "single":
            err.add("masterSecret", f"{master!r} must itself use the single strategy")


def _check_replication(err: _Errors, rep: schema.Replication, cfg: schema.Deployment) -> None:
    source = rep.source_region or cfg.region
    if not rep.target_regions:
        err.add("targetRegions", "give at least one target region")
    if source in rep.target_regions:
        err.add("targetRegions", f"{source} is the source region")
    include = [normalize_path(p) for p in rep.include_paths]
    for p in (normalize_path(x) for x in rep.exclude_paths):
        if not any(p.startswith(i) for i in include):
            err.add("excludePaths", f"{p!r} is not under any included path")
    if len(include) > 1 and "/" in include:
        err.add("includePaths", "'/' already includes every path")
    with err.at("targetKmsKeys"):
        for reg, key in rep.target_kms_keys.items():
            if reg not in rep.target_regions:
                err.add(reg, "not one of targetRegions")
            elif not schema.KMS_KEY_REF_RE.match(key):
                err.add(reg, f"{key!r} is not a KMS key id, alias or ARN")
            elif key.startswith("arn:") and f":kms:{reg}:" not in key:
                err.add(reg, f"{key!r} is not a key in {reg}")
    with err.at("sourceKmsKeys"):
        for i, key in enumerate(rep.source_kms_keys):
            err.check(i, key, kms_arn_check(cfg.account, source))
    if rep.create_trail and rep.event_source == "parameter-store":
        err.add("createTrail", "the trail is only needed for eventSource 'cloudtrail'")
    margin = rep.reconcile_time_margin_seconds
    if margin is not None and margin >= rep.reconcile_timeout_seconds:
        err.add(
            "reconcileTimeMarginSeconds",
            f"{margin} s is not shorter than reconcileTimeoutSeconds ({rep.reconcile_timeout_seconds} s): "
            "reconcile would stop before it started",
        )
    elif margin is None and RECONCILE_TIME_MARGIN_SECONDS >= rep.reconcile_timeout_seconds:
        err.add(
            "reconcileTimeoutSeconds",
            f"{rep.reconcile_timeout_seconds} s leaves no time after the handler's default margin of "
            f"{RECONCILE_TIME_MARGIN_SECONDS} s: raise it or set a smaller reconcileTimeMarginSeconds",
        )


def _check_two_way(err: _Errors, reps: list[schema.Replication], region: str) -> None:
    def source(r: schema.Replication) -> str:
        return r.source_region or region

    paths = [[normalize_path(p) for p in r.include_paths] for r in reps]
    for i, a in enumerate(reps):
        if [source(r) for r in reps].count(source(a)) > 1:
            err.add(i, f"another section also replicates from {source(a)} (one per source region)")
        for j, b in enumerate(reps):
            if i < j and (a.delete_unmanaged_replicas or b.delete_unmanaged_replicas):
                if replicates_both_ways(
                    source(a), a.target_regions, paths[i], source(b), b.target_regions, paths[j]
                ):
                    with err.at(i if a.delete_unmanaged_replicas else j):
                        err.add(
                            "deleteUnmanagedReplicas",
                            f"sections {i} and {j} replicate the same paths both ways ({source(a)} <-> "
                            f"{source(b)}); deleting unmanaged replicas would then delete originals (a "
                            "deleted replica looks like a deleted source): set it to false",
                        )


def _check(cfg: schema.Deployment, base_dir: Path) -> list[str]:
    err = _Errors()
    if cfg.rotation is None and cfg.replication is None:
        err.add(None, "nothing to deploy: give 'rotation', 'replication' or both")
    if cfg.tags and not all(isinstance(v, str) for v in cfg.tags.values()):
        err.add("tags", "tag keys and values are strings")
    with err.at("alerts"):
        err.check("topicArn", cfg.alerts.topic_arn, topic_arn_check(cfg.account))
        if cfg.alerts.email and cfg.alerts.topic_arn:
            err.add(
                "topicArn",
                "give either email (a subscription to the stack's own topic) or topicArn (an existing "
                "topic), not both",
            )
    if cfg.rotation is not None:
        _check_rotation(err, cfg.rotation, cfg, base_dir)
    reps = _replication_sections(cfg)
    if isinstance(cfg.replication, tuple):
        with err.at("replication"):
            if not reps:
                err.add(None, "give at least one replication section")
            for i, rep in enumerate(reps):
                with err.at(i):
                    _check_replication(err, rep, cfg)
            _check_two_way(err, reps, cfg.region)
    elif cfg.replication is not None:
        with err.at("replication"):
            _check_replication(err, cfg.replication, cfg)
    if cfg.alerts.topic_arn and SNS_TOPIC_ARN_RE.match(cfg.alerts.topic_arn):
        topic_region = SNS_TOPIC_ARN_RE.match(cfg.alerts.topic_arn).group("region")  # type: ignore[union-attr]
        regions = ([cfg.region] if cfg.rotation else []) + [r.source_region or cfg.region for r in reps]
        for other in sorted({x for x in regions if x != topic_region}):
            err.add(
                "alerts.topicArn",
                f"the topic is in {topic_region} but a stack deploys to {other}: alarms publish only to a "
                "topic of their own region (use one configuration file per region)",
            )
    return err.items


def _replication_sections(cfg: schema.Deployment) -> list[schema.Replication]:
    if cfg.replication is None:
        return []
    return list(cfg.replication) if isinstance(cfg.replication, tuple) else [cfg.replication]


# -- the typed configuration the stacks read --------------------------------------------------------


def _network_config(net: schema.Network | None) -> NetworkConfig | None:
    if net is None or net.vpc is False:
        return None

    def existing(e: schema.ExistingEndpoint | None) -> ExistingEndpointConfig | None:
        return None if e is None else ExistingEndpointConfig(e.dns_name, e.security_group_id)

    return NetworkConfig(
        vpc_id=net.vpc_id or "",
        subnet_ids=tuple(net.subnet_ids or ()),
        availability_zones=tuple(net.availability_zones or ()),
        security_group_ids=tuple(net.security_group_ids),
        create_secrets_manager_endpoint=net.create_secrets_manager_endpoint,
        database_access=tuple(DatabaseAccessConfig(a.security_group_id, a.port) for a in net.database_access),
        existing_secrets_manager_endpoint=existing(net.existing_secrets_manager_endpoint),
        create_rds_endpoint=net.create_rds_endpoint,
        existing_rds_endpoint=existing(net.existing_rds_endpoint),
    )


def _secret_config(s: schema.SecretEntry) -> SecretConfig:
    assert s.schedule is not None
    create = None
    if s.create is not None:
        c = s.create
        create = NewDatabaseSecretConfig(
            secret_name=c.secret_name,
            engine=c.engine,
            host=c.host,
            port=c.port if c.port is not None else ENGINES[c.engine],
            username=c.username,
            dbname=c.dbname,
            description=c.description,
            replica_regions=tuple(
                ReplicaRegionConfig(region=r)
                if isinstance(r, str)
                else ReplicaRegionConfig(r.region, r.kms_key)
                for r in c.replica_regions
            ),
        )
    return SecretConfig(
        name=s.name,
        strategy=s.strategy,
        schedule=RotationScheduleConfig(s.schedule.expression, s.schedule.window),
        arn=s.arn,
        create=create,
        kms_key=s.kms_key,
        master_secret=s.master_secret,
        master_secret_arn=s.master_secret_arn,
        master_kms_key=s.master_kms_key,
        rotate_immediately_on_update=s.rotate_immediately_on_update,
    )


def _rotation_config(rot: schema.Rotation, base_dir: Path) -> RotationConfig:
    f = rot.function
    groups = [KeyGroupConfig(name, g.existing_key_arn, g.description) for name, g in rot.kms_keys.items()]
    if DEFAULT_KEY_GROUP not in rot.kms_keys:
        groups.insert(0, KeyGroupConfig(name=DEFAULT_KEY_GROUP, description="Secrets rotated by this stack"))
    return RotationConfig(
        network=_network_config(rot.network),
        function=RotationFunctionConfig(
            memory_mb=f.memory_mb,
            timeout_seconds=f.timeout_seconds,
            log_retention_days=f.log_retention_days,
            ca_bundle=(base_dir / f.ca_bundle).resolve() if f.ca_bundle else None,
            password_policy=PasswordPolicyConfig(**f.password_policy.model_dump()),
            reserved_concurrency=f.reserved_concurrency,
            lock_timeout_seconds=f.db_lock_timeout_seconds,
            statement_timeout_seconds=f.db_statement_timeout_seconds,
        ),
        key_groups=tuple(groups),
        secrets=tuple(_secret_config(s) for s in rot.secrets),
        scheduled_rotation_check=rot.scheduled_rotation_check,
    )


def _replication_config(rep: schema.Replication, region: str) -> ReplicationConfig:
    return ReplicationConfig(
        source_region=rep.source_region or region,
        target_regions=tuple(rep.target_regions),
        include_paths=tuple(normalize_path(p) for p in rep.include_paths),
        exclude_paths=tuple(normalize_path(p) for p in rep.exclude_paths),
        target_kms_keys=dict(rep.target_kms_keys),
        source_kms_keys=tuple(rep.source_kms_keys),
        # Native Parameter Store events carry no tag changes: those wait for reconcile.
        reconcile_schedule=rep.reconcile_schedule or DEFAULT_RECONCILE_SCHEDULE[rep.event_source],
        event_source=rep.event_source,  # type: ignore[arg-type]
        create_trail=rep.create_trail,
        delete_unmanaged_replicas=rep.delete_unmanaged_replicas,
        copy_ec2_image_parameters=rep.copy_ec2_image_parameters,
        adopt_unmanaged_targets=rep.adopt_unmanaged_targets,
        memory_mb=rep.memory_mb,
        timeout_seconds=rep.timeout_seconds,
        reconcile_timeout_seconds=rep.reconcile_timeout_seconds,
        log_retention_days=rep.log_retention_days,
        reserved_concurrency=rep.reserved_concurrency,
        reconcile_concurrency=rep.reconcile_concurrency,
        max_rounds=rep.max_rounds,
        reconcile_deep_every=rep.reconcile_deep_every,
        reconcile_requests_per_second=rep.reconcile_requests_per_second,
        reconcile_bulk_tags=rep.reconcile_bulk_tags,
        reconcile_time_margin_seconds=rep.reconcile_time_margin_seconds,
        lag_alarm_seconds=rep.lag_alarm_seconds,
    )


def parse_config(raw: Any, source: str = "<config>", base_dir: Path | None = None) -> DeploymentConfig:
    """Validate a decoded JSON document; raise ``ConfigError`` listing every problem."""
    base = base_dir or Path.cwd()
    try:
        # JSON mode: strict types as JSON has them (lists for tuples, no "30" for 30).
        cfg = schema.Deployment.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        raise ConfigError(source, _field_errors(exc)) from None
    errors = _check(cfg, base)
    if errors:
        raise ConfigError(source, errors)
    reps = [_replication_config(r, cfg.region) for r in _replication_sections(cfg)]
    return DeploymentConfig(
        source=source,
        stage=cfg.stage,
        account=cfg.account,
        region=cfg.region,
        alerts=AlertsConfig(email=cfg.alerts.email, topic_arn=cfg.alerts.topic_arn),
        tags=dict(cfg.tags),
        rotation=_rotation_config(cfg.rotation, base) if cfg.rotation is not None else None,
        replication=reps[0] if reps else None,
        replications=tuple(reps),
        secretsctl_read_only_role=(
            (cfg.secretsctl_read_only_role.trusted_account, cfg.secretsctl_read_only_role.role_name)
            if cfg.secretsctl_read_only_role is not None
            else None
        ),
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
