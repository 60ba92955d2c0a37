#!/usr/bin/env bash
# The whole service on this machine, no AWS account: installs what it needs (scripts/setup.sh,
# idempotent), then starts throwaway PostgreSQL + MariaDB (TLS), an emulated AWS (moto), synthesizes
# the CDK app, rotates example secrets through RotateSecret with the real handler, replicates
# Parameter Store changes to two regions, shows `secretsctl status` of the rotated secrets, and stops
# everything. See docs/local-run.md.
#   ./scripts/demo.sh            # the run (under two minutes once installed)
#   ./scripts/demo.sh --check    # also verify every rotation and replica; exit 1 on any mismatch
#   ./scripts/demo.sh --keep     # keep databases and the emulated AWS running until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m devtools.localrun "$@"
