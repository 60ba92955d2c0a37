"""Parameter Store logic for ``secretsctl param``: reading in batches, plan, apply, history, diff.

Nothing here prints; the commands render what these functions return. Values are kept in
fields excluded from ``repr`` and never put into messages.

Request budget. Parameter Store throttles per account and region; by default GetParameter,
GetParameters and GetParametersByPath share 40 transactions per second
(https://docs.aws.amazon.com/general/latest/gr/ssm.html, "Max throughput (transactions per
second)"; https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-throughput.html),
and the applications that read their configuration use the same quota. DescribeParameters and
the tag and history APIs have lower, unpublished limits. Every SSM call this module makes goes
through one token bucket (default 10 requests per second, bursts of 10), a quarter of the
shared read quota, so a ``plan`` over 2,000 parameters (about 40 DescribeParameters pages +
200 GetParameters calls of 10 names) takes about 25 s and leaves applications their headroom;
botocore's retry of ``ThrottlingException`` remains the backstop.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from rotation_handlers.logs import redact
from rotation_handlers.replication.budget import TokenBucket
from rotation_handlers.replication.sync import key_matches
from secretsctl.desired_state import DesiredParameter, DesiredState

DEFAULT_RATE = 10.0
DEFAULT_BURST = 10
GET_BATCH = 10  # GetParameters takes at most 10 names
DESCRIBE_BATCH = 50  # DescribeParameters: MaxResults 50, at most 50 filter values
#: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html (Errors):
#: "Parameter Store doesn't support changing a parameter type in a hierarchy" (moto allows it).
TYPE_CHANGE = (
    "type: Parameter Store cannot change a parameter's type ({old} -> {new}, "
    "HierarchyTypeMismatchException); apply refuses: `secretsctl param delete {name}`, then apply again "
    "to create it"
)
PUT_FIELDS = ("type", "value", "description", "allowed_pattern", "data_type", "tier", "kms_key")


class ParamError(RuntimeError):
    """A clear, value-free error for the operator."""


class ConcurrentChangeError(ParamError):
    """A parameter changed between the plan and the write; nothing was written for it."""


class RequestBudget:
    """The replicator's token bucket, shared by every call of the clients it is attached to; counts calls."""

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("the request rate must be > 0 and the burst >= 1")
        self.rate, self.burst = rate, float(burst)
        self._sleep = sleep
        self._bucket = TokenBucket(rate, float(burst), clock=clock, sleep=self._wait)
        self.calls: Counter[str] = Counter()
        self.waits = 0

    def _wait(self, seconds: float) -> None:
        self.waits += 1
        self._sleep(seconds)

    def acquire(self) -> None:
        self._bucket.take()

    def _before_call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        self.acquire()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.*.*", self._before_call)
        return client

    def report(self) -> dict[str, Any]:
        return {"total": sum(self.calls.values()), "byOperation": dict(sorted(self.calls.items()))}


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Current:
    """A parameter as Parameter Store holds it now; ``repr`` never shows the value."""

    name: str
    type: str
    version: int
    value: str | None = field(default=None, repr=False)
    tier: str = "Standard"
    description: str = ""
    allowed_pattern: str = ""
    data_type: str = "text"
    key_id: str | None = None
    last_modified: datetime | None = None
    last_modified_user: str = ""
    tags: Mapping[str, str] | None = None  # None: not read


def _from_describe(item: Mapping[str, Any]) -> Current:
    return Current(
        name=item["Name"],
        type=item["Type"],
        version=int(item.get("Version", 0)),
        tier=item.get("Tier") or "Standard",
        description=item.get("Description") or "",
        allowed_pattern=item.get("AllowedPattern") or "",
        data_type=item.get("DataType") or "text",
        key_id=item.get("KeyId") if item["Type"] == "SecureString" else None,
        last_modified=item.get("LastModifiedDate"),
        last_modified_user=item.get("LastModifiedUser") or "",
    )


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def describe(ssm: Any, filters: list[dict[str, Any]]) -> Iterator[Current]:
    """DescribeParameters, all pages (AWS may return empty pages with a NextToken)."""
    kwargs: dict[str, Any] = {"MaxResults": DESCRIBE_BATCH}
    if filters:
        kwargs["ParameterFilters"] = filters
    while True:
        page = ssm.describe_parameters(**kwargs)
        for item in page.get("Parameters") or []:
            yield _from_describe(item)
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def _path_filter(path: str, recursive: bool = True) -> dict[str, Any]:
    value = path.rstrip("/") or "/"
    return {"Key": "Path", "Option": "Recursive" if recursive else "OneLevel", "Values": [value]}


def describe_names(ssm: Any, names: Iterable[str]) -> dict[str, Current]:
    """Metadata of the named parameters that exist (50 names per DescribeParameters call)."""
    out: dict[str, Current] = {}
    for chunk in _chunks(sorted(set(names)), DESCRIBE_BATCH):
        for item in describe(ssm, [{"Key": "Name", "Option": "Equals", "Values": chunk}]):
            out[item.name] = item
    return out


def read_values(ssm: Any, names: Iterable[str]) -> dict[str, tuple[str, int]]:
    """Decrypted value and version of each existing name, 10 names per GetParameters call."""
    out: dict[str, tuple[str, int]] = {}
    for chunk in _chunks(sorted(set(names)), GET_BATCH):
        response = ssm.get_parameters(Names=chunk, WithDecryption=True)
        for item in response.get("Parameters") or []:
            out[item["Name"]] = (item["Value"], int(item["Version"]))
    return out


def read_tags(ssm: Any, name: str) -> dict[str, str]:
    """Tags of one parameter (no SSM API returns tags in bulk)."""
    response = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)
    return {t["Key"]: t["Value"] for t in response.get("TagList") or []}


def read_state(ssm: Any, desired: DesiredState) -> tuple[dict[str, Current], dict[str, Current]]:
    """Current state of every declared parameter, and of every parameter under the declared paths.

    Returns ``(current, listed)``: ``current`` maps each existing declared parameter to its state
    (with value, and tags where the file manages them); ``listed`` holds the metadata of every
    parameter under the file's paths (the candidates for ``--prune``), without values.
    """
    listed: dict[str, Current] = {}
    for path in desired.paths:
        for item in describe(ssm, [_path_filter(path)]):
            if desired.prunable(item.name):
                listed[item.name] = item
    described = dict(listed)
    outside = [n for n in desired.parameters if n not in described and not desired.prunable(n)]
    described.update(describe_names(ssm, outside))

    existing = [n for n in desired.parameters if n in described]
    values = read_values(ssm, existing)
    current: dict[str, Current] = {}
    for name in existing:
        if name not in values:  # deleted between the two reads
            continue
        value, version = values[name]
        tags = read_tags(ssm, name) if desired.parameters[name].tags is not None else None
        current[name] = replace(described[name], value=value, version=version, tags=tags)
    return current, listed


# -- plan --------------------------------------------------------------------------------------

Action = Literal["create", "modify", "unchanged", "delete"]
SYMBOL: dict[str, str] = {"create": "+", "modify": "~", "unchanged": "=", "delete": "-"}


@dataclass(frozen=True)
class Change:
    name: str
    action: Action
    fields: tuple[str, ...] = ()
    type: str = ""
    version: int | None = None  # the version the plan saw (None: absent)
    warnings: tuple[str, ...] = ()
    desired: DesiredParameter | None = field(default=None, repr=False)
    current: Current | None = field(default=None, repr=False)

    @property
    def tag_changes(self) -> dict[str, list[str]]:
        """The tag keys apply adds, changes and removes (tags are not secret; keys are shown)."""
        if "tags" not in self.fields or self.desired is None or self.desired.tags is None:
            return {}
        want = dict(self.desired.tags)
        have = dict(self.current.tags or {}) if self.current is not None else {}
        return {
            "add": sorted(k for k in want if k not in have),
            "change": sorted(k for k in want if k in have and have[k] != want[k]),
            "remove": sorted(k for k in have if k not in want),
        }

    def line(self) -> str:
        text = f"{SYMBOL[self.action]} {self.action:<9} {self.name}"
        if self.action == "create":
            text += f" ({self.type})"
        elif self.action == "modify":
            text += f" ({', '.join(self.fields)})"
            tags = self.tag_changes
            parts = [
                f"{sign}{k}"
                for sign, kind in (("+", "add"), ("~", "change"), ("-", "remove"))
                for k in tags.get(kind, [])
            ]
            if parts:
                text += f" tags: {' '.join(parts)}"
        return text

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "action": self.action, "type": self.type}
        if self.fields:
            out["fields"] = list(self.fields)
        if self.version is not None:
            out["version"] = self.version
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.tag_changes:
            out["tags"] = self.tag_changes
        return out


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    prune: bool
    unlisted: tuple[str, ...] = ()  # under the file's paths but not in the file

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    @property
    def blocked(self) -> list[Change]:
        """Changes Parameter Store would refuse (a type change); ``apply`` writes nothing while any exist."""
        return [c for c in self.changes if c.action == "modify" and "type" in c.fields]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SYMBOL, 0)
        counts.update(Counter(c.action for c in self.changes))
        return counts


def effective_tier(desired: str | None, current: str | None) -> str | None:
    """The tier to write: Parameter Store cannot move an Advanced parameter back to Standard."""
    if current == "Advanced" and desired in (None, "Standard"):
        return "Advanced"
    return desired or current


def compare(desired: DesiredParameter, current: Current) -> tuple[list[str], list[str]]:
    """Fields that differ (value compared, never shown) and warnings."""
    fields: list[str] = []
    warnings: list[str] = []
    if desired.type != current.type:
        fields.append("type")
        warnings.append(TYPE_CHANGE.format(old=current.type, new=desired.type, name=current.name))
    if desired.value != current.value:
        fields.append("value")
    if desired.description is not None and desired.description != current.description:
        fields.append("description")
    if desired.allowed_pattern is not None and desired.allowed_pattern != current.allowed_pattern:
        fields.append("allowed_pattern")
    if desired.data_type is not None and desired.data_type != current.data_type:
        fields.append("data_type")
    if desired.tier == "Advanced" and current.tier != "Advanced":
        fields.append("tier")
    elif desired.tier == "Standard" and current.tier == "Advanced":
        warnings.append(
            "tier: the parameter is Advanced and Parameter Store cannot change it back to Standard; "
            "it stays Advanced (delete and recreate it to make it Standard)"
        )
    if desired.kms_key is not None and not key_matches(current.key_id, desired.kms_key):
        fields.append("kms_key")
    if desired.tags is not None and dict(desired.tags) != dict(current.tags or {}):
        fields.append("tags")
    return fields, warnings


def make_plan(
    desired: DesiredState, current: Mapping[str, Current], listed: Mapping[str, Current], prune: bool
) -> Plan:
    """Compare (pure): one change per declared parameter, plus deletes under the paths with ``prune``."""
    changes: list[Change] = []
    for name, spec in desired.parameters.items():
        now = current.get(name)
        if now is None:
            changes.append(Change(name, "create", type=spec.type, desired=spec))
            continue
        fields, warnings = compare(spec, now)
        action: Action = "modify" if fields else "unchanged"
        changes.append(
            Change(name, action, tuple(fields), spec.type, now.version, tuple(warnings), spec, now)
        )
    unlisted = sorted(n for n in listed if n not in desired.parameters and desired.prunable(n))
    if prune:
        for name in unlisted:
            item = listed[name]
            changes.append(Change(name, "delete", type=item.type, version=item.version, current=item))
    return Plan(tuple(sorted(changes, key=lambda c: c.name)), prune, tuple(unlisted))


def plan(ssm: Any, desired: DesiredState, *, prune: bool = False) -> Plan:
    """Read Parameter Store (batched, never writing) and compare with ``desired``."""
    current, listed = read_state(ssm, desired)
    return make_plan(desired, current, listed, prune)


# -- apply -------------------------------------------------------------------------------------


def _tags_arg(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _check_unchanged(ssm: Any, change: Change) -> None:
    """Re-read ``change.name`` and raise :class:`ConcurrentChangeError` if it moved since the plan."""
    now = describe_names(ssm, [change.name]).get(change.name)
    if change.action == "create":
        if now is not None:
            raise ConcurrentChangeError(
                f"{change.name} was created by {now.last_modified_user or 'someone else'} after the plan "
                "was shown; not overwritten. Run plan again."
            )
        return
    if now is None:
        raise ConcurrentChangeError(f"{change.name} was deleted after the plan was shown. Run plan again.")
    if now.version != change.version:
        raise ConcurrentChangeError(
            f"{change.name} changed after the plan was shown (version {change.version} -> {now.version}, "
            f"by {now.last_modified_user or 'unknown'}); not written. Run plan again."
        )
    planned_tags = change.current.tags if change.current is not None else None
    if change.action == "modify" and planned_tags is not None and read_tags(ssm, change.name) != planned_tags:
        raise ConcurrentChangeError(
            f"{change.name}: its tags changed after the plan was shown; not written. Run plan again."
        )


def _put_kwargs(spec: DesiredParameter, current: Current | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Name": spec.name, "Value": spec.value, "Type": spec.type}
    tier = effective_tier(spec.tier, current.tier if current else None)
    if tier:
        kwargs["Tier"] = tier
    description = (
        spec.description if spec.description is not None else (current.description if current else "")
    )
    if description or (current and current.description):  # "" clears an existing description
        kwargs["Description"] = description
    pattern = (
        spec.allowed_pattern
        if spec.allowed_pattern is not None
        else (current.allowed_pattern if current else "")
    )
    if pattern or (current and current.allowed_pattern):
        kwargs["AllowedPattern"] = pattern
    data_type = spec.data_type or (current.data_type if current else None)
    if data_type:
        kwargs["DataType"] = data_type
    if spec.type == "SecureString":
        key = spec.kms_key or (current.key_id if current and current.type == "SecureString" else None)
        if key:
            kwargs["KeyId"] = key
    if current is None:
        if spec.tags:
            kwargs["Tags"] = _tags_arg(spec.tags)
    else:
        # Parameter Store rejects Tags together with Overwrite; tags go through AddTagsToResource.
        kwargs["Overwrite"] = True
    return kwargs


def _write(ssm: Any, change: Change) -> None:
    target = {"ResourceType": "Parameter", "ResourceId": change.name}
    if change.action == "delete":
        ssm.delete_parameter(Name=change.name)
        return
    spec = change.desired
    assert spec is not None
    if change.action == "create" or set(change.fields) & set(PUT_FIELDS):
        ssm.put_parameter(**_put_kwargs(spec, change.current))
    if change.action == "modify" and "tags" in change.fields and spec.tags is not None:
        have = dict(change.current.tags or {}) if change.current else {}
        add = {k: v for k, v in spec.tags.items() if have.get(k) != v}
        remove = sorted(k for k in have if k not in spec.tags)
        if add:
            ssm.add_tags_to_resource(**target, Tags=_tags_arg(add))
        if remove:
            ssm.remove_tags_from_resource(**target, TagKeys=remove)


def client_error(exc: ClientError, change: Change | None = None) -> str:
    """``Code: message`` of an AWS error with the value redacted (validation errors can echo it)."""
    error = exc.response.get("Error", {})
    text = f"{error.get('Code', 'error')}: {error.get('Message', '')}"
    value = change.desired.value if change is not None and change.desired is not None else None
    return redact(text, [value])


def apply(ssm: Any, planned: Plan, *, on_applied: Callable[[Change], None] | None = None) -> list[Change]:
    """Write each pending change, re-reading the parameter right before; stops at the first error.

    Parameter Store has no conditional write, so a change landing between the re-read and the
    write (a window of one request) is not detected; anything earlier is.
    """
    if planned.blocked:
        names = ", ".join(c.name for c in planned.blocked)
        raise ParamError(
            f"nothing written: Parameter Store cannot change the type of {names}; delete it and apply again"
        )
    applied: list[Change] = []
    for change in planned.pending:
        _check_unchanged(ssm, change)
        try:
            _write(ssm, change)
        except ClientError as exc:
            raise ParamError(f"{change.name}: {change.action} failed: {client_error(exc, change)}") from None
        applied.append(change)
        if on_applied:
            on_applied(change)
    return applied


# -- ls, get, history, diff ------------------------------------------------------------------


def list_parameters(ssm: Any, path: str | None = None, *, recursive: bool = False) -> list[Current]:
    """Metadata of the parameters under ``path`` (all of them without a path); no values."""
    return sorted(describe(ssm, [_path_filter(path, recursive)] if path else []), key=lambda c: c.name)


@dataclass(frozen=True)
class ParamVersion:
    """One version from GetParameterHistory; ``repr`` never shows the value."""

    name: str
    version: int
    type: str
    value: str = field(default="", repr=False)
    labels: tuple[str, ...] = ()
    last_modified: datetime | None = None
    last_modified_user: str = ""
    description: str = ""
    allowed_pattern: str = ""
    tier: str = "Standard"
    data_type: str = "text"
    key_id: str | None = None

    def attributes(self) -> dict[str, Any]:
        """Everything compared by :func:`diff_versions` except the value."""
        return {
            "type": self.type,
            "description": self.description,
            "allowed_pattern": self.allowed_pattern,
            "tier": self.tier,
            "data_type": self.data_type,
            "kms_key": self.key_id or "",
        }


def _not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("ParameterNotFound", "ParameterVersionNotFound")


def history(ssm: Any, name: str, *, with_values: bool = False) -> list[ParamVersion]:
    """Every kept version (Parameter Store keeps the latest 100), oldest first."""
    kwargs: dict[str, Any] = {"Name": name, "WithDecryption": with_values, "MaxResults": 50}
    out: list[ParamVersion] = []
    try:
        while True:
            page = ssm.get_parameter_history(**kwargs)
            for h in page.get("Parameters") or []:
                out.append(
                    ParamVersion(
                        name=name,
                        version=int(h["Version"]),
                        type=h["Type"],
                        value=h.get("Value", "") if with_values else "",
                        labels=tuple(h.get("Labels") or ()),
                        last_modified=h.get("LastModifiedDate"),
                        last_modified_user=h.get("LastModifiedUser") or "",
                        description=h.get("Description") or "",
                        allowed_pattern=h.get("AllowedPattern") or "",
                        tier=h.get("Tier") or "Standard",
                        data_type=h.get("DataType") or "text",
                        key_id=h.get("KeyId") if h["Type"] == "SecureString" else None,
                    )
                )
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    except ClientError as exc:
        if _not_found(exc):
            raise ParamError(f"parameter {name} not found") from None
        raise
    if not out:
        raise ParamError(f"parameter {name} not found")
    return sorted(out, key=lambda v: v.version)


def select(versions: list[ParamVersion], ref: str) -> ParamVersion:
    """A version by number (``3``) or by label (``prod``)."""
    for v in versions:
        if (ref.isdigit() and v.version == int(ref)) or (not ref.isdigit() and ref in v.labels):
            return v
    kind = "version" if ref.isdigit() else "label"
    name = versions[0].name if versions else "?"
    raise ParamError(f"{name} has no {kind} {ref} (Parameter Store keeps the latest 100 versions)")


def get(ssm: Any, name: str, *, version: int | None = None, label: str | None = None) -> ParamVersion:
    """One version (the current one by default), decrypted, with its labels and attributes."""
    versions = history(ssm, name, with_values=True)
    if version is not None:
        return select(versions, str(version))
    if label is not None:
        if label.isdigit():
            raise ParamError("a label cannot be a number; use --version")
        return select(versions, label)
    return versions[-1]


@dataclass(frozen=True)
class FieldDiff:
    field: str
    old: Any = field(repr=False)
    new: Any = field(repr=False)


def diff_versions(a: ParamVersion, b: ParamVersion) -> list[FieldDiff]:
    """Fields that differ between two versions (the value first); values only inside the result."""
    out = [FieldDiff("value", a.value, b.value)] if a.value != b.value else []
    old, new = a.attributes(), b.attributes()
    out.extend(FieldDiff(k, old[k], new[k]) for k in old if old[k] != new[k])
    return out
