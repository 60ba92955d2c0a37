"""Diff one parameter between the source and one target region, and apply the difference.

:func:`plan_sync` is pure: it turns the two states into a :class:`Plan` (a list of
:class:`Operation`). :func:`apply_plan` executes it. Operations carry the request
arguments (which include values) in a field that is excluded from ``repr`` and never
logged; :meth:`Operation.describe` is the value-free form used in logs and summaries.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from rotation_handlers.replication.config import MARKER_TAG_KEY, ReplicationConfig, replicated_tags
from rotation_handlers.replication.retry import RetryPolicy, error_code
from rotation_handlers.replication.state import ParameterState, policies_payload

EC2_IMAGE_DATA_TYPE = "aws:ec2:image"
UNMANAGED_DELETE_REASON = "source deleted; unmanaged replica deleted (DELETE_UNMANAGED_REPLICAS=true)"
WRITE_KINDS = ("create", "overwrite", "add_tags", "remove_tags", "label", "unlabel", "delete")


@dataclass
class Operation:
    kind: str  # one of WRITE_KINDS
    detail: str  # value-free summary, e.g. "value,description" or "labels=prod -> v3"
    kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    version_from: int | None = None  # label/unlabel: use the version returned by operations[i]

    def describe(self) -> str:
        return f"{self.kind}({self.detail})" if self.detail else self.kind


@dataclass
class Plan:
    name: str
    region: str
    action: str = "unchanged"  # created|updated|tagged|labelled|deleted|unchanged|skipped
    reason: str = ""
    operations: list[Operation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The replica a type change deletes, put back if its re-creation fails.
    previous: ParameterState | None = field(default=None, repr=False)

    @property
    def writes(self) -> int:
        return len(self.operations)

    @property
    def recreates(self) -> bool:
        """The replica is deleted and created anew (a type change Parameter Store cannot overwrite)."""
        return self.action == "updated" and bool(self.operations) and self.operations[0].kind == "delete"


def key_matches(current: str | None, desired: str) -> bool:
    """Whether a KMS key reported by SSM is the configured one (id, alias or ARN forms)."""
    if not current:
        return False
    if current == desired:
        return True

    def tail(key: str) -> str:
        if key.startswith("arn:"):
            resource = key.split(":", 5)[-1]  # key/<id> or alias/<name>
            return resource[4:] if resource.startswith("key/") else resource
        return key

    return tail(current) == tail(desired)


def _put_kwargs(
    source: ParameterState,
    value: str,
    target: ParameterState | None,
    tier: str,
    key_id: str | None,
    tags: dict[str, str] | None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "Name": source.name,
        "Value": value,
        "Type": source.type,
        "Tier": tier,
        "DataType": source.data_type,
    }
    if source.description or (target and target.description):
        kwargs["Description"] = source.description
    if source.allowed_pattern or (target and target.allowed_pattern):
        kwargs["AllowedPattern"] = source.allowed_pattern
    if key_id:
        kwargs["KeyId"] = key_id
    if source.policies or (target and target.policies):
        kwargs["Policies"] = policies_payload(source.policies)
    if tags is None:
        kwargs["Overwrite"] = True  # Parameter Store rejects Tags together with Overwrite
    else:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    return kwargs


def _attribute_diffs(
    source: ParameterState, target: ParameterState, tier: str, key_id: str | None
) -> list[str]:
    diffs = []
    if target.value != source.value:
        diffs.append("value")
    for attr in ("type", "description", "allowed_pattern", "data_type", "policies"):
        if getattr(target, attr) != getattr(source, attr):
            diffs.append(attr)
    if target.tier != tier:
        diffs.append("tier")
    if key_id and not key_matches(target.key_id, key_id):
        diffs.append("kms_key")
    return diffs


#: Parameter Store allows at most 10 labels on one parameter version
#: (ParameterVersionLabelLimitExceeded; https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-labels.html).
LABELS_PER_VERSION = 10


@dataclass
class LabelPlacement:
    """Where each source label goes in the target: version numbers are regional, values are not."""

    existing: dict[int, list[str]] = field(default_factory=dict)  # target version -> labels to put
    new_versions: dict[str, list[list[str]]] = field(default_factory=dict)  # value -> label chunks
    order: dict[str, int] = field(default_factory=dict)  # value -> oldest source version holding it
    unlabel: dict[int, list[str]] = field(default_factory=dict)  # target version -> labels to remove


def place_labels(source: ParameterState, target: ParameterState | None) -> LabelPlacement:
    """Put every source label on a target version holding the labelled value, 10 at most each.

    A label already on a version with the right value stays. The others fill the versions
    holding their value, newest first, up to 10 labels (labels that are about to move away
    still count, so no call can exceed the limit whatever the order); what does not fit goes
    on new versions written with that value, 10 per version.
    """
    out = LabelPlacement()
    desired = {label: version.value for label, version in source.labels.items()}
    occupancy: dict[int, int] = defaultdict(int)
    staying: set[str] = set()
    unlabel: dict[int, list[str]] = defaultdict(list)
    for label, version in sorted((target.labels if target is not None else {}).items()):
        if label not in desired:
            unlabel[version.number].append(label)
            continue
        occupancy[version.number] += 1
        if version.value == desired[label]:
            staying.add(label)
    out.unlabel = dict(unlabel)
    to_place: dict[str, list[str]] = defaultdict(list)
    for label, version in sorted(source.labels.items()):
        if label not in staying:
            to_place[version.value].append(label)
            out.order[version.value] = min(out.order.get(version.value, version.number), version.number)
    existing: dict[int, list[str]] = defaultdict(list)
    for value, labels in to_place.items():
        rest = labels
        for number in target.versions_holding(value) if target is not None else []:
            room = LABELS_PER_VERSION - occupancy[number]
            if room > 0 and rest:
                existing[number].extend(rest[:room])
                occupancy[number] += len(rest[:room])
                rest = rest[room:]
        if rest:
            out.new_versions[value] = [
                rest[i : i + LABELS_PER_VERSION] for i in range(0, len(rest), LABELS_PER_VERSION)
            ]
    out.existing = dict(existing)
    return out


def _may_delete(target: ParameterState, config: ReplicationConfig) -> bool:
    """Whether the replicator may delete ``target``: its own replica, or DELETE_UNMANAGED_REPLICAS."""
    return target.tags.get(MARKER_TAG_KEY) == config.source_region or config.delete_unmanaged


def _unmanaged(config: ReplicationConfig) -> str:
    return (
        f"the target was not created by this replicator (no {MARKER_TAG_KEY}={config.source_region} "
        "tag; DELETE_UNMANAGED_REPLICAS=false)"
    )


LABEL_SKIPPED = "label-skipped"
_PATTERN_REASON = (
    "the labelled older value does not match the parameter's AllowedPattern today, so it cannot be "
    "written in the target; the label is not replicated"
)
#: Detail of a put that writes an older, labelled value (not the current one).
OLDER_VALUE = "labelled older value"


def _matches_pattern(pattern: str | None, value: str) -> bool:
    """Whether Parameter Store would accept ``value`` under ``pattern`` (True if Python cannot tell).

    AllowedPattern is "a regular expression used to validate the parameter value" (PutParameter,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html). A
    pattern Python's ``re`` cannot compile is left to Parameter Store (see :func:`apply_plan`).
    """
    if not pattern:
        return True
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True


def _refuse_unmanaged_write(plan: Plan, config: ReplicationConfig) -> Plan:
    """Leave a target parameter the replicator did not create as it is, and say so."""
    wanted = ", ".join(op.describe() for op in plan.operations)
    plan.operations = []
    plan.action = "skipped"
    plan.reason = (
        f"the target was not created by this replicator (no {MARKER_TAG_KEY}={config.source_region} tag) "
        f"and differs from the source; not overwritten (ADOPT_UNMANAGED_TARGETS=false; "
        f"`secretsctl replicas check --apply --adopt` takes it over): would {wanted}"
    )
    plan.warnings.append("unmanaged-target-refused: " + plan.reason)
    return plan


def _plan_delete(plan: Plan, target: ParameterState | None, config: ReplicationConfig) -> Plan:
    if target is None:
        plan.reason = "absent in source and target"
        return plan
    if not _may_delete(target, config):
        plan.action = "skipped"
        plan.reason = f"source deleted but {_unmanaged(config)}"
        return plan
    managed = target.tags.get(MARKER_TAG_KEY) == config.source_region
    plan.reason = "source deleted" if managed else UNMANAGED_DELETE_REASON
    plan.action = "deleted"
    plan.operations.append(Operation("delete", "", {"Name": plan.name}))
    return plan


def plan_sync(
    name: str,
    source: ParameterState | None,
    target: ParameterState | None,
    region: str,
    config: ReplicationConfig,
) -> Plan:
    """What to do in ``region`` so that ``name`` there matches the source."""
    plan = Plan(name, region)
    if source is None:
        return _plan_delete(plan, target, config)

    origin = source.tags.get(MARKER_TAG_KEY)
    if origin and origin != config.source_region:
        plan.action = "skipped"
        plan.reason = f"source parameter is itself a replica from {origin}; not replicated onwards"
        return plan
    if source.data_type == EC2_IMAGE_DATA_TYPE and not config.copy_ec2_image:
        plan.action = "skipped"
        plan.reason = "data type aws:ec2:image holds a regional AMI id (COPY_EC2_IMAGE_PARAMETERS=false)"
        return plan

    key_id = config.kms_key_for(region) if source.type == "SecureString" else None
    # A same-named target parameter without our marker belongs to someone else (the default
    # REPLICATE_PATHS "/" makes every name fair game): it is only written with ADOPT_UNMANAGED_TARGETS,
    # and then it gets the marker, becoming a replica like any other.
    unmanaged = target is not None and target.tags.get(MARKER_TAG_KEY) != config.source_region
    retyped = ""
    if target is not None and target.type != source.type:
        # Parameter Store refuses to change the type of an existing parameter: PutParameter with
        # Overwrite raises HierarchyTypeMismatchException ("You must create a new, unique
        # parameter"; https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
        # So the replica is deleted and created anew, as a new replica (tags, marker, labels).
        retyped = f"type {target.type} -> {source.type}"
        plan.operations.append(Operation("delete", retyped, {"Name": name}))
        if unmanaged and not config.adopt_unmanaged:
            return _refuse_unmanaged_write(plan, config)
        plan.previous = target
        target = None
    tier = source.tier
    if target is not None and target.tier == "Advanced" and source.tier != "Advanced":
        tier = "Advanced"
        plan.warnings.append(
            "tier-downgrade-skipped: target is Advanced and source Standard; Parameter Store cannot move "
            "Advanced to Standard, so the replica stays Advanced (delete it to have it recreated Standard)"
        )

    placement = place_labels(source, target)
    desired_tags = replicated_tags(source.tags)
    puts: list[tuple[str, list[str], str]] = []  # (value, labels to put on the version, detail)
    for value in sorted(placement.new_versions, key=lambda v: placement.order[v]):
        if value != source.value and not _matches_pattern(source.allowed_pattern, value):
            labels = sorted(label for chunk in placement.new_versions[value] for label in chunk)
            plan.warnings.append(f"{LABEL_SKIPPED}: labels={','.join(labels)}: {_PATTERN_REASON}")
        elif value != source.value:
            puts.extend((value, chunk, OLDER_VALUE) for chunk in placement.new_versions[value])
    diffs = _attribute_diffs(source, target, tier, key_id) if target is not None else ["all"]
    current_chunks = placement.new_versions.get(source.value, [])
    if puts or diffs or current_chunks:
        if diffs:
            detail = ",".join(diffs)
        elif puts:
            detail = "restore current value"
        else:
            detail = f"another version for labels ({LABELS_PER_VERSION} per version)"
        puts.append((source.value, current_chunks[0] if current_chunks else [], detail))
        puts.extend(
            (source.value, chunk, f"another version for labels ({LABELS_PER_VERSION} per version)")
            for chunk in current_chunks[1:]
        )

    for index, (value, labels, detail) in enumerate(puts):
        first_create = target is None and index == 0
        tags = {**desired_tags, MARKER_TAG_KEY: config.source_region} if first_create else None
        kind = "create" if first_create else "overwrite"
        plan.operations.append(
            Operation(kind, detail, _put_kwargs(source, value, target, tier, key_id, tags))
        )
        if labels:
            plan.operations.append(
                Operation(
                    "label",
                    f"labels={','.join(labels)} -> new version",
                    {"Labels": labels},
                    len(plan.operations) - 1,
                )
            )

    if target is not None:
        current = replicated_tags(target.tags)
        add = {k: v for k, v in desired_tags.items() if current.get(k) != v}
        if unmanaged and config.adopt_unmanaged:
            add[MARKER_TAG_KEY] = config.source_region
        remove = sorted(k for k in current if k not in desired_tags)
        if add:
            plan.operations.append(
                Operation(
                    "add_tags",
                    f"keys={','.join(sorted(add))}",
                    {"Tags": [{"Key": k, "Value": v} for k, v in sorted(add.items())]},
                )
            )
        if remove:
            plan.operations.append(Operation("remove_tags", f"keys={','.join(remove)}", {"TagKeys": remove}))
        for number, labels in sorted(placement.unlabel.items()):
            for i in range(0, len(labels), LABELS_PER_VERSION):
                chunk = labels[i : i + LABELS_PER_VERSION]
                plan.operations.append(
                    Operation(
                        "unlabel", f"labels={','.join(chunk)} v{number}", {"Labels": chunk, "Version": number}
                    )
                )
        for number, labels in sorted(placement.existing.items()):
            plan.operations.append(
                Operation(
                    "label", f"labels={','.join(labels)} -> v{number}", {"Labels": labels, "Version": number}
                )
            )

    if unmanaged and plan.operations and not config.adopt_unmanaged:
        return _refuse_unmanaged_write(plan, config)
    kinds = {op.kind for op in plan.operations}
    if retyped:
        plan.action, plan.reason = "updated", f"{retyped} (delete and re-create the replica)"
    elif "create" in kinds:
        plan.action, plan.reason = "created", "missing in target"
    elif "overwrite" in kinds:
        plan.action, plan.reason = (
            "updated",
            next(op.detail for op in plan.operations if op.kind == "overwrite"),
        )
    elif kinds and kinds <= {"add_tags", "remove_tags"}:
        plan.action, plan.reason = "tagged", "tags differ"
    elif kinds and kinds <= {"label", "unlabel"}:
        plan.action, plan.reason = "labelled", "labels differ"
    elif kinds:
        plan.action, plan.reason = "updated", "tags and labels differ"
    else:
        plan.action, plan.reason = "unchanged", "target matches source"
    return plan


def restore_kwargs(previous: ParameterState) -> dict[str, Any]:
    """PutParameter arguments that put back ``previous`` (current value, attributes, writable tags).

    Reserved ``aws:`` tags cannot be written, so they are not restored; nor are older versions
    and their labels (the next sync re-creates the replica with the source's type and labels).
    """
    tags = {**replicated_tags(previous.tags)}
    if MARKER_TAG_KEY in previous.tags:
        tags[MARKER_TAG_KEY] = previous.tags[MARKER_TAG_KEY]
    return _put_kwargs(previous, previous.value, None, previous.tier, previous.key_id, tags)


def _restore(ssm: Any, plan: Plan, retry: RetryPolicy) -> None:
    """The re-create of a type change failed: put the deleted replica back, then let the error go on."""
    assert plan.previous is not None
    try:
        retry.call(ssm.put_parameter, **restore_kwargs(plan.previous))
    except ClientError as exc:
        if error_code(exc) != "ParameterAlreadyExists":  # another invocation created it meanwhile
            raise
    plan.warnings.append(
        "replica-restored: the re-create with the new type failed; previous replica put back"
    )


def apply_plan(ssm: Any, plan: Plan, retry: RetryPolicy) -> None:
    """Execute ``plan`` against the target region's client, in order."""
    versions: dict[int, int] = {}
    tag_target = {"ResourceType": "Parameter", "ResourceId": plan.name}
    carried_tags: list[dict[str, str]] | None = None  # a create's tags, if its older value was refused
    for index, op in enumerate(plan.operations):
        if op.kind in ("create", "overwrite"):
            kwargs = dict(op.kwargs)
            if carried_tags is not None:  # this put creates the parameter now
                kwargs.pop("Overwrite", None)
                kwargs["Tags"], carried_tags = carried_tags, None
            try:
                response = retry.call(ssm.put_parameter, **kwargs)
            except Exception as exc:
                if op.detail == OLDER_VALUE and error_code(exc) == "ParameterPatternMismatchException":
                    # Only an older labelled value may be given up; the current value always goes out.
                    labels = [
                        label
                        for later in plan.operations
                        if later.kind == "label" and later.version_from == index
                        for label in later.kwargs["Labels"]
                    ]
                    plan.warnings.append(f"{LABEL_SKIPPED}: labels={','.join(labels)}: {_PATTERN_REASON}")
                    if "Tags" in kwargs:
                        carried_tags = kwargs["Tags"]
                    continue
                if plan.previous is not None and not versions:  # a type change's replica is gone
                    _restore(ssm, plan, retry)
                raise
            versions[index] = int(response["Version"])
        elif op.kind in ("label", "unlabel"):
            if op.version_from is not None and op.version_from not in versions:
                continue  # its version was not written (see above)
            number = versions[op.version_from] if op.version_from is not None else op.kwargs["Version"]
            call = ssm.label_parameter_version if op.kind == "label" else ssm.unlabel_parameter_version
            retry.call(call, Name=plan.name, ParameterVersion=number, Labels=op.kwargs["Labels"])
        elif op.kind == "add_tags":
            retry.call(ssm.add_tags_to_resource, **tag_target, Tags=op.kwargs["Tags"])
        elif op.kind == "remove_tags":
            retry.call(ssm.remove_tags_from_resource, **tag_target, TagKeys=op.kwargs["TagKeys"])
        elif op.kind == "delete":
            try:
                retry.call(ssm.delete_parameter, Name=plan.name)
            except ClientError as exc:
                if error_code(exc) != "ParameterNotFound":  # already gone: fine
                    raise
        else:  # pragma: no cover - plan_sync only emits WRITE_KINDS
            raise ValueError(f"unknown operation {op.kind}")
