"""Record, once, the ``GenerateSecretString`` each created secret of a configuration was deployed with.

``python -m infra.record_created_secrets --config config/prod.json [--profile P]`` reads the deployed
rotation stack (DescribeStacks, GetTemplate; nothing else, nothing written to AWS) and writes
``<config>.secret-names.json`` (see ``infra.created_secrets``), which synth then keeps. ``--not-deployed``
records this app's generator for every created secret without calling AWS, for a stack never deployed.
It is the one step of a deploy that reads AWS outside the CDK CLI: synth itself never does (CDK's
advice for deterministic synthesis), exactly as a context lookup is cached in ``cdk.context.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
import boto3

from infra.config import ConfigError, load_config
from infra.created_secrets import (
    PASSWORD_ONLY,
    CreatedSecretsRecord,
    DeployedReadError,
    check_names,
    deployed_generators,
    record_file,
    updated,
)
from infra.stacks import SecretsRotationStack, add_stacks, stack_names


def record_from_deployed(
    config_path: str, *, not_deployed: bool, profile: str | None = None, session: Any = None
) -> str:
    """Record every created entry's generator: from the deployed stack, or as new (``not_deployed``)."""
    config = load_config(config_path)
    path = record_file(config_path)
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
    generators = {entry: found.get(entry, PASSWORD_ONLY) for entry in logical_ids}
    updated(config, generators).save(path)
    kept = sorted(e for e in found if found[e] != PASSWORD_ONLY)
    lines = [f"recorded {len(generators)} created secret(s) of stack {stack_name} in {path}"]
    for entry in sorted(generators):
        how = (
            "deployed, earlier generator kept verbatim"
            if entry in kept
            else "deployed"
            if entry in found
            else "not deployed yet"
        )
        lines.append(f"  {entry}: {how}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, session: Any = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.record_created_secrets",
        description=(
            "Record the GenerateSecretString each created secret of a configuration was deployed with "
            "(read from the deployed stack's template), so that no deploy or rollback regenerates a "
            "password. Writes <config>.secret-names.json; commit it. Exit codes: 0 recorded, 2 bad "
            "configuration, 3 the stack cannot be read."
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
    args = parser.parse_args(argv)
    try:
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
