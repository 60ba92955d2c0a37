#!/usr/bin/env bash
# The full test suite, on a fresh Debian/Ubuntu machine: installs what is needed (idempotent),
# then lint, CDK synth with the pinned CLI + cfn-lint, a strict build of the documentation site, and
# pytest (which starts and stops its own throwaway PostgreSQL and MariaDB servers; tests/docs checks
# the site built here). Extra arguments go to pytest. (No `mkdocs --quiet`: it hides the warnings that
# --strict turns into failures, and the build then passes with broken links.)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "==> ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
./scripts/synth.sh
echo "==> docs (mkdocs build --strict)" >&2
DOCS_SITE_DIR=$(mktemp -d)
export DOCS_SITE_DIR
trap 'rm -rf "$DOCS_SITE_DIR"' EXIT
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$DOCS_SITE_DIR"
echo "==> pytest" >&2
.venv/bin/python -m pytest "$@"
