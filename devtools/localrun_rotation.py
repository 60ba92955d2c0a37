"""Example database secrets, rotated through RotateSecret, and what each rotation should leave.

Secrets Manager's invocation of the rotation Lambda is emulated by ``devtools.aws.local_aws``:
moto's RotateSecret calls our real handler four times (createSecret ... finishSecret).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from typing import Any

from devtools.aws import ApiCounter, LocalAws, secret_versions
from devtools.localrun_db import DemoDb, new_password

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
SINGLE_USER = "reports"
ALTERNATING_USER = "app"


def alternating_available() -> bool:
    return importlib.util.find_spec("rotation_handlers.strategies.alternating_user") is not None


@dataclass
class DemoSecret:
    name: str
    db: DemoDb
    strategy: str  # "single" | "alternating"
    base_user: str
    arn: str = ""
    seen_passwords: set[str] = field(default_factory=set, repr=False)


@dataclass
class LabelState:
    version: str
    user: str
    login: str  # "yes" | "no" | "no table"


@dataclass
class RotationResult:
    secret: DemoSecret
    round: int
    current: LabelState
    previous: LabelState | None
    other_labels: list[str]
    steps: dict[str, float]
    sm_calls: int
    db_connections: int
    failed_logins: int
    problems: list[str]


class RotationFailed(RuntimeError):
    pass


def create_secrets(sm: Any, dbs: list[DemoDb], passwords: set[str]) -> list[DemoSecret]:
    """Per database: a master secret (admin), a single-user and an alternating-user secret."""
    out: list[DemoSecret] = []
    for db in dbs:
        db.create_schema()
        master = db.secret(db.server.admin_user, db.server.admin_password)
        master_arn = sm.create_secret(
            Name=f"demo/{db.key}-master",
            Description=f"{db.label} admin user (master secret of demo/{db.key}-alternating)",
            SecretString=json.dumps(master),
        )["ARN"]
        passwords.add(db.server.admin_password)
        for strategy, user in (("single", SINGLE_USER), ("alternating", ALTERNATING_USER)):
            password = new_password()
            passwords.add(password)
            db.create_user(user, password)
            extra = {"masterarn": master_arn} if strategy == "alternating" else {}
            secret = DemoSecret(f"demo/{db.key}-{strategy}", db, strategy, user)
            secret.arn = sm.create_secret(
                Name=secret.name,
                Description=f"{db.label} {strategy}-user rotation example",
                SecretString=json.dumps(db.secret(user, password, **extra)),
            )["ARN"]
            secret.seen_passwords.add(password)
            out.append(secret)
    return out


def _value(sm: Any, name: str, stage: str) -> dict[str, Any] | None:
    try:
        raw = sm.get_secret_value(SecretId=name, VersionStage=stage)["SecretString"]
    except sm.exceptions.ResourceNotFoundException:
        return None
    return dict(json.loads(raw))


def rotate(
    aws: LocalAws, sm: Any, counter: ApiCounter, secret: DemoSecret, round_no: int, passwords: set[str]
) -> RotationResult:
    """One RotateSecret, then read back labels and values and check every expectation."""
    before = secret_versions(sm, secret.name)
    old_current = next((v for v, labels in before.items() if "AWSCURRENT" in labels), None)
    old_value = _value(sm, secret.name, "AWSCURRENT") or {}
    db_before, calls_before, first_invocation = secret.db.stats(), counter.total, len(aws.invocations)
    try:
        token = sm.rotate_secret(
            SecretId=secret.name,
            RotationLambdaARN=aws.function_arn,
            RotationRules={"AutomaticallyAfterDays": 30},
        )["VersionId"]
    except Exception as exc:
        raise RotationFailed(f"RotateSecret {secret.name} (rotation {round_no}) failed: {exc}") from None
    invocations = aws.invocations[first_invocation:]
    db_after, sm_calls = secret.db.stats(), counter.total - calls_before

    versions = secret_versions(sm, secret.name)
    current = _value(sm, secret.name, "AWSCURRENT") or {}
    previous = _value(sm, secret.name, "AWSPREVIOUS")
    for value in (current, previous or {}):
        if isinstance(value.get("password"), str):
            passwords.add(value["password"])

    def state(stage: str, value: dict[str, Any] | None) -> LabelState | None:
        version = next((v for v, labels in versions.items() if stage in labels), None)
        if version is None or value is None:
            return None
        user = str(value.get("username"))
        return LabelState(version, user, secret.db.login(user, str(value.get("password"))))

    cur_state = state("AWSCURRENT", current)
    prev_state = state("AWSPREVIOUS", previous)
    other = sorted(
        f"{v[:8]} {label}"
        for v, ls in versions.items()
        for label in ls
        if label not in ("AWSCURRENT", "AWSPREVIOUS")
    )

    problems = _check(
        secret, token, old_current, old_value, versions, current, previous, cur_state, prev_state
    )
    steps = [inv.step for inv in invocations]
    if steps != list(STEPS):
        problems.append(f"steps invoked {steps}, expected {list(STEPS)}")
    problems += [f"{inv.step} raised {type(inv.error).__name__}" for inv in invocations if inv.error]
    if cur_state is not None:
        secret.seen_passwords.add(str(current.get("password")))
    return RotationResult(
        secret=secret,
        round=round_no,
        current=cur_state or LabelState("-", "-", "-"),
        previous=prev_state,
        other_labels=other,
        steps={inv.step: inv.seconds for inv in invocations},
        sm_calls=sm_calls,
        db_connections=db_after["connections"] - db_before["connections"],
        failed_logins=db_after["failed_logins"] - db_before["failed_logins"],
        problems=problems,
    )


def _check(
    secret: DemoSecret,
    token: str,
    old_current: str | None,
    old_value: dict[str, Any],
    versions: dict[str, list[str]],
    current: dict[str, Any],
    previous: dict[str, Any] | None,
    cur: LabelState | None,
    prev: LabelState | None,
) -> list[str]:
    problems: list[str] = []
    if versions.get(token) != ["AWSCURRENT"]:
        problems.append(f"new version {token[:8]} has labels {versions.get(token)}, expected [AWSCURRENT]")
    if old_current is None or "AWSPREVIOUS" not in versions.get(old_current, []):
        problems.append("AWSPREVIOUS is not on the version that was AWSCURRENT before")
    if any("AWSPENDING" in labels for labels in versions.values()):
        problems.append("AWSPENDING is left on a version")
    if cur is None or prev is None or previous is None:
        return [*problems, "AWSCURRENT or AWSPREVIOUS is missing"]
    if current.get("password") in secret.seen_passwords:
        problems.append("AWSCURRENT has a password used before")
    if cur.login != "yes":
        problems.append(f"AWSCURRENT ({cur.user}) does not log in: {cur.login}")
    strip = ("username", "password")
    if {k: v for k, v in current.items() if k not in strip} != {
        k: v for k, v in old_value.items() if k not in strip
    }:
        problems.append("keys other than username/password changed")
    base, clone = secret.base_user, secret.base_user + "_clone"
    if secret.strategy == "single":
        if cur.user != base or prev.user != base:
            problems.append(f"user changed ({prev.user} -> {cur.user}), expected {base} throughout")
        if prev.login != "no":
            problems.append(f"AWSPREVIOUS still logs in ({prev.login}): single-user must retire it")
    else:
        if {cur.user, prev.user} != {base, clone}:
            problems.append(f"users are {prev.user} -> {cur.user}, expected {base} <-> {clone}")
        if old_value.get("username") == cur.user:
            problems.append(f"username did not alternate (still {cur.user})")
        if prev.login != "yes":
            problems.append(f"AWSPREVIOUS ({prev.user}) does not log in: {prev.login}")
    return problems


def moto_secret_strings() -> list[str]:
    """Every password stored in moto's Secrets Manager (for the leak scan)."""
    from moto.secretsmanager.models import secretsmanager_backends

    found: list[str] = []
    for account in secretsmanager_backends.values():
        for backend in account.values():
            for secret in backend.secrets.values():
                for version in secret.versions.values():
                    raw = version.get("secret_string")
                    try:
                        value = json.loads(raw) if raw else None
                    except ValueError:
                        continue
                    if isinstance(value, dict) and isinstance(value.get("password"), str):
                        found.append(value["password"])
    return found
