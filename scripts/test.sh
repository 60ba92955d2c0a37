#!/usr/bin/env bash
# The full test suite, on a fresh Debian/Ubuntu machine: installs what is needed (idempotent),
# then lint, CDK synth with the pinned CLI + cfn-lint, and pytest (which starts and stops its own
# throwaway PostgreSQL and MariaDB servers). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "==> ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
./scripts/synth.sh
echo "==> pytest" >&2
.venv/bin/python -m pytest "$@"
