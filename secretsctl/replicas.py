"""``secretsctl replicas check``: does each target region hold what the replicator would put there?

The comparison is the replicator's own: this module runs
:func:`rotation_handlers.replication.reconcile.reconcile` on a
:class:`rotation_handlers.replication.engine.Engine` built from the replicator's configuration
(:func:`rotation_handlers.replication.config.load_config`), in dry-run mode for a check and for
real with ``--apply``, and only sorts the engine's results into findings. Nothing here decides
what counts as different.

The configuration is the one the replication Lambda runs with: its environment variables
(``AWS_REGION``, ``REPLICA_REGIONS``, ``REPLICATE_PATHS``, ...) taken from this process's
environment, or read from the deployed function with ``--function NAME``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rotation_handlers.replication.config import ReplicationConfig, load_config
from rotation_handlers.replication.engine import Engine, Result
from rotation_handlers.replication.reconcile import reconcile

#: The replicator's action -> the finding it means for a check.
KIND = {
    "created": "missing",
    "deleted": "extra",
    "updated": "different",
    "tagged": "different",
    "labelled": "different",
}
#: Environment variables of the replication function that ``load_config`` reads.
CONFIG_VARS = (
    "REPLICA_REGIONS",
    "REPLICATE_PATHS",
    "EXCLUDE_PATHS",
    "REPLICA_KMS_KEYS",
    "DELETE_UNMANAGED_REPLICAS",
    "ADOPT_UNMANAGED_TARGETS",
    "COPY_EC2_IMAGE_PARAMETERS",
    "REPLICATOR_ROLE_ARN",
)


@dataclass(frozen=True)
class Finding:
    region: str
    parameter: str
    kind: str  # missing | extra | different | skipped | warning | failed
    detail: str
    operations: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "region": self.region,
            "parameter": self.parameter,
            "kind": self.kind,
            "detail": self.detail,
        }
        if self.operations:
            out["operations"] = list(self.operations)
        return out


@dataclass(frozen=True)
class Report:
    source_region: str
    target_regions: tuple[str, ...]
    applied: bool
    parameters: int
    findings: tuple[Finding, ...]
    summary: Mapping[str, Any]

    @property
    def drift(self) -> list[Finding]:
        return [f for f in self.findings if f.kind in ("missing", "extra", "different")]

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "failed"]


def config_from_function(lambda_client: Any, function: str, region: str) -> ReplicationConfig:
    """The configuration a deployed replication function runs with (its environment)."""
    response = lambda_client.get_function_configuration(FunctionName=function)
    variables = (response.get("Environment") or {}).get("Variables") or {}
    env = {k: v for k, v in variables.items() if k in CONFIG_VARS}
    env["AWS_REGION"] = region  # Lambda sets it to the function's region
    return load_config(env)


def _finding(result: Result) -> Finding | None:
    if result.action == "unchanged":
        if result.warnings:
            return Finding(result.region, result.name, "warning", "; ".join(result.warnings))
        return None
    kind = KIND.get(result.action, result.action)
    detail = result.reason
    if result.error:
        detail = f"{result.reason}: {result.error}" if result.reason else result.error
    return Finding(result.region, result.name, kind, detail, tuple(result.operations))


@contextmanager
def _quiet_replicator() -> Iterator[None]:
    """The engine logs one JSON line per pair for Lambda; a terminal needs only the report."""
    logger = logging.getLogger("rotation_handlers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def check(
    config: ReplicationConfig, ssm_factory: Callable[[str], Any], *, apply: bool = False, adopt: bool = False
) -> Report:
    """Compare (and with ``apply`` repair) every target region through the replicator's reconcile.

    ``adopt`` also takes over target parameters the replicator did not create (as
    ``ADOPT_UNMANAGED_TARGETS=true`` does); without it they are reported and left alone.
    """
    if adopt:
        config = dataclasses.replace(config, adopt_unmanaged=True)
    engine = Engine(config, ssm_factory=ssm_factory, dry_run=not apply)
    with _quiet_replicator():
        summary = reconcile(engine, full=True)
    findings = [f for f in (_finding(r) for r in engine.results) if f is not None]
    findings.sort(key=lambda f: (f.parameter, f.region))
    return Report(
        config.source_region,
        config.target_regions,
        apply,
        int(summary.get("parameters", 0)),
        tuple(findings),
        {k: v for k, v in summary.items() if k not in ("changes", "changesTruncated")},
    )
