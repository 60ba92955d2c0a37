#!/usr/bin/env bash
# Synthesize the CDK app with the pinned CDK CLI (package.json) and lint every template with cfn-lint.
# Needs no AWS credentials and no Docker. Exits non-zero on any synth error, cdk-nag finding that is
# not acknowledged, or cfn-lint error.
#   scripts/synth.sh                       # the example configuration (cdk.json's default)
#   scripts/synth.sh config/prod.json      # another configuration
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=${1:-config/example.json}
OUT=${CDK_SYNTH_OUT:-cdk.out}
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=${JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION:-20}
export CDK_DISABLE_CLI_TELEMETRY=true
export CDK_DISABLE_VERSION_CHECK=true

if [ ! -x node_modules/.bin/cdk ]; then
  echo "==> npm ci (pinned CDK CLI)" >&2
  npm ci --silent --no-audit --no-fund >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  echo "error: .venv is missing; run scripts/setup.sh first" >&2
  exit 1
fi

rm -rf "$OUT"
echo "==> cdk synth (config: $CONFIG)" >&2
npx --no-install cdk synth --no-notices --no-version-reporting --ci --quiet \
  -c "config=$CONFIG" --output "$OUT" >/dev/null

shopt -s nullglob
templates=("$OUT"/*.template.json)
if [ ${#templates[@]} -eq 0 ]; then
  echo "error: no templates in $OUT" >&2
  exit 1
fi
echo "==> cfn-lint ${templates[*]}" >&2
# Exit codes: 2 = errors, 4 = warnings, 8 = informational; fail on errors only.
set +e
.venv/bin/cfn-lint --format parseable -- "${templates[@]}"
rc=$?
set -e
if [ $((rc & 2)) -ne 0 ] || [ $((rc & 1)) -ne 0 ]; then
  echo "error: cfn-lint found errors" >&2
  exit 1
fi
echo "==> ok: ${#templates[@]} template(s) synthesized and linted" >&2
