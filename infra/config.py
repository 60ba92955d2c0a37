"""Deployment configuration: loading, and the problems in this project's words.

One JSON file per deployment (account/stage). ``cdk.json`` names the default file in the ``config``
context key; ``cdk synth -c config=PATH`` overrides it. The file is validated into the pydantic models
of ``infra.config_schema`` (published as ``config/schema.json`` for editors), which the stacks read as
they are. Problems are reported with the JSON path of the offending value, all at once: first every
field (type, format, range, unknown keys), then, once every field is valid, every rule that relates
fields to each other (the models' validators).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from infra import config_schema as schema
from infra.config_schema import cron_hours, min_cron_gap, normalize_path


class ConfigError(ValueError):
    """The configuration file is invalid; ``errors`` lists every problem as ``path: message``."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"invalid configuration {source} ({len(errors)} problem(s)):\n{lines}")


#: The validated configuration of one deployment, as the stacks read it.
DeploymentConfig = schema.Deployment

__all__ = [
    "ConfigError",
    "DeploymentConfig",
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
        if kind == schema.RULES_ERROR:
            out += [f"{_path(loc + tuple(sub))}: {message}" for sub, message in e["ctx"]["problems"]]
        elif kind == "extra_forbidden":
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


def parse_config(raw: Any, source: str = "<config>", base_dir: Path | None = None) -> DeploymentConfig:
    """Validate a decoded JSON document; raise ``ConfigError`` listing every problem. Relative file
    paths inside it are relative to ``base_dir`` (default: the working directory)."""
    try:
        # JSON mode: strict types as JSON has them (lists for tuples, no "30" for 30).
        cfg = schema.Deployment.model_validate_json(
            json.dumps(raw), context={"base_dir": base_dir or Path.cwd()}
        )
    except ValidationError as exc:
        raise ConfigError(source, _field_errors(exc)) from None
    cfg._source = source
    return cfg


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
