#!/usr/bin/env bash
# The system tools the test suite needs beyond Python packages, checked (and installed when it can)
# by `make test` before the tests run:
#   postgresql      server binaries (initdb, pg_ctl) for the throwaway test server (tests/_postgres.py)
#   chromium        /usr/bin/chromium, driven by Playwright in the dashboard's browser tests
#   docker-compose  static validation of docker-compose.yml (no Docker engine runs)
#   python3-venv    only while $VENV (.venv) does not exist yet and $PYTHON cannot create it
# Found: nothing to do. Missing, as root with apt-get (Debian, Ubuntu): says what it installs and
# installs it. Missing otherwise: stops with one line naming what is missing.
#
# Usage: scripts/ensure_test_deps.sh [--dry-run]   (--dry-run: say what would be done, change nothing)
# For tests of this script, the places it looks can be moved:
#   ENSURE_DEPS_PG_BINDIRS   folders that may hold initdb + pg_ctl (default /usr/lib/postgresql/*/bin)
#   ENSURE_DEPS_CHROMIUM     the browser the tests launch (default /usr/bin/chromium)
#   ENSURE_DEPS_UID          the user id (default: id -u)     ENSURE_DEPS_APT_GET  (default apt-get)
set -euo pipefail

dry_run=0
case "${1:-}" in
  --dry-run) dry_run=1 ;;
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac

chromium="${ENSURE_DEPS_CHROMIUM:-/usr/bin/chromium}"
uid="${ENSURE_DEPS_UID:-$(id -u)}"
apt_get="${ENSURE_DEPS_APT_GET:-apt-get}"

have_postgres() {
  local dirs=() dir
  if [ -n "${ENSURE_DEPS_PG_BINDIRS:-}" ]; then
    read -r -a dirs <<<"$ENSURE_DEPS_PG_BINDIRS"
  else
    if command -v pg_config >/dev/null 2>&1; then
      dirs+=("$(pg_config --bindir)")
    fi
    if command -v initdb >/dev/null 2>&1; then
      dirs+=("$(dirname "$(command -v initdb)")")
    fi
    shopt -s nullglob
    dirs+=(/usr/lib/postgresql/*/bin)
    shopt -u nullglob
  fi
  for dir in "${dirs[@]}"; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      return 0
    fi
  done
  return 1
}

missing=()
venv="${VENV:-.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ] && ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)  # Debian's python3 creates no venv without it
fi
have_postgres || missing+=(postgresql)
[ -x "$chromium" ] || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "test dependencies: PostgreSQL server binaries, Chromium and docker-compose are installed"
  exit 0
fi

if [ "$uid" != 0 ] || ! command -v "$apt_get" >/dev/null 2>&1; then
  why="not root"
  [ "$uid" = 0 ] && why="no apt-get"
  echo "make test: missing ${missing[*]} (${why}, so not installed here): install them with the" \
    "system's package manager (Debian: apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "test dependencies: installing ${missing[*]} with apt-get"
if [ "$dry_run" = 1 ]; then
  echo "dry run: would run: $apt_get update -q && $apt_get install -y -q ${missing[*]}"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"$apt_get" update -q
"$apt_get" install -y -q "${missing[@]}"
