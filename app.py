#!/usr/bin/env python3
"""CDK app: the stacks of one deployment (account/stage), read from a configuration file.

The file is named by the ``config`` context key: ``cdk.json`` sets the default, ``cdk synth -c config=PATH``
overrides it. An invalid file stops synthesis with the list of problems.
"""

from __future__ import annotations

import sys

import aws_cdk as cdk

from infra.config import ConfigError, load_config
from infra.stacks import add_stacks, secret_names_file

DEFAULT_CONFIG = "config/example.json"


def main() -> None:
    app = cdk.App()
    path = app.node.try_get_context("config") or DEFAULT_CONFIG
    try:
        config = load_config(path)
        # Refuses a created secret's changed name (recorded next to the file, see docs/deploying.md).
        add_stacks(app, config, secret_names=secret_names_file(path))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    app.synth()


if __name__ == "__main__":
    main()
