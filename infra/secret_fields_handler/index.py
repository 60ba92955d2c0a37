"""CloudFormation custom resource: puts a created secret's connection fields next to its password.

The stack never changes a created secret's ``GenerateSecretString`` (CloudFormation regenerates the
password whenever any of its properties changes, on an update and on its rollback alike): a secret
it creates generates ``{"password": ...}`` only, and one created by an earlier template keeps that
template's generator (``infra/created_secrets.py``). This function writes the non-secret fields into
the secret's current value, keeping the password and the user name:

* ``Fields`` (JSON object): set on every Create/Update: engine, host, port, dbname, masterarn.
* ``RemoveFields`` (JSON list): keys removed on every Create/Update (e.g. a dbname no longer given).
* ``SeedFields`` (JSON object): set only when the key is absent (``username``: the alternating
  strategy switches it to ``<user>_clone``, and a deploy must not reset it).
* ``Generator`` (string): the secret's ``GenerateSecretString`` settings, so that a deploy that
  changes them (and so regenerates the password) also sends this resource an Update.

**Never publish a password the database does not know, nor an older one.** Every write is staged
first (a new version labelled ``CONNECTIONFIELDS`` only), then AWSCURRENT is moved to it from the
exact version the value was computed from: UpdateSecretVersionStage fails when ``RemoveFromVersionId``
no longer holds the label (API reference, UpdateSecretVersionStage). A rotation that finished in
between makes the move fail; the value is then recomputed from the rotated version.

**A regenerated password is replaced by the one the database knows only right after a
regeneration** (which only a record that does not match the deployed stack can cause), i.e. on
exactly these requests (CloudFormation's documented request types and rollback order; see
docs/deploying.md and tests/infra/test_secret_fields_lifecycle.py):

* Create, when the stack switches an existing secret from an earlier template (which templated the
  fields into ``GenerateSecretString``) to this one: the secret update right before it put a
  password-only AWSCURRENT over a full AWSPREVIOUS with a user name, and no version of the secret
  was ever written by this resource (no ``CONNECTIONFIELDS`` label). The previous value's
  credentials are written back with the fields. The physical id records ``upgraded-from|<version>``,
  and the written version also carries ``CONNECTIONFIELDS_UPGRADE``: if the function dies after the
  write and before its answer reaches CloudFormation (a crash, a timeout), CloudFormation never
  learns that id and the rollback's Delete carries one CloudFormation generated; the label is how that
  Delete recognises the write. Its ClientRequestToken is derived from the stack, the resource, the
  source version and the value, so the same Create delivered again stages nothing new and finishes
  an interrupted write (the version with that very token does not count as "written by this
  resource"; any other ``CONNECTIONFIELDS`` version still rules the upgrade out).
* Delete of such a resource while the stack is ``UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS``
  (recognised by the physical id's mark, or by a ``CONNECTIONFIELDS_UPGRADE`` version created during
  this update): the failed upgrade was rolled back, the secret went back to the earlier template
  and so got yet another password; the credentials of the version it displaced (or of the recorded
  or labelled version) are written back under the earlier template's fields, and the
  ``CONNECTIONFIELDS`` and ``CONNECTIONFIELDS_UPGRADE`` labels are removed so that the upgrade,
  deployed again, is recognised again. A retried Delete changes nothing, and neither does one whose
  AWSCURRENT this resource wrote or that predates the update (``CreatedDate`` before the stack's
  ``LastUpdatedTime``).
* Update whose ``Generator`` differs from ``OldResourceProperties``' (forward or rollback) while
  AWSCURRENT holds exactly what that generator produces and was not written by this resource: the
  credentials of AWSPREVIOUS (the version the regeneration displaced) are written back. A retried
  Update after a rotation finds the rotation's full value and keeps it.

Every other request (a later deploy, a break-glass password stored alone) keeps the password.

**Rotations.** While a rotation is pending (AWSPENDING on another version) a field change waits for
it (bounded by the function's remaining time) and is then written on the rotated version. After a
write the secret is read again: if a rotation started from the value before the write, AWSCURRENT is
moved back to that value (the same password, the earlier fields) so the rotation's own steps stay
consistent, and the write is redone once it has finished. A forward Create/Update whose rotation
does not finish in time fails with that reason; a rollback Update (``UPDATE_ROLLBACK_IN_PROGRESS``)
never fails because of a pending rotation: it writes the fields and says so.

**Always answers.** Every AWS call has connect/read timeouts and at most two attempts, and no call
starts when less than ``RESERVE_SECONDS`` of the invocation remain (``get_remaining_time_in_millis``):
the answer to CloudFormation is sent before Lambda's timeout on every path.

Nothing secret is logged or returned. Runs on the Lambda Python runtime (boto3 included).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

FIELDS_LABEL = "CONNECTIONFIELDS"
UNDONE_LABEL = "CONNECTIONFIELDS_UPGRADE_UNDONE"
#: On the version the upgrade's Create stages: the rollback's Delete finds it without the physical id.
UPGRADE_LABEL = "CONNECTIONFIELDS_UPGRADE"
CREDENTIAL_KEYS = ("username", "password")
ROLLBACK_STATUS = "UPDATE_ROLLBACK_IN_PROGRESS"
ROLLBACK_CLEANUP_STATUS = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
UPGRADE_MARK = "|upgraded-from|"

#: One AWS call: 2 s to connect, 5 s to read, 2 attempts (botocore standard retry mode).
CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2}
)
#: Kept back from the invocation's remaining time: one AWS call at its worst (2 x (2 + 5) s plus the
#: retry's back-off) and the answer (2 tries x 5 s).
RESERVE_SECONDS = 26.0
#: Used without a Lambda context (tests, local runs).
DEFAULT_SECONDS = 60.0
POLL_SECONDS = 2.0
#: Longest wait for a pending rotation before a forward request fails (a rollback writes through).
WAIT_SECONDS = 40.0
MAX_WRITES = 6

_sleep: Callable[[float], None] = time.sleep
_monotonic: Callable[[], float] = time.monotonic


class FieldsError(Exception):
    """A problem this function reports as the custom resource's failure reason (never secret)."""


class OutOfTime(FieldsError):
    """Too little of the invocation is left to make another AWS call and still answer."""


def make_client(service: str) -> Any:
    return boto3.client(service, config=CLIENT_CONFIG)


class Deadline:
    def __init__(self, context: Any) -> None:
        get = getattr(context, "get_remaining_time_in_millis", None)
        remaining = get() / 1000 if callable(get) else DEFAULT_SECONDS
        self.end = _monotonic() + remaining - RESERVE_SECONDS

    def left(self) -> float:
        return self.end - _monotonic()

    def check(self) -> None:
        if self.left() <= 0:
            raise OutOfTime("the function ran out of time before the connection fields were written")


class Bounded:
    """A client whose every call first checks the deadline."""

    def __init__(self, client: Any, deadline: Deadline) -> None:
        self._client, self._deadline = client, deadline

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._deadline.check()
            return attr(*args, **kwargs)

        return call


@dataclass
class Spec:
    """What one request asks for (parsed and validated before anything is read or written)."""

    fields: dict[str, Any]
    remove: list[str]
    seed: dict[str, Any]
    generator: str | None

    @staticmethod
    def parse(props: dict[str, Any]) -> Spec:
        fields = _object(props.get("Fields", "{}"), "Fields")
        seed = _object(props.get("SeedFields", "{}"), "SeedFields")
        remove = _json(props.get("RemoveFields", "[]"), "RemoveFields")
        if not isinstance(remove, list) or not all(isinstance(k, str) for k in remove):
            raise FieldsError("RemoveFields is not a JSON list of names")
        if "password" in remove or "password" in fields or "password" in seed:
            raise FieldsError("the password is never written by this function")
        generator = props.get("Generator")
        return Spec(fields, remove, seed, generator if isinstance(generator, str) else None)

    def merge(self, data: dict[str, Any]) -> dict[str, Any]:
        merged = dict(data)
        merged.update(self.fields)
        for key in self.remove:
            merged.pop(key, None)
        for key, value in self.seed.items():
            merged.setdefault(key, value)
        return merged

    def managed(self, data: dict[str, Any] | None) -> dict[str, Any]:
        """The values of the keys this resource writes (what a rotation's pending copy must agree on)."""
        keys = sorted({*self.fields, *self.remove})
        return {k: (data or {}).get(k) for k in keys}


@dataclass
class Outcome:
    """What the handler reports; ``upgraded_from`` goes into a Create's physical id."""

    reason: str = ""
    upgraded_from: str | None = None
    notes: list[str] = field(default_factory=list)


class Secret:
    """The secret's versions and values, read through the bounded client."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self.client, self.id = client, secret_id

    def stages(self) -> dict[str, list[str]]:
        versions = self.client.describe_secret(SecretId=self.id).get("VersionIdsToStages", {})
        return {v: list(s) for v, s in versions.items() if s}

    def value(self, version: str) -> dict[str, Any] | None:
        """The version's JSON value; None while it has no value (a pending version being created)."""
        try:
            raw = self.client.get_secret_value(SecretId=self.id, VersionId=version).get("SecretString")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return None if raw is None else _secret_object(raw)

    def publish(
        self,
        value: dict[str, Any],
        expected: str,
        labels: tuple[str, ...] = (FIELDS_LABEL,),
        token: str | None = None,
    ) -> str | None:
        """Stage ``value`` (``labels`` only), then move AWSCURRENT to it from ``expected``.

        Returns the new version, or None when AWSCURRENT had left ``expected`` (nothing published).
        ``token``: the version's ClientRequestToken; the same token with the same value stages nothing
        new ("If a version with this value already exists and that version's SecretString or
        SecretBinary values are the same as those in the request then the request is ignored":
        https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html).
        """
        version = self.stage(value, labels, token)
        return version if self.move_current(version, expected) else None

    def stage(self, value: dict[str, Any], labels: tuple[str, ...], token: str | None = None) -> str:
        extra = {"ClientRequestToken": token} if token else {}
        return str(
            self.client.put_secret_value(
                SecretId=self.id, SecretString=json.dumps(value), VersionStages=list(labels), **extra
            )["VersionId"]
        )

    def move_current(self, to: str, expected: str) -> bool:
        try:
            self.client.update_secret_version_stage(
                SecretId=self.id, VersionStage="AWSCURRENT", MoveToVersionId=to, RemoveFromVersionId=expected
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidParameterException":
                return False  # AWSCURRENT is no longer on `expected`
            raise
        return True

    def remove_label(self, label: str, stages: dict[str, list[str]]) -> None:
        for version, labels in stages.items():
            if label in labels:
                self.client.update_secret_version_stage(
                    SecretId=self.id, VersionStage=label, RemoveFromVersionId=version
                )


def _with(stages: dict[str, list[str]], label: str) -> str | None:
    return next((v for v, labels in stages.items() if label in labels), None)


def _pending(stages: dict[str, list[str]]) -> str | None:
    return next(
        (v for v, labels in stages.items() if "AWSPENDING" in labels and "AWSCURRENT" not in labels), None
    )


def _current(secret: Secret) -> tuple[dict[str, list[str]], str, dict[str, Any]]:
    stages = secret.stages()
    current = _with(stages, "AWSCURRENT")
    if current is None:
        raise FieldsError("the secret has no AWSCURRENT version")
    value = secret.value(current)
    if value is None:
        raise FieldsError("the secret's current version has no value")
    return stages, current, value


def _credentials(source: dict[str, Any]) -> dict[str, Any]:
    return {k: source[k] for k in CREDENTIAL_KEYS if k in source}


# -- the requests ---------------------------------------------------------------------------------


def create(
    secret: Secret,
    spec: Spec,
    deadline: Deadline,
    outcome: Outcome,
    request_key: str,
    read_stack: Callable[[], dict[str, Any]],
) -> None:
    stages, _version, value = _current(secret)
    source = _upgrade_source(secret, stages, value, spec, request_key)
    if source is not None:
        outcome.upgraded_from = source

    def displaced(staged: str) -> None:
        """AWSCURRENT left the regenerated password while the upgrade's restore was staged. No rotation
        can finish from a password-only value, so the deploy is rolling back (CloudFormation cancels a
        running Create when another resource fails and regenerates the secret at once, possibly even
        deleting this resource before this write): undo here as the cleanup Delete would, since that
        Delete may already have found nothing to do. Otherwise fail: the deploy is retried."""
        stack = read_stack()
        if str(stack.get("StackStatus") or "").startswith("UPDATE_ROLLBACK"):
            undo_upgrade(secret, staged, outcome, stack.get("LastUpdatedTime"))
            outcome.reason = "the deploy is rolling back; " + outcome.reason.removeprefix("deleted: ")
            return
        raise FieldsError(
            "the secret's current version changed while the upgrade wrote the known password back; "
            "deploy again"
        )

    _write(
        secret,
        spec,
        deadline,
        outcome,
        rollback=False,
        restore_from=source,
        request_key=request_key,
        displaced=displaced,
    )


def _upgrade_token(request_key: str, source: str, value: dict[str, Any]) -> str:
    """The upgrade write's ClientRequestToken: the same Create (stack, resource, source version and
    value) always stages the same version, so a Create delivered again publishes it once."""
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"connection-fields|{request_key}|{source}|{digest}"))


def own_upgrade_write(secret: Secret, update_started: Any) -> str | None:
    """The version this resource's upgrade Create staged (``UPGRADE_LABEL``) during this update.

    Found on the secret, not in the physical id: a Create that died after its write never told
    CloudFormation its id. A labelled version created before the update (``CreatedDate`` before the
    stack's ``LastUpdatedTime``) is an earlier deploy's and is not this Delete's business."""
    try:
        version = _with(secret.stages(), UPGRADE_LABEL)
        if version is None:
            return None
        created = secret.client.get_secret_value(SecretId=secret.id, VersionId=version).get("CreatedDate")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None  # the secret (or the version) is gone: nothing of ours to undo
        raise
    if isinstance(created, dt.datetime) and isinstance(update_started, dt.datetime):
        if created < update_started - dt.timedelta(seconds=1):
            return None
    return version


def update(
    secret: Secret, spec: Spec, old: dict[str, Any], deadline: Deadline, outcome: Outcome, status: str | None
) -> None:
    old_generator = old.get("Generator")
    regenerated = (
        isinstance(old_generator, str) and spec.generator is not None and old_generator != spec.generator
    )
    restore_from = None
    if regenerated:
        stages, current, value = _current(secret)
        # Exactly what the generator now in effect produces (its template's keys and the password),
        # not written by this resource: a rotation's or our own later value is never replaced.
        if set(value) == _generated_keys(spec.generator) and FIELDS_LABEL not in stages[current]:
            restore_from = _with(stages, "AWSPREVIOUS")
    # A status we cannot read is treated as a rollback: a rollback must never fail on a rotation.
    rollback = status is None or status == ROLLBACK_STATUS
    _write(secret, spec, deadline, outcome, rollback=rollback, restore_from=restore_from)


def _generated_keys(generator: str | None) -> set[str] | None:
    """The keys of a value ``GenerateSecretString`` with these settings produces (None: unreadable)."""
    try:
        settings = json.loads(generator or "")
        template = json.loads(settings.get("SecretStringTemplate", "{}"))
        return {*template, settings.get("GenerateStringKey", "password")}
    except (ValueError, AttributeError, TypeError):
        return None


def undo_upgrade(secret: Secret, upgraded_from: str, outcome: Outcome, update_started: Any) -> None:
    """The failed upgrade deploy was rolled back: the secret has the earlier template again, with a
    password generated by that rollback. Write back the credentials the database knows.

    Only over a version created during this update (``CreatedDate`` not before the stack's
    ``LastUpdatedTime``): a value that predates it was not generated by this rollback."""
    stages, current, value = _current(secret)
    labels = stages[current]
    created = secret.client.get_secret_value(SecretId=secret.id, VersionId=current).get("CreatedDate")
    if isinstance(created, dt.datetime) and isinstance(update_started, dt.datetime):
        if created < update_started - dt.timedelta(seconds=1):
            outcome.reason = "deleted: the current version predates this update; nothing to undo"
            return
    if UNDONE_LABEL in labels:
        outcome.reason = "deleted: the upgrade was already undone"
        return
    if FIELDS_LABEL in labels:
        outcome.reason = "deleted: nothing regenerated the password since this resource wrote it"
        return
    previous = _with(stages, "AWSPREVIOUS")
    source_value = secret.value(previous) if previous is not None else None
    if source_value is None or set(source_value) == {"password"}:
        # The upgrade's Create never wrote: the known password is on the recorded version.
        source_value = secret.value(upgraded_from)
    if source_value is None or not isinstance(source_value.get("username"), str):
        raise FieldsError("the version holding the password the database knows could not be read")
    fields = (
        {k: v for k, v in value.items() if k not in CREDENTIAL_KEYS} if set(value) != {"password"} else {}
    )
    restored = {**source_value, **fields, **_credentials(source_value)}
    if secret.publish(restored, current, labels=(UNDONE_LABEL,)) is None:
        raise FieldsError(
            "the secret changed while the rolled-back upgrade was undone; CloudFormation retries"
        )
    stages = secret.stages()
    secret.remove_label(FIELDS_LABEL, stages)
    secret.remove_label(UPGRADE_LABEL, stages)
    outcome.reason = "deleted: restored the password the database knows after the rolled-back upgrade"


def delete(
    secret: Secret, physical_id: str, stack_id: str | None, deadline: Deadline, outcome: Outcome
) -> None:
    """Undo a rolled-back upgrade (module docstring); any other Delete leaves the secret alone.

    The upgrade is recognised by the physical id's mark or, when the Create never answered (a crash
    or timeout after its write: CloudFormation then sends an id it generated itself), by the version
    the Create labelled ``UPGRADE_LABEL`` during this update."""
    marked = UPGRADE_MARK in physical_id
    stack = _stack(Bounded(make_client("cloudformation"), deadline), stack_id)
    if stack.get("StackStatus") == ROLLBACK_CLEANUP_STATUS:
        started = stack.get("LastUpdatedTime")
        upgraded_from = physical_id.rsplit("|", 1)[-1] if marked else own_upgrade_write(secret, started)
        if upgraded_from is not None:
            undo_upgrade(secret, upgraded_from, outcome, started)
    elif not stack and (marked or own_upgrade_write(secret, None) is not None):
        raise FieldsError("the stack's status could not be read (cloudformation:DescribeStacks)")


def _upgrade_source(
    secret: Secret, stages: dict[str, list[str]], value: dict[str, Any], spec: Spec, request_key: str
) -> str | None:
    """The AWSPREVIOUS version to restore on the upgrade deploy (module docstring), else None.

    A version this resource wrote rules the upgrade out, except the very version this Create stages
    (same ClientRequestToken: the same request, which died before moving AWSCURRENT to it), so the
    same Create delivered again finishes it."""
    if set(value) != {"password"}:
        return None
    previous = _with(stages, "AWSPREVIOUS")
    if previous is None:
        return None  # a secret created by this deploy
    try:
        previous_value = secret.value(previous)
    except FieldsError:
        return None
    if previous_value is None or not isinstance(previous_value.get("username"), str):
        return None
    own = _upgrade_token(request_key, previous, spec.merge(previous_value))
    if any(FIELDS_LABEL in labels and version != own for version, labels in stages.items()):
        return None
    return previous


def _write(
    secret: Secret,
    spec: Spec,
    deadline: Deadline,
    outcome: Outcome,
    *,
    rollback: bool,
    restore_from: str | None,
    request_key: str = "",
    displaced: Callable[[str], None] | None = None,
) -> None:
    """The merge loop: restore if asked, then write the fields; re-read after every write.

    ``displaced`` (the upgrade's Create only) is called with the staged restore when AWSCURRENT moved
    before it could be published; without it the fields are written on whatever AWSCURRENT became."""
    written: tuple[str, str] | None = None  # (our version, the version it displaced)
    waited_until = _monotonic() + min(WAIT_SECONDS, max(deadline.left(), 0))
    write_through = False
    restored = changed = False
    writes = 0
    while writes <= MAX_WRITES:  # waiting rounds end with the deadline, writing rounds here
        stages, current, value = _current(secret)
        if restore_from is not None:
            source = secret.value(restore_from)
            if source is None:
                raise FieldsError("the previous version of the secret has no value")
            restored_value = spec.merge(source)
            upgrade = displaced is not None  # the upgrade's Create (an Update's restore is not labelled)
            staged = secret.stage(
                restored_value,
                (FIELDS_LABEL, UPGRADE_LABEL) if upgrade else (FIELDS_LABEL,),
                _upgrade_token(request_key, restore_from, restored_value) if upgrade else None,
            )
            writes += 1
            restore_from = None  # once
            if secret.move_current(staged, current):
                written, restored = None, True  # never moved back: the displaced password is unknown
                changed = True
            elif displaced is not None:
                displaced(staged)
                return
            continue
        desired = spec.merge(value)
        pending = _pending(stages)
        pending_value = secret.value(pending) if pending is not None else None
        consistent = pending is None or (
            pending_value is not None and spec.managed(pending_value) == spec.managed(value)
        )
        if desired == value:
            ours = written is not None and written[0] == current
            if consistent or not ours or write_through:
                outcome.reason = _done(restored, changed, outcome)
                return
            if pending_value is not None:
                # A rotation started from the value before our write: give it back that value (the
                # same password, the earlier fields) and write again once the rotation is done.
                secret.move_current(written[1], current)
                writes += 1
                written = None
                continue
        elif pending is None or write_through:
            version = secret.publish(desired, current)
            writes += 1
            if version is not None:
                written, changed = (version, current), True
            continue
        # A rotation is pending: wait for it (bounded), then write on its result.
        if _monotonic() < waited_until and deadline.left() > POLL_SECONDS:
            _sleep(POLL_SECONDS)
            continue
        if not rollback:
            raise FieldsError(
                "a rotation of the secret is in progress (AWSPENDING is on another version) and did not "
                "finish in time; deploy again after it completes"
            )
        write_through = True
        outcome.notes.append("written while a rotation was pending (AWSPENDING on another version)")
    raise FieldsError(
        f"the secret kept changing while its connection fields were written ({MAX_WRITES} writes)"
    )


def _done(restored: bool, changed: bool, outcome: Outcome) -> str:
    reason = "updated" if changed else "unchanged"
    if restored:
        reason = "restored the password the database knows; " + reason
    return "; ".join([reason, *outcome.notes])


# -- plumbing -------------------------------------------------------------------------------------


def _json(raw: Any, name: str) -> Any:
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise FieldsError(f"{name} is not JSON") from None


def _object(raw: Any, name: str) -> dict[str, Any]:
    value = _json(raw, name)
    if not isinstance(value, dict):
        raise FieldsError(f"{name} is not a JSON object")
    return value


def _secret_object(value: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except ValueError:
        data = None  # the decoder's message could quote the value: never pass it on
    if not isinstance(data, dict):
        raise FieldsError("the secret's current value is not a JSON object")
    if "password" not in data:
        raise FieldsError("the secret's current value has no password")
    return data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FieldsError):
        return str(exc)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name} failed: {error.get('Code', 'error')}"
    return f"unexpected {type(exc).__name__}"


def _stack(cloudformation: Any, stack_id: str | None) -> dict[str, Any]:
    """The stack as DescribeStacks shows it (its own stack only); {} when it cannot be read."""
    if not stack_id:
        return {}
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_id).get("Stacks", [])
    except Exception:  # a refusal, a network error, no time left: the caller takes the safe side
        return {}
    return dict(stacks[0]) if stacks else {}


def _send(url: str, body: bytes) -> None:
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's pre-signed https URL
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        response.read()


def handler(
    event: dict[str, Any],
    context: Any,
    client: Any = None,
    send: Callable[[str, bytes], None] = _send,
) -> dict[str, Any]:
    deadline = Deadline(context)
    props = event.get("ResourceProperties", {})
    request_type = event.get("RequestType")
    base_id = f"{props.get('SecretId', 'secret')}|connection-fields"
    physical_id = event.get("PhysicalResourceId") or base_id
    outcome = Outcome(reason="deleted: the secret is retained")
    status = "SUCCESS"
    try:
        secret = Secret(
            Bounded(client or make_client("secretsmanager"), deadline), str(props.get("SecretId"))
        )
        if request_type == "Create":
            request_key = f"{event.get('StackId')}|{event.get('LogicalResourceId')}"
            create(
                secret,
                Spec.parse(props),
                deadline,
                outcome,
                request_key,
                lambda: _stack(Bounded(make_client("cloudformation"), deadline), event.get("StackId")),
            )
        elif request_type == "Update":
            spec = Spec.parse(props)
            stack = _stack(Bounded(make_client("cloudformation"), deadline), event.get("StackId"))
            update(
                secret,
                spec,
                event.get("OldResourceProperties") or {},
                deadline,
                outcome,
                stack.get("StackStatus"),
            )
        elif request_type == "Delete":
            delete(secret, physical_id, event.get("StackId"), deadline, outcome)
    except Exception as exc:
        status, outcome.reason = "FAILED", _reason(exc)
    if request_type == "Create":
        physical_id = base_id + (f"{UPGRADE_MARK}{outcome.upgraded_from}" if outcome.upgraded_from else "")
    response = {
        "Status": status,
        "Reason": outcome.reason,
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "Data": {},
    }
    print(json.dumps({"requestType": request_type, "status": status, "reason": outcome.reason}))
    for attempt in range(2):
        try:
            send(event["ResponseURL"], json.dumps(response).encode())
            break
        except Exception as exc:  # one more try, then the log says why
            print(
                json.dumps(
                    {"requestType": request_type, "responseNotSent": type(exc).__name__, "try": attempt}
                )
            )
    return response
