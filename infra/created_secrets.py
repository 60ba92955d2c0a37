"""The record of the secrets a configuration creates: their names and their ``GenerateSecretString``.

CloudFormation generates a new password whenever ``GenerateSecretString`` of an
``AWS::SecretsManager::Secret`` changes, on an update and on that update's rollback alike
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-secret.html;
any change, even to ``SecretStringTemplate`` alone, as reported in
https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/2210 and /1161; other
properties of the secret never create a version), and the database never gets that password.
Only a property that never changes is safe on every path CloudFormation can take (deploy, failure
at any resource, rollback, retry), including the ones in which no custom resource of ours is ever
invoked. So a created secret keeps, for its whole life,
the ``GenerateSecretString`` it was first deployed with: written into the template verbatim from
this record, intrinsic functions included, whatever this app's own generator is today (the
connection fields are written by ``Custom::SecretConnectionFields`` instead).

The record is ``<config>.secret-names.json`` next to the configuration file (commit it)::

    {"note": ..., "secretNames": {entry: name},
     "generateSecretString": {entry: <the property, as in the template>}}

Where a generator comes from:

* recorded: used as it is, with no AWS call;
* not recorded, in a record that already keeps generators: a new entry, whose secret this deploy
  creates (a secret of that name deployed by an earlier template would make the create fail with
  "already exists", not regenerate): this app's password-only generator;
* not recorded otherwise (no record yet, or one written before generators were kept): the stack may
  hold the secret already, with an earlier version's generator. Synth does not call AWS (CDK's
  advice: a deterministic synth, lookups cached in a committed file), so it refuses and names the
  command that reads the deployed template once (``python -m infra.record_created_secrets``), as a
  context lookup would.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, DeploymentConfig
from infra.secret_fields import PASSWORD_ONLY_GENERATOR

SECRET_TYPE = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type, not a password

RECORD_NOTE = (
    "Written by cdk synth and by `python -m infra.record_created_secrets`: each created secret's name "
    "and the GenerateSecretString it was deployed with, kept verbatim so that no deploy or rollback "
    "regenerates its password. Commit it next to the configuration (see docs/deploying.md)."
)
GENERATORS_KEY = "generateSecretString"

#: Stack states whose template is not the one the secrets have (an operation is under way or stuck).
_UNSETTLED = ("_IN_PROGRESS", "_FAILED")
#: States in which the stack holds no secret (a failed first create is rolled back and its secrets
#: deleted: RetainExceptOnCreate; a change-set-only stack has created nothing).
_NOTHING_DEPLOYED = {"ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS", "DELETE_COMPLETE"}


def secret_names_file(config_path: str | Path) -> Path:
    """Where the created secrets of the configuration file ``config_path`` are recorded."""
    p = Path(config_path)
    return p.with_name(f"{p.stem}.secret-names.json")


@dataclass
class CreatedSecretsRecord:
    names: dict[str, str] = field(default_factory=dict)
    #: None: a record written before generators were kept (or none at all): nothing is known.
    generators: dict[str, Any] | None = None

    @classmethod
    def load(cls, path: Path) -> CreatedSecretsRecord:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise ConfigError(str(path), [f"cannot read the record of created secrets: {exc}"]) from None
        names = raw.get("secretNames", {}) if isinstance(raw, dict) else None
        generators = raw.get(GENERATORS_KEY) if isinstance(raw, dict) else None
        if not isinstance(names, dict) or not (generators is None or isinstance(generators, dict)):
            raise ConfigError(str(path), ["the record of created secrets is not of the documented shape"])
        return cls(dict(names), None if generators is None else dict(generators))

    def content(self) -> dict[str, Any]:
        return {"note": RECORD_NOTE, "secretNames": self.names, GENERATORS_KEY: self.generators or {}}

    def save(self, path: Path) -> None:
        try:
            path.write_text(json.dumps(self.content(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:  # a read-only checkout (CI): everything was checked; nothing to record
            print(f"note: cannot record the created secrets in {path}: {exc.strerror}", file=sys.stderr)


def created_entries(config: DeploymentConfig) -> list[tuple[int, Any]]:
    """(index, entry) of every secret the configuration creates."""
    if config.rotation is None:
        return []
    return [(i, s) for i, s in enumerate(config.rotation.secrets) if s.create is not None]


def check_names(config: DeploymentConfig, record: CreatedSecretsRecord, path: Path) -> None:
    """Refuse a created secret whose ``secretName`` differs from the one its entry was recorded with.

    ``Name`` of ``AWS::SecretsManager::Secret`` is "Update requires: Replacement"
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-secret.html#cfn-secretsmanager-secret-name)
    and Secrets Manager cannot rename a secret (``UpdateSecret`` takes no name): a changed name would
    make a new secret with a password the database never got, move the rotation schedule to it, and
    leave the old one retained and unrotated.
    """
    errors: list[str] = []
    for i, s in created_entries(config):
        before = record.names.get(s.name)
        if before is not None and before != s.create.secret_name:
            errors.append(
                f"rotation.secrets[{i}].create.secretName: {s.create.secret_name!r} is not the name recorded "
                f"for this entry ({before!r}, as deployed); CloudFormation would replace the secret with a "
                "new password the database never got and leave the old one unrotated. To rename: add a "
                f"new entry (another 'name') with the new secretName, deploy, move the database user and "
                f"the applications to it, then remove entry {s.name!r} (its secret is retained; delete it "
                f"yourself). Recorded in {path}"
            )
    if errors:
        raise ConfigError(config.source, errors)


def resolve_generators(
    config: DeploymentConfig, record: CreatedSecretsRecord
) -> tuple[dict[str, Any], list[str]]:
    """Each created entry's generator, and the entries whose generator only the deployed stack knows."""
    generators: dict[str, Any] = {}
    unknown: list[str] = []
    for _, s in created_entries(config):
        if record.generators is not None and s.name in record.generators:
            generators[s.name] = record.generators[s.name]
        elif record.generators is not None:
            generators[s.name] = PASSWORD_ONLY_GENERATOR
        else:
            unknown.append(s.name)
    return generators, unknown


def updated(config: DeploymentConfig, generators: Mapping[str, Any]) -> CreatedSecretsRecord:
    """The record of this configuration: its created entries only (removed ones are forgotten)."""
    entries = created_entries(config)
    return CreatedSecretsRecord(
        names={s.name: s.create.secret_name for _, s in entries},
        generators={s.name: generators[s.name] for _, s in entries},
    )


def check_references(config: DeploymentConfig, generators: Mapping[str, Any], logical_ids: set[str]) -> None:
    """Refuse a kept generator that refers to a resource the stack no longer defines (CloudFormation
    would refuse the template; an earlier template put the master secret's ARN into the app secret's)."""
    errors: list[str] = []
    for i, s in created_entries(config):
        missing = sorted(referenced_ids(generators.get(s.name, {})) - logical_ids)
        if missing:
            errors.append(
                f"rotation.secrets[{i}]: the GenerateSecretString secret {s.create.secret_name!r} was "
                f"deployed with refers to {', '.join(missing)}, which this configuration no longer "
                "creates; changing that property would regenerate the password, so keep the entry that "
                "creates it (for example the master secret's) in the configuration"
            )
    if errors:
        raise ConfigError(config.source, errors)


def unknown_error(
    config: DeploymentConfig, unknown: Iterable[str], path: Path, stack_name: str
) -> ConfigError:
    entries = ", ".join(repr(n) for n in unknown)
    return ConfigError(
        config.source,
        [
            f"rotation.secrets: the GenerateSecretString of created secret(s) {entries} is not recorded in "
            f"{path}. If stack {stack_name} already holds them (deployed by an earlier version of this app), "
            "a deploy that changed that property would give them a password the database never got, and "
            "so would its rollback. Record it from the deployed template once, with credentials for account "
            f"{config.account}: `.venv/bin/python -m infra.record_created_secrets --config {config.source}` "
            "(needs cloudformation:DescribeStacks and cloudformation:GetTemplate on that stack); or, if the "
            "stack was never deployed: `.venv/bin/python -m infra.record_created_secrets --config "
            f"{config.source} --not-deployed`. Then commit {path.name}."
        ],
    )


# -- what the deployed stack holds ---------------------------------------------------------------


class DeployedReadError(Exception):
    """The deployed stack cannot be read, or holds something this app cannot keep."""


def deployed_generators(cfn: Any, stack_name: str, logical_ids: Mapping[str, str]) -> dict[str, Any]:
    """``{entry: GenerateSecretString}`` of the entries whose secret the deployed stack already holds.

    ``logical_ids``: entry -> the logical id of its secret in this app's template (CDK derives it from
    the construct path, unchanged across this app's versions). Reads DescribeStacks and GetTemplate
    (``TemplateStage`` Original: what was deployed, before transforms;
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html).
    """
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as exc:
        if _code(exc) == "ValidationError" and "does not exist" in str(exc):
            return {}  # never deployed (or deleted): every secret is new
        raise DeployedReadError(f"cannot read stack {stack_name}: {exc}") from None
    status = str(stacks[0].get("StackStatus", ""))
    if status in _NOTHING_DEPLOYED:
        return {}
    if status.endswith(_UNSETTLED):
        raise DeployedReadError(
            f"stack {stack_name} is {status}: its template is not the one its secrets have until the "
            "operation ends (continue or finish a failed rollback first), then run this again"
        )
    try:
        body = cfn.get_template(StackName=stack_name, TemplateStage="Original")["TemplateBody"]
    except Exception as exc:
        raise DeployedReadError(f"cannot read the template of stack {stack_name}: {exc}") from None
    if isinstance(body, str):  # botocore decodes a JSON body; a string left is YAML
        try:
            body = json.loads(body)
        except ValueError:
            raise DeployedReadError(
                f"the template of stack {stack_name} is not JSON (this app deploys JSON templates)"
            ) from None
    resources = body.get("Resources", {}) if isinstance(body, dict) else {}
    found: dict[str, Any] = {}
    for entry, logical_id in logical_ids.items():
        resource = resources.get(logical_id)
        if resource is None:
            continue
        if resource.get("Type") != SECRET_TYPE:
            raise DeployedReadError(
                f"{logical_id} in stack {stack_name} is a {resource.get('Type')}, not a secret"
            )
        generator = resource.get("Properties", {}).get("GenerateSecretString")
        if not isinstance(generator, dict):
            raise DeployedReadError(
                f"secret {logical_id} (entry {entry!r}) in stack {stack_name} has no GenerateSecretString; "
                "this app cannot keep it as it is"
            )
        found[entry] = generator
    return found


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


# -- reading a recorded generator ----------------------------------------------------------------

_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def referenced_ids(value: Any) -> set[str]:
    """Logical ids a property refers to (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``), pseudo parameters aside."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                out.add(inner)
            elif key == "Fn::GetAtt" and isinstance(inner, list) and inner:
                out.add(str(inner[0]))
            elif key == "Fn::GetAtt" and isinstance(inner, str):
                out.add(inner.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(text, str):
                    local = inner[1] if isinstance(inner, list) and len(inner) > 1 else {}
                    out |= {m for m in _SUB_NAME.findall(text) if m not in (local or {})}
            out |= referenced_ids(inner)
    elif isinstance(value, list):
        for inner in value:
            out |= referenced_ids(inner)
    return {name for name in out if not name.startswith("AWS::")}
