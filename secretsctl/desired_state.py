"""The desired state of one environment's parameters: a YAML or JSON file, validated.

```yaml
paths: [/app/orders/]            # what --prune may delete
parameters:
  /app/orders/db-host:
    value: orders.db.internal
  /app/orders/api-key:
    type: SecureString
    value_from: env:ORDERS_API_KEY     # or file:PATH, or stdin:
    kms_key: alias/orders
```

YAML is read with PyYAML's safe loader (no object construction) and validated with pydantic,
the library of the deployment configuration. Every problem is reported at once, each with its
path in the file, and never with a value. A SecureString value may only be written in the file
when the file is encrypted (a SOPS file, decrypted in memory with ``sops --decrypt``); otherwise
it comes from ``value_from``, so the file itself holds no secret and can live in git.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, TextIO

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rotation_handlers.replication.config import path_matches

#: Parameter Store limits: https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html
#: (names) and https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html
#: (value size: 4 KB Standard, 8 KB Advanced).
NAME_RE = re.compile(r"^[a-zA-Z0-9_.\-/]{1,1011}$")
MAX_LEVELS = 15
MAX_VALUE_BYTES = {"Standard": 4096, "Advanced": 8192, "Intelligent-Tiering": 8192}
_VALUE_FROM_RE = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+|stdin:)$")
_RESERVED_PREFIXES = ("aws", "ssm")

ParameterType = Literal["String", "StringList", "SecureString"]
Tier = Literal["Standard", "Advanced", "Intelligent-Tiering"]
DataType = Literal["text", "aws:ec2:image", "aws:ssm:integration"]


class DesiredStateError(ValueError):
    """The file is invalid. ``problems`` lists each one as ``"<path>: <message>"``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


class ParameterSpec(BaseModel):
    """One parameter as written in the file. Attributes left out are not managed (except type)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: ParameterType = "String"
    value: str | list[str] | None = Field(default=None, repr=False)
    value_from: str | None = None
    description: str | None = Field(default=None, max_length=1024)
    allowed_pattern: str | None = Field(default=None, max_length=1024)
    data_type: DataType | None = None
    tier: Tier | None = None
    kms_key: str | None = Field(default=None, min_length=1)
    tags: dict[str, str] | None = None

    @field_validator("value_from")
    @classmethod
    def _value_from(cls, v: str | None) -> str | None:
        if v is not None and not _VALUE_FROM_RE.match(v):
            raise ValueError("must be env:NAME, file:PATH or stdin:")
        return v

    @field_validator("allowed_pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"is not a regular expression ({exc.msg})") from None
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        # https://docs.aws.amazon.com/systems-manager/latest/userguide/tagging-resources.html
        if v is not None:
            if len(v) > 50:
                raise ValueError("at most 50 tags per parameter")
            for key, val in v.items():
                if not 1 <= len(key) <= 128 or len(val) > 256 or key.lower().startswith("aws:"):
                    raise ValueError(f"tag {key!r}: keys are 1-128 characters, not 'aws:', values <= 256")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ParameterSpec:
        if (self.value is None) == (self.value_from is None):
            raise ValueError("give exactly one of 'value' and 'value_from'")
        if isinstance(self.value, list):
            if self.type != "StringList":
                raise ValueError("a list value needs type: StringList")
            if any("," in item for item in self.value):
                raise ValueError("StringList items cannot contain ','")
            if not self.value:
                raise ValueError("a StringList needs at least one item")
        if self.kms_key is not None and self.type != "SecureString":
            raise ValueError("kms_key applies to SecureString parameters only")
        return self


def _hierarchy_path(path: str) -> str:
    if not path.startswith("/") or not NAME_RE.match(path):
        raise ValueError("must be a hierarchy path starting with '/', e.g. /app/orders/")
    return path


class DesiredFile(BaseModel):
    """The top level; each parameter is validated on its own so that all problems show at once."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    paths: list[Annotated[str, AfterValidator(_hierarchy_path)]] = Field(default_factory=list)
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass(frozen=True)
class DesiredParameter:
    """A parameter as it should be; ``repr`` never shows the value."""

    name: str
    type: str
    value: str = field(repr=False)
    value_source: str = "inline"  # inline | env:NAME | file:PATH | stdin:
    description: str | None = None
    allowed_pattern: str | None = None
    data_type: str | None = None
    tier: str | None = None
    kms_key: str | None = None
    tags: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DesiredState:
    source: str
    paths: tuple[str, ...]
    parameters: dict[str, DesiredParameter]
    encrypted: bool = False

    def prunable(self, name: str) -> bool:
        """Whether ``--prune`` may delete ``name`` (it lies under a declared path)."""
        return any(path_matches(name, p) for p in self.paths)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.isidentifier():
            out += f"[{part!r}]" if out else part
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _errors(exc: ValidationError, prefix: tuple[str, ...]) -> list[str]:
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{_loc((*prefix, *err['loc']))}: {msg}")
    return out


def _name_problems(name: str) -> list[str]:
    problems = []
    if not NAME_RE.match(name):
        problems.append("name may contain only a-z A-Z 0-9 _ . - / (1-1011 characters)")
    first = name.lstrip("/").split("/", 1)[0].lower()
    if first.startswith(_RESERVED_PREFIXES):
        problems.append("names beginning with 'aws' or 'ssm' are reserved by AWS")
    if name.count("/") > MAX_LEVELS or ("/" in name and not name.startswith("/")):
        problems.append(f"a hierarchy name starts with '/' and has at most {MAX_LEVELS} levels")
    return problems


def sops_decrypt(path: Path) -> str:
    """Decrypt a SOPS file in memory (the plaintext never touches disk)."""
    sops = shutil.which("sops")
    if sops is None:
        raise DesiredStateError(
            str(path), ["(top level): the file is SOPS-encrypted but the 'sops' command is not installed"]
        )
    done = subprocess.run([sops, "--decrypt", str(path)], capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        # sops' own message names the key problem; it never contains the plaintext.
        raise DesiredStateError(
            str(path), [f"(top level): sops --decrypt failed: {done.stderr.strip()[:500]}"]
        )
    return done.stdout


def _parse(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)  # JSON is YAML too; safe_load builds plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise DesiredStateError(source, [f"{where}: not valid YAML/JSON ({exc.problem})"]) from None
    except yaml.YAMLError as exc:
        raise DesiredStateError(
            source, [f"(top level): not valid YAML/JSON ({type(exc).__name__})"]
        ) from None


def _resolve(spec: ParameterSpec, base: Path, env: Mapping[str, str], stdin: Callable[[], str]) -> str:
    if spec.value is not None:
        return ",".join(spec.value) if isinstance(spec.value, list) else spec.value
    assert spec.value_from is not None
    kind, _, arg = spec.value_from.partition(":")
    if kind == "env":
        if arg not in env:
            raise ValueError(f"value_from: environment variable {arg} is not set")
        return env[arg]
    if kind == "file":
        path = Path(arg).expanduser()
        if not path.is_absolute():
            path = base / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"value_from: cannot read {path} ({exc.strerror})") from None
        return text[:-1] if text.endswith("\n") else text
    return stdin()


def _read_file(path: Path, source: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DesiredStateError(source, [f"(file): cannot read ({exc.strerror})"]) from None
    return _parse(text, source)


def load_desired_state(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    decrypt: Callable[[Path], str] = sops_decrypt,
) -> DesiredState:
    """Read, validate and resolve a desired-state file. Raises :class:`DesiredStateError`."""
    path = Path(path)
    source = str(path)
    raw = _read_file(path, source)
    encrypted = isinstance(raw, dict) and "sops" in raw
    if encrypted:
        raw = _parse(decrypt(path), source)
        if isinstance(raw, dict):
            raw.pop("sops", None)
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise DesiredStateError(source, ["(top level): must be a mapping with 'paths' and 'parameters'"])

    problems: list[str] = []
    paths: tuple[str, ...] = ()
    raw_params: dict[str, Any] = {}
    try:
        model = DesiredFile.model_validate(raw)
        paths, raw_params = tuple(dict.fromkeys(model.paths)), model.parameters
    except ValidationError as exc:
        problems.extend(_errors(exc, ()))
        if isinstance(raw.get("parameters"), dict):
            raw_params = {str(k): v for k, v in raw["parameters"].items() if isinstance(v, dict)}

    specs: dict[str, ParameterSpec] = {}
    for name, item in raw_params.items():
        problems.extend(f"{_loc(('parameters', name))}: {p}" for p in _name_problems(name))
        try:
            specs[name] = ParameterSpec.model_validate(item)
        except ValidationError as exc:
            problems.extend(_errors(exc, ("parameters", name)))

    stdin_users = [n for n, s in specs.items() if s.value_from == "stdin:"]
    if len(stdin_users) > 1:
        problems.append(f"parameters: only one parameter can read stdin: ({', '.join(stdin_users)})")
        return _fail(source, problems)

    def read_stdin() -> str:
        text = (stdin or sys.stdin).read()
        return text[:-1] if text.endswith("\n") else text

    env = os.environ if env is None else env
    params: dict[str, DesiredParameter] = {}
    for name, spec in specs.items():
        where = _loc(("parameters", name))
        if spec.type == "SecureString" and spec.value is not None and not encrypted:
            problems.append(
                f"{where}.value: a SecureString value may not be written in a plain file; use "
                "value_from: env:NAME, file:PATH or stdin: (or encrypt the whole file with SOPS)"
            )
            continue
        try:
            value = _resolve(spec, path.parent, env, read_stdin)
        except ValueError as exc:
            problems.append(f"{where}.{exc}")
            continue
        problems.extend(f"{where}: {p}" for p in _value_problems(spec, value))
        params[name] = DesiredParameter(
            name=name,
            type=spec.type,
            value=value,
            value_source=spec.value_from or "inline",
            description=spec.description,
            allowed_pattern=spec.allowed_pattern,
            data_type=spec.data_type,
            tier=spec.tier,
            kms_key=spec.kms_key,
            tags=spec.tags,
        )
    if problems:
        return _fail(source, problems)
    return DesiredState(source, paths, params, encrypted)


def _fail(source: str, problems: list[str]) -> NoReturn:
    raise DesiredStateError(source, problems)


def _value_problems(spec: ParameterSpec, value: str) -> list[str]:
    """Checks on the resolved value; messages never contain it."""
    problems = []
    if not value:
        problems.append("the value is empty (Parameter Store needs at least one character)")
    tier = spec.tier or "Standard"
    if len(value.encode()) > MAX_VALUE_BYTES[tier]:
        problems.append(f"the value is larger than {MAX_VALUE_BYTES[tier]} bytes (the {tier} tier limit)")
    if spec.allowed_pattern and not re.fullmatch(spec.allowed_pattern, value):
        problems.append("the value does not match allowed_pattern")
    return problems
