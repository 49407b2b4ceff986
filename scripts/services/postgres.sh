#!/usr/bin/env bash
# PostgreSQL 15 for the test suite: `postgres.sh up|down|status`.
#
# A server of its own (its own data folder, its own loopback port), run as the `postgres`
# service user that Debian's package creates (PostgreSQL refuses to run as root). `up`
# installs postgresql-15 when missing, makes a role that may create databases, with a
# password, and a database, and writes SEROTINY_POSTGRES_URI to the env file. Running `up`
# again changes nothing; `down` stops the server and keeps its data.
source "$(dirname "$0")/lib.sh"

PG_PORT="${SEROTINY_POSTGRES_PORT:-54329}"
PG_ROLE=serotiny
PG_DATABASE=serotiny
PG_HOME="$STATE_DIR/postgres"
PG_DATA="$PG_HOME/data"
PG_SOCKETS="$PG_HOME/run"
PG_LOG="$PG_HOME/server.log"
PG_PASSWORD_FILE="$PG_HOME/password"
PG_BIN=/usr/lib/postgresql/15/bin

# From /: the service user may not be allowed into the folder this runs from.
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

pg_running() { as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

psql_admin() {
  as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKETS" -p "$PG_PORT" \
    -d postgres "$@"
}

up() {
  need_root
  ensure_packages ${SERVICE_PACKAGES[postgres]}
  mkdir -p "$PG_HOME"
  # The service user must reach its folders through the state folder.
  chmod 755 "$STATE_DIR" "$PG_HOME"
  install -d -o postgres -g postgres -m 700 "$PG_DATA"
  install -d -o postgres -g postgres -m 755 "$PG_SOCKETS"
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    say "postgres: initdb in $PG_DATA"
    as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=peer \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! pg_running; then
    say "postgres: starting on 127.0.0.1:$PG_PORT"
    touch "$PG_LOG" && chown postgres:postgres "$PG_LOG"
    # Loopback only, sockets in our own folder; fsync off: test data, a faster suite.
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start -o \
      "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCKETS -c fsync=off \
       -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null \
      || { tail -20 "$PG_LOG" >&2; die "postgres did not start (log: $PG_LOG)"; }
  fi
  [ -s "$PG_PASSWORD_FILE" ] || (umask 077 && random_secret >"$PG_PASSWORD_FILE")
  local password
  password="$(cat "$PG_PASSWORD_FILE")"
  # The role may create databases: the tests make a fresh one per use.
  psql_admin -v role="$PG_ROLE" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN CREATEDB PASSWORD :'password';
SQL
  psql_admin -v role="$PG_ROLE" -v database="$PG_DATABASE" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
SQL
  env_set SEROTINY_POSTGRES_URI \
    "postgresql://$PG_ROLE:$password@127.0.0.1:$PG_PORT/$PG_DATABASE"
  say "postgres: up (SEROTINY_POSTGRES_URI in $ENV_FILE)"
}

down() {
  if [ -s "$PG_DATA/PG_VERSION" ] && pg_running; then
    say "postgres: stopping"
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
  fi
  env_unset_prefix SEROTINY_POSTGRES_
}

status() {
  [ -x "$PG_BIN/pg_ctl" ] && [ -s "$PG_DATA/PG_VERSION" ] && pg_running \
    && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if status; then echo "postgres: up"; else echo "postgres: down"; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
