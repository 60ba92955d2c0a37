#!/usr/bin/env bash
# Optional: scan the synthesized templates with checkov (pinned in requirements-checkov.txt, installed
# once into .venv-checkov). Findings that do not apply are acknowledged in the templates themselves
# (Metadata checkov.skip, each with its reason; see infra/nag.py). Exits non-zero on any other finding.
#   scripts/checkov.sh                     # synthesizes config/example.json first (scripts/synth.sh)
#   scripts/checkov.sh config/prod.json
#   CHECKOV_NO_SYNTH=1 scripts/checkov.sh  # scan the templates already in ${CDK_SYNTH_OUT:-cdk.out}
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${CDK_SYNTH_OUT:-cdk.out}
if [ ! -x .venv-checkov/bin/checkov ]; then
  echo "==> installing checkov into .venv-checkov" >&2
  python3 -m venv .venv-checkov
  if [ -x .venv/bin/uv ]; then
    .venv/bin/uv pip install -q --python .venv-checkov/bin/python -r requirements-checkov.txt
  else
    .venv-checkov/bin/python -m pip install -q --disable-pip-version-check -r requirements-checkov.txt
  fi
fi
if [ -z "${CHECKOV_NO_SYNTH:-}" ]; then
  scripts/synth.sh "${1:-config/example.json}"
fi

shopt -s nullglob
templates=("$OUT"/*.template.json)
if [ ${#templates[@]} -eq 0 ]; then
  echo "error: no templates in $OUT" >&2
  exit 1
fi
args=()
for t in "${templates[@]}"; do args+=(-f "$t"); done
echo "==> checkov ${templates[*]}" >&2
.venv-checkov/bin/checkov --framework cloudformation --compact --quiet --skip-download "${args[@]}"
echo "==> ok: no checkov finding without a written reason" >&2
