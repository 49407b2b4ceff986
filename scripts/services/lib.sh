# Shared helpers for scripts/services/*.sh (sourced, not run).
#
# Every service keeps its files under one state folder and writes the facts the tests need
# (a URI, a path, a partition) into one env file there, KEY=VALUE lines that both a shell
# (`. "$ENV_FILE"`) and tests/services.py read. Both can be moved with environment variables.
set -euo pipefail

STATE_DIR="${SEROTINY_SERVICES_DIR:-/var/tmp/serotiny-services}"
ENV_FILE="${SEROTINY_SERVICES_ENV:-$STATE_DIR/services.env}"

say() { printf '[services] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "run as root: it installs Debian packages and starts daemons"
}

# The packages among "$@" that dpkg does not have installed.
missing_packages() {
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$' \
      || printf '%s\n' "$package"
  done
}

# Install whichever of "$@" are missing, from Debian, without questions and without letting
# the packages' own scripts start their daemons (we start them ourselves, our way).
ensure_packages() {
  local missing
  missing="$(missing_packages "$@")"
  [ -n "$missing" ] || return 0
  need_root
  # shellcheck disable=SC2086  # one package per word
  say "installing from Debian: $(echo $missing)"
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local apt_options=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  # A fresh machine may have no package lists, or stale ones: update once, then install.
  # shellcheck disable=SC2086
  if ! apt-get install "${apt_options[@]}" --no-install-recommends $missing >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install "${apt_options[@]}" --no-install-recommends $missing >/dev/null
  fi
  [ -z "$added_policy" ] || rm -f "$policy"
  missing="$(missing_packages "$@")"
  [ -z "$missing" ] || die "could not install: $missing"
}

# Set KEY=VALUE in the env file, replacing an earlier value of KEY.
env_set() {
  local key="$1" value="$2"
  mkdir -p "$(dirname "$ENV_FILE")"
  touch "$ENV_FILE"
  { grep -v "^${key}=" "$ENV_FILE" || true; printf '%s=%s\n' "$key" "$value"; } >"$ENV_FILE.tmp"
  chmod 600 "$ENV_FILE.tmp"  # it may hold a password
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# Remove every KEY that starts with "$1" from the env file.
env_unset_prefix() {
  [ -f "$ENV_FILE" ] || return 0
  { grep -v "^$1" "$ENV_FILE" || true; } >"$ENV_FILE.tmp"
  chmod 600 "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# Whether the process whose id is in file "$1" is alive.
pid_alive() {
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# Stop the process whose id is in file "$1" (TERM, then KILL after "$2" seconds, default 20).
stop_pid_file() {
  local file="$1" grace="${2:-20}" pid
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid="$(cat "$file")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq "$((grace * 10))"); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
}

# Poll the command "$@" until it succeeds or "$WAIT_SECONDS" (default 60) pass.
wait_for() {
  local deadline=$((SECONDS + ${WAIT_SECONDS:-60}))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

random_secret() {
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

# What each service needs from Debian (installed together by `up`, in one apt run).
SERVICES=(postgres slurm chromium)
declare -A SERVICE_PACKAGES=(
  [postgres]="postgresql-15"
  [slurm]="slurm-wlm munge"
  [chromium]="chromium fonts-liberation"
)
