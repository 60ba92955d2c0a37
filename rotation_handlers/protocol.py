"""The four-step Secrets Manager rotation protocol.

createSecret -> setSecret -> testSecret -> finishSecret, each safe to run again
after a crash at any point. The protocol handles Secrets Manager (gate, versions,
labels); the strategy and the engine handle the database.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .engines import Engine, engine_for
from .engines import base as engine_base
from .errors import DatabaseError, InvalidEventError, InvalidSecretError, RotationError, RotationStateError
from .logs import get_logger, log, redact
from .metrics import emit_rotation_step
from .passwords import PasswordPolicy
from .secret import DbSecret, parse_secret
from .secrets_manager import VERSION_CACHE, SecretMetadata, SecretsManager
from .strategies import StepContext, Strategy, choose

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
#: The most earlier versions one step reads when a strategy looks through the secret's history.
HISTORY_READS = 4
#: finishSecret's outcome when it moved AWSCURRENT: the one step that completes a rotation.
ROTATED = "AWSCURRENT moved to the new version"
logger = get_logger("rotation")


@dataclass(frozen=True)
class RotationEvent:
    secret_id: str
    token: str
    step: str
    rotation_token: str | None = None

    @classmethod
    def parse(cls, event: Any) -> RotationEvent:
        if not isinstance(event, dict):
            raise InvalidEventError(
                f"invalid rotation event: expected a JSON object, got {type(event).__name__}"
            )
        problems = []
        for key in ("SecretId", "ClientRequestToken", "Step"):
            value = event.get(key)
            if value is None:
                problems.append(f"missing '{key}'")
            elif not isinstance(value, str) or not value.strip():
                problems.append(f"'{key}' must be a non-empty string")
        step = event.get("Step")
        if isinstance(step, str) and step and step not in STEPS:
            problems.append(f"unknown Step {step!r} (expected one of {', '.join(STEPS)})")
        token = event.get("ClientRequestToken")
        if isinstance(token, str) and token and not 32 <= len(token) <= 64:
            problems.append("'ClientRequestToken' must be 32 to 64 characters long")
        rotation_token = event.get("RotationToken")
        if rotation_token is not None and not isinstance(rotation_token, str):
            problems.append("'RotationToken' must be a string")
        if problems:
            raise InvalidEventError("invalid rotation event: " + "; ".join(problems))
        return cls(event["SecretId"], event["ClientRequestToken"], event["Step"], rotation_token or None)


class Rotation:
    """One invocation: one step for one secret version."""

    def __init__(self, event: RotationEvent, sm: SecretsManager | None = None) -> None:
        self.event = event
        self.sm = sm or SecretsManager(event.secret_id)
        self.facts: dict[str, Any] = {}
        self.engine: Engine | None = None  # set once the step knows the secret's engine

    # -- gate ---------------------------------------------------------------------------------
    def gate(self) -> tuple[SecretMetadata, bool]:
        """Check the secret and token; True when the token is already AWSCURRENT (nothing to do)."""
        meta = self.sm.describe()
        token = self.event.token
        if not meta.rotation_enabled:
            raise RotationStateError(f"rotation is not enabled for secret {meta.arn}")
        if token not in meta.versions:
            raise RotationStateError(f"ClientRequestToken {token} is not a version of secret {meta.arn}")
        stages = meta.versions[token]
        if "AWSCURRENT" in stages:
            return meta, True
        if "AWSPENDING" not in stages:
            raise RotationStateError(
                f"version {token} of secret {meta.arn} is not AWSPENDING (its labels: {stages or 'none'})"
            )
        return meta, False

    # -- loaders ------------------------------------------------------------------------------
    def _load(self, meta: SecretMetadata, stage: str) -> DbSecret:
        """The parsed value of the version with ``stage`` (AWSPENDING: the token's version)."""
        version = self.event.token if stage == "AWSPENDING" else meta.version_with(stage)
        if version is None:
            raise RotationStateError(f"secret {meta.arn} has no {stage} version")
        value = self.sm.get_value(version, stage)
        if value is None:
            hint = " (createSecret has not stored it yet)" if stage == "AWSPENDING" else ""
            raise RotationStateError(f"the {stage} version {version} of {meta.arn} has no value{hint}")
        return parse_secret(value, stage)

    def _context(self, meta: SecretMetadata, current: DbSecret) -> StepContext:
        self.engine = engine_for(current.engine)

        def load_previous() -> DbSecret | None:
            """AWSPREVIOUS, or None when there is none or it is unusable (only a fallback)."""
            try:
                return self._load(meta, "AWSPREVIOUS")
            except (RotationStateError, InvalidSecretError):
                return None

        return StepContext(
            meta.arn,
            self.event.token,
            self.engine,
            load_previous,
            self.sm.get_current,
            self.facts,
            lambda: self._history(meta),
        )

    def _history(self, meta: SecretMetadata) -> Iterator[tuple[str, DbSecret]]:
        """(label, parsed value) of this secret's earlier versions, read one by one as the caller
        asks: AWSPREVIOUS first, then versions with other staging labels; never AWSCURRENT, an
        AWSPENDING version or this rotation's token. DescribeSecret lists only versions that have
        a staging label ("VersionIdsToStages", https://docs.aws.amazon.com/secretsmanager/latest/
        apireference/API_DescribeSecret.html); a version whose value does not parse is skipped."""
        skip = {"AWSCURRENT", "AWSPENDING"}
        versions = [
            (version, labels)
            for version, labels in meta.versions.items()
            if labels and version != self.event.token and not skip & set(labels)
        ]
        versions.sort(key=lambda item: "AWSPREVIOUS" not in item[1])
        for version, labels in versions[:HISTORY_READS]:
            label = "AWSPREVIOUS" if "AWSPREVIOUS" in labels else labels[0]
            raw = self.sm.get_value(version, label)
            if raw is None:
                continue
            try:
                yield label, parse_secret(raw, label)
            except InvalidSecretError:
                continue

    # -- steps --------------------------------------------------------------------------------
    def run(self) -> str:
        meta, already_current = self.gate()
        if already_current:
            if self.event.step == "finishSecret" and "AWSPENDING" in meta.versions[self.event.token]:
                self.sm.move_stage("AWSPENDING", None, self.event.token)
                return "already current; removed AWSPENDING"
            return "already current; nothing to do"
        return getattr(self, "_" + self.event.step)(meta)

    def _strategy(self, current: DbSecret) -> Strategy:
        strategy = choose(current)
        self.facts["strategy"] = strategy.name
        self.facts["engine"] = current.engine
        return strategy

    def _check_configuration(
        self, meta: SecretMetadata, current: DbSecret
    ) -> tuple[Strategy, StepContext, PasswordPolicy]:
        """Everything a rotation depends on, checked without writing anything or logging in:
        the current secret, the strategy (and its pin), the password policy, the CA bundle,
        the connect timeout and the strategy's own checks (the master secret)."""
        strategy = self._strategy(current)
        ctx = self._context(meta, current)
        policy = PasswordPolicy.from_env(ctx.engine.default_exclude_characters)
        engine_base.ca_bundle()
        engine_base.connect_timeout()
        strategy.validate(ctx, current)
        return strategy, ctx, policy

    def _createSecret(self, meta: SecretMetadata) -> str:
        if self.sm.get_value(self.event.token, "AWSPENDING") is not None:
            return "pending version already has a value"
        current = self._load(meta, "AWSCURRENT")
        # Everything a later step depends on is checked now, before anything is written.
        strategy, ctx, policy = self._check_configuration(meta, current)
        pending = strategy.pending_from(ctx, current, policy.generate())
        stored = self.sm.put_pending(self.event.token, pending.to_json(), self.event.rotation_token)
        return "pending version created" if stored else "pending version already stored by another attempt"

    def _setSecret(self, meta: SecretMetadata) -> str:
        current = self._load(meta, "AWSCURRENT")
        pending = self._load(meta, "AWSPENDING")
        strategy = self._strategy(current)
        ctx = self._context(meta, current)
        strategy.set_secret(ctx, current, pending)
        return str(self.facts.pop("outcome", "pending credentials set"))

    def _testSecret(self, meta: SecretMetadata) -> str:
        raw = self.sm.get_value(self.event.token, "AWSPENDING")
        if raw is None or _same_json(raw, self._current_string(meta)):
            return self._configuration_test(meta, "no value" if raw is None else "a copy of AWSCURRENT")
        pending = parse_secret(raw, "AWSPENDING")
        strategy = self._strategy(pending)
        ctx = self._context(meta, pending)
        strategy.test_secret(ctx, pending)
        # finishSecret reports the strategy and engine (log line, metric dimensions) without a read.
        proven = {k: self.facts[k] for k in ("strategy", "engine")}
        VERSION_CACHE.mark_tested(meta.arn, self.event.token, proven)
        return "pending credentials work"

    def _current_string(self, meta: SecretMetadata) -> str | None:
        version = meta.version_with("AWSCURRENT")
        return None if version is None else self.sm.get_value(version, "AWSCURRENT")

    def _configuration_test(self, meta: SecretMetadata, pending_shape: str) -> str:
        """The deploy-time test (RotateSecret with RotateImmediately=false).

        Secrets Manager then invokes only testSecret, on a fresh AWSPENDING version that it
        removes afterwards (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html);
        the documentation does not say whether that version holds a value. A pending version
        our createSecret wrote always has a new password, so one with no value or with exactly
        AWSCURRENT's value can only be this test. It checks what createSecret checks and logs in
        to nothing: a secret created with the stack may have no database user yet, and a
        rejected login would count as a failed login on the server.
        """
        current = self._load(meta, "AWSCURRENT")
        self._check_configuration(meta, current)
        self.facts.update(
            configuration_test=True, pending_version=pending_shape, database_login="not attempted"
        )
        return (
            f"configuration test passed (testSecret on a pending version with {pending_shape}): "
            "current secret, password policy, CA bundle, connect timeout and strategy are valid"
        )

    def _finishSecret(self, meta: SecretMetadata) -> str:
        token = self.event.token
        proven = VERSION_CACHE.tested(meta.arn, token)
        if proven is None:
            self._prove_pending(meta)
        else:
            self.facts.update(proven)
        current_version = meta.version_with("AWSCURRENT")
        # Move AWSCURRENT first (the old version gets AWSPREVIOUS), then drop AWSPENDING from
        # the new version: a crash in between leaves a state the gate's "already current" path
        # finishes, and no AWSPENDING is ever left on a version other than AWSCURRENT.
        self.sm.move_stage("AWSCURRENT", token, current_version)
        self.sm.move_stage("AWSPENDING", None, token)
        return ROTATED

    def _prove_pending(self, meta: SecretMetadata) -> None:
        """AWSCURRENT only moves onto credentials that passed testSecret's check.

        The container that ran testSecret remembers it (no extra call or login). Any other
        finishSecret (a new container, a late or hand-made invocation, one after the deploy-time
        test) runs that check itself first; a version with no value is refused outright.
        """
        token = self.event.token
        raw = self.sm.get_value(token, "AWSPENDING")
        if raw is None:
            raise RotationStateError(
                f"the AWSPENDING version {token} of {meta.arn} has no value, so AWSCURRENT was not "
                "moved (a pending version without a value is the deploy-time configuration test, "
                "or createSecret has not run)"
            )
        pending = parse_secret(raw, "AWSPENDING")
        strategy = self._strategy(pending)
        try:
            strategy.test_secret(self._context(meta, pending), pending)
        except DatabaseError as exc:
            raise type(exc)(
                f"AWSCURRENT was not moved: no testSecret of version {token} succeeded in this "
                f"container, and its check fails now: {exc}",
                exc.detail,
            ) from None
        self.facts["pending_tested_in"] = "finishSecret"


def _same_json(a: str, b: str | None) -> bool:
    """The same secret value, byte for byte or as JSON (a copy may be re-serialised)."""
    if b is None:
        return False
    if a == b:
        return True
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


def handle(raw_event: Any) -> dict[str, Any]:
    """Run one rotation step; log one structured line; raise a redacted error on failure."""
    started = time.monotonic()
    fields: dict[str, Any] = {}
    if isinstance(raw_event, dict):
        fields = {
            "secret_id": str(raw_event.get("SecretId"))[:2048],
            "step": str(raw_event.get("Step"))[:64],
            "token": str(raw_event.get("ClientRequestToken"))[:64],
        }
    rotation: Rotation | None = None
    try:
        event = RotationEvent.parse(raw_event)
        rotation = Rotation(event)
        outcome = rotation.run()
    except RotationError as exc:
        _log_end(
            rotation, fields, started, "failed", logging.ERROR, error=str(exc), error_type=type(exc).__name__
        )
        raise
    except Exception as exc:
        message = redact(f"unexpected {type(exc).__name__}: {exc}")
        _log_end(
            rotation, fields, started, "failed", logging.ERROR, error=message, error_type=type(exc).__name__
        )
        raise RotationError(message) from None
    _log_end(rotation, fields, started, "ok", logging.INFO, result=outcome)
    return {"step": fields.get("step"), "outcome": outcome}


def _log_end(
    rotation: Rotation | None, fields: dict[str, Any], started: float, status: str, level: int, **extra: Any
) -> None:
    if rotation is not None:
        fields["secret_arn"] = rotation.sm.arn
        fields.update(rotation.facts)
        engine = rotation.engine
        if engine is not None:
            fields["db_connections"] = engine.attempts
            fields["db_logins_rejected"] = engine.rejected
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    message = f"{fields.get('step')} {status}"
    log(logger, message, level, status=status, duration_ms=duration_ms, **fields, **extra)
    step = fields.get("step")
    emit_rotation_step(
        step if step in STEPS else "invalid",
        status,
        duration_ms,
        ended=status == "failed" or (step == "finishSecret" and extra.get("result") == ROTATED),
        strategy=fields.get("strategy"),
        engine=fields.get("engine"),
        connections=fields.get("db_connections", 0),
        failed_logins=fields.get("db_logins_rejected", 0),
    )
