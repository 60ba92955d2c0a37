"""Record, once, the ``GenerateSecretString`` each created secret of a configuration was deployed with.

``python -m infra.record_created_secrets --config config/prod.json [--profile P]`` reads the deployed
rotation stack (DescribeStacks, GetTemplate; nothing else, nothing written to AWS) and writes
``<config>.secret-names.json`` (see ``infra.created_secrets``), which synth then keeps. ``--not-deployed``
records this app's generator for every created secret without calling AWS, for a stack never deployed.
``--check`` writes nothing and exits 4 when a deploy would change the ``GenerateSecretString`` of a
secret the stack holds (a record that does not match it): a pipeline runs it before ``cdk deploy``.
It is the one step of a deploy that reads AWS outside the CDK CLI: synth itself never does (CDK's
advice for deterministic synthesis), exactly as a context lookup is cached in ``cdk.context.json``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3

from infra.config import ConfigError, DeploymentConfig, load_config
from infra.created_secrets import (
    CreatedSecretsRecord,
    DeployedReadError,
    check_names,
    deployed_generators,
    resolve_generators,
    secret_names_file,
    updated,
)
from infra.secret_fields import PASSWORD_ONLY_GENERATOR
from infra.stacks import SecretsRotationStack, add_stacks, stack_names


@dataclass
class Deployed:
    config: DeploymentConfig
    path: Path
    record: CreatedSecretsRecord
    stack_name: str
    entries: list[str]  # the created entries, in this app's template
    found: dict[str, Any]  # entry -> GenerateSecretString of those the stack already holds


def read_deployed(
    config_path: str, *, not_deployed: bool, profile: str | None = None, session: Any = None
) -> Deployed:
    """The configuration, its record, and what its deployed rotation stack holds (nothing read from
    AWS when ``not_deployed``)."""
    config = load_config(config_path)
    path = secret_names_file(config_path)
    record = CreatedSecretsRecord.load(path)
    check_names(config, record, path)
    stack_name = stack_names(config)[0]
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stacks = add_stacks(app, config, nag=False)
    rotation = next((s for s in stacks if isinstance(s, SecretsRotationStack)), None)
    logical_ids = rotation.created_secret_logical_ids() if rotation is not None else {}
    found: dict[str, Any] = {}
    if not not_deployed and logical_ids:
        if session is None:
            session = boto3.Session(profile_name=profile, region_name=config.region)
        account = session.client("sts").get_caller_identity()["Account"]
        if account != config.account:
            raise DeployedReadError(
                f"the credentials are for account {account}; {config_path} deploys to account "
                f"{config.account}"
            )
        found = deployed_generators(session.client("cloudformation"), stack_name, logical_ids)
    return Deployed(config, path, record, stack_name, sorted(logical_ids), found)


def record_from_deployed(
    config_path: str, *, not_deployed: bool, profile: str | None = None, session: Any = None
) -> str:
    """Record every created entry's generator: from the deployed stack, or as new (``not_deployed``)."""
    d = read_deployed(config_path, not_deployed=not_deployed, profile=profile, session=session)
    generators = {entry: d.found.get(entry, PASSWORD_ONLY_GENERATOR) for entry in d.entries}
    updated(d.config, generators).save(d.path)
    lines = [f"recorded {len(generators)} created secret(s) of stack {d.stack_name} in {d.path}"]
    for entry in d.entries:
        how = (
            "not deployed yet"
            if entry not in d.found
            else "deployed"
            if d.found[entry] == PASSWORD_ONLY_GENERATOR
            else "deployed, earlier generator kept verbatim"
        )
        lines.append(f"  {entry}: {how}")
    return "\n".join(lines)


def check_against_deployed(
    config_path: str, *, profile: str | None = None, session: Any = None
) -> tuple[bool, str]:
    """Whether the record keeps exactly the generator of every created secret the stack holds (so a
    deploy regenerates none); the differences, named. Writes nothing."""
    d = read_deployed(config_path, not_deployed=False, profile=profile, session=session)
    generators, unknown = resolve_generators(d.config, d.record)
    problems = []
    for entry in d.entries:
        if entry not in d.found:
            continue
        if entry in unknown:
            problems.append(f"  {entry}: deployed, its generator not recorded (synth refuses it)")
        elif generators[entry] != d.found[entry]:
            problems.append(
                f"  {entry}: the recorded GenerateSecretString is not the deployed one: a deploy would "
                "regenerate its password"
            )
    if problems:
        head = f"{d.path} does not match stack {d.stack_name}; record what is deployed (without --check):"
        return False, "\n".join([head, *problems])
    return True, f"{d.path} matches stack {d.stack_name} ({len(d.found)} deployed created secret(s))"


def main(argv: list[str] | None = None, session: Any = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.record_created_secrets",
        description=(
            "Record the GenerateSecretString each created secret of a configuration was deployed with "
            "(read from the deployed stack's template), so that no deploy or rollback regenerates a "
            "password. Writes <config>.secret-names.json; commit it. Exit codes: 0 recorded (or, with "
            "--check, matching), 2 bad configuration, 3 the stack cannot be read, 4 --check found a "
            "difference."
        ),
    )
    parser.add_argument("--config", required=True, help="the configuration file (as given to cdk synth)")
    parser.add_argument(
        "--profile", help="AWS profile for the configuration's account (default: the environment's)"
    )
    parser.add_argument(
        "--not-deployed",
        action="store_true",
        help="the rotation stack was never deployed: record this app's generator for every created secret "
        "without calling AWS",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 4 if a deploy of this configuration would change the GenerateSecretString "
        "of a secret the stack holds (for a pipeline, before cdk deploy)",
    )
    args = parser.parse_args(argv)
    if args.check and args.not_deployed:
        parser.error("--check reads the deployed stack: it cannot be combined with --not-deployed")
    try:
        if args.check:
            ok, text = check_against_deployed(args.config, profile=args.profile, session=session)
            print(text, file=sys.stdout if ok else sys.stderr)
            return 0 if ok else 4
        print(
            record_from_deployed(
                args.config, not_deployed=args.not_deployed, profile=args.profile, session=session
            )
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except DeployedReadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:
        print(f"error: cannot read the deployed stack: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
