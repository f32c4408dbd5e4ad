#!/usr/bin/env bash
# Shared set-up for scripts/run and scripts/test; idempotent: a second run only checks stamps.
# Usage: source scripts/setup.sh; setup_base [dev]; [setup_postgis]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STAMPS="$ROOT/.setup-stamps"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
mkdir -p "$STAMPS"

say() { printf '\033[1m[goodmob]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[goodmob] %s\033[0m\n' "$*" >&2; exit 1; }

_sha() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
_stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
_stamp_set() { printf '%s' "$2" > "$STAMPS/$1"; }

_can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
_apt_updated=0
_apt_install() {
  if [ "$_apt_updated" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

_find_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

setup_spatialite() {
  if compgen -G "/usr/lib/*/mod_spatialite.so*" >/dev/null ||
     compgen -G "/usr/lib/mod_spatialite.so*" >/dev/null; then
    return 0
  fi
  if _can_apt; then
    _apt_install libsqlite3-mod-spatialite
  else
    die "SpatiaLite is missing. Install it with: sudo apt-get install libsqlite3-mod-spatialite"
  fi
}

# pip, without the warnings some machines' pip configuration prints for every package.
_pip() {
  "$PY" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2)
}

# setup_python [dev]: the runtime packages (requirements.txt); with "dev" also the tests',
# benchmarks' and linters' (requirements-dev.txt, which includes requirements.txt). Each kind
# has its stamp, a hash of every file it installs, so a change in either file is noticed.
setup_python() {
  local kind="${1:-runtime}" py want
  local files=("$ROOT/requirements.txt")
  case "$kind" in
    runtime) ;;
    dev) files+=("$ROOT/requirements-dev.txt") ;;
    *) die "setup_python: unknown kind '$kind' (runtime or dev)" ;;
  esac
  py="$(_find_python)" || die "Python 3.11 or newer is needed (python3.11 not found)."
  if [ ! -x "$PY" ]; then
    say "creating the virtual environment in .venv"
    "$py" -m venv "$VENV" || die "python -m venv failed; on Debian: apt-get install python3-venv"
  fi
  want="$(_sha "${files[@]}")"
  if ! _stamp_ok "pip-$kind" "$want"; then
    local req="${files[${#files[@]} - 1]}"
    say "installing Python packages (${req#"$ROOT/"})"
    _pip install --upgrade pip
    _pip install -r "$req"
    _stamp_set "pip-$kind" "$want"
    if [ "$kind" = dev ]; then  # requirements-dev.txt includes requirements.txt
      _stamp_set pip-runtime "$(_sha "$ROOT/requirements.txt")"
    fi
  fi
}

setup_npm() {
  command -v npm >/dev/null 2>&1 || die "npm is needed for the web app's packages (install Node.js)."
  local want
  want="$(_sha "$ROOT/pwa/package.json" "$ROOT/pwa/package-lock.json")"
  if ! _stamp_ok npm "$want" || [ ! -d "$ROOT/pwa/node_modules" ]; then
    say "installing web packages (pwa/package-lock.json)"
    (cd "$ROOT/pwa" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    _stamp_set npm "$want"
  fi
  # The vendor files the app serves (pwa/vendor is rebuilt from node_modules, not committed).
  local nm="$ROOT/pwa/node_modules" vendor="$ROOT/pwa/vendor"
  if [ ! -f "$vendor/.stamp" ] || [ "$(cat "$vendor/.stamp")" != "$want" ]; then
    rm -rf "$vendor"; mkdir -p "$vendor/leaflet" "$vendor/leaflet-geoman" "$vendor/socket.io"
    cp -r "$nm/leaflet/dist/." "$vendor/leaflet/"
    cp "$nm/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css" \
       "$nm/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js" "$vendor/leaflet-geoman/"
    cp "$nm/socket.io-client/dist/socket.io.esm.min.js" "$vendor/socket.io/"
    printf '%s' "$want" > "$vendor/.stamp"
  fi
}

# setup_base [dev]: "dev" for the test command (the test tools' Python packages too).
setup_base() {
  setup_spatialite
  setup_python "${1:-runtime}"
  setup_npm
}

# Debian's Chromium for the browser tests (Playwright drives it with executable_path; it never
# downloads a browser). Returns non-zero, with the exact command, when it cannot be installed.
setup_browser() {
  local chromium="${CHROMIUM:-/usr/bin/chromium}"
  [ -x "$chromium" ] && return 0
  if _can_apt; then
    _apt_install chromium
    [ -x "$chromium" ] && return 0
  fi
  say "Chromium is missing: the browser tests need it. Install it with: sudo apt-get install chromium"
  return 1
}

# PostGIS for the PostgreSQL on 127.0.0.1:5432 (the test suite's second backend).
# Returns non-zero, with a message, when it cannot be made ready.
setup_postgis() {
  local pg="${TEST_PG_HOST:-127.0.0.1}" psql_cmd
  psql_cmd=(psql -h "$pg" -U postgres -d postgres -tAq)
  command -v psql >/dev/null 2>&1 || { say "psql not found: PostGIS tests will not run"; return 1; }
  if ! "${psql_cmd[@]}" -c 'SELECT 1' >/dev/null 2>&1; then
    say "PostgreSQL is not reachable at $pg:5432"; return 1
  fi
  if [ -n "$("${psql_cmd[@]}" -c "SELECT 1 FROM pg_available_extensions WHERE name='postgis'")" ]; then
    return 0
  fi
  local major
  major="$("${psql_cmd[@]}" -c 'SHOW server_version_num' | cut -c1-2)"
  if _can_apt; then
    _apt_install "postgresql-${major}-postgis-3"
  else
    say "PostGIS is not installed: sudo apt-get install postgresql-${major}-postgis-3"; return 1
  fi
  [ -n "$("${psql_cmd[@]}" -c "SELECT 1 FROM pg_available_extensions WHERE name='postgis'")" ]
}
