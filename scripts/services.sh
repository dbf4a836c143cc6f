#!/usr/bin/env bash
# Starts, stops and reports the local services AVA needs, on loopback only:
#   Redis (Debian's redis-server; append-only file fsynced on every write, maxmemory-policy noeviction as BullMQ
#   requires) and FerretDB v1 (a MongoDB wire-protocol server, built with the Go toolchain when missing) on
#   PostgreSQL 15 (Debian's, a cluster of its own under the state folder) or, with AVA_DB_BACKEND=sqlite, on SQLite.
# Usage: scripts/services.sh up|down|status
# Idempotent: `up` twice leaves one of each running; a port held by another program is an error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${AVA_SERVICES_DIR:-$ROOT/.services}"
CACHE="${AVA_CACHE_DIR:-$HOME/.cache/ava}"
REDIS_PORT="${AVA_REDIS_PORT:-6379}"
MONGO_PORT="${AVA_MONGO_PORT:-27017}"
MONGO_DEBUG_PORT="${AVA_MONGO_DEBUG_PORT:-$((MONGO_PORT + 1000))}"
PG_PORT="${AVA_PG_PORT:-55432}"
BACKEND="${AVA_DB_BACKEND:-postgresql}"
PG_BIN=/usr/lib/postgresql/15/bin
FERRETDB_VERSION="v1.24.2"
FERRETDB_BIN="$CACHE/bin/ferretdb-$FERRETDB_VERSION"

say() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_owner() { command -v ss >/dev/null && ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n1; }

wait_port() { # port name seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do port_open "$1" && return 0; sleep 0.1; done
  die "$2 did not open 127.0.0.1:$1 within $3 s; see $STATE/$2.log"
}

ensure_redis() {
  command -v redis-server >/dev/null && return
  say "installing redis-server from Debian packages"
  command -v apt-get >/dev/null || die "redis-server is missing and apt-get is not available: install Redis ≥ 6.2 and retry"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >"$CACHE/apt.log" 2>&1 \
    || die "apt-get install redis-server failed; see $CACHE/apt.log"
}

ensure_postgres() {
  [ -x "$PG_BIN/initdb" ] && return
  say "installing postgresql-15 from Debian packages"
  command -v apt-get >/dev/null || die "PostgreSQL 15 is missing and apt-get is not available: install it, or set AVA_DB_BACKEND=sqlite"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15; } >"$CACHE/apt-postgres.log" 2>&1 \
    || die "apt-get install postgresql-15 failed; see $CACHE/apt-postgres.log"
}

# PostgreSQL refuses to run as root: the cluster belongs to the `postgres` user (the package creates it), or to
# whoever runs this script when that is not root.
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

# The cluster's folder: under the state folder, unless the postgres user cannot reach it (a checkout under /root):
# then a folder of its own in /var/tmp, named after the state folder.
pg_dir() {
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$STATE" 2>/dev/null; then echo "$STATE/postgres"
  else echo "/var/tmp/ava-postgres-$(printf '%s' "$STATE" | md5sum | cut -c1-12)"; fi
}

start_postgres() {
  local dir
  dir="$(pg_dir)"
  if as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then say "postgres already running on 127.0.0.1:$PG_PORT"; return; fi
  port_open "$PG_PORT" && die "port $PG_PORT is taken by another program ($(port_owner "$PG_PORT")); stop it or set AVA_PG_PORT"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres >"$STATE/postgres-init.log" 2>&1 || die "initdb failed; see $STATE/postgres-init.log"
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $dir" start >/dev/null || die "postgres did not start; see $dir/server.log"
  as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'" | grep -q 1 \
    || as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres ferretdb
  say "postgres up on 127.0.0.1:$PG_PORT"
}

stop_postgres() {
  local dir
  dir="$(pg_dir)"
  if [ -x "$PG_BIN/pg_ctl" ] && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    say "postgres stopped"
  else
    say "postgres not running"
  fi
}

ensure_ferretdb() {
  [ -x "$FERRETDB_BIN" ] && return
  command -v go >/dev/null || die "FerretDB is missing and the Go toolchain is not installed: install Go ≥ 1.24 and retry"
  say "building FerretDB $FERRETDB_VERSION with the Go toolchain (once; cached in $CACHE/bin)"
  local src tmp
  src="$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')"
  [ -d "$src" ] || die "go mod download github.com/FerretDB/FerretDB@$FERRETDB_VERSION failed"
  # `go install` of this module panics at start-up: its build/version/version.txt is generated in their release
  # pipeline and absent from the module. Build from a copy with that file written in.
  tmp="$(mktemp -d)"
  cp -r "$src" "$tmp/ferretdb" && chmod -R u+w "$tmp/ferretdb"
  echo "$FERRETDB_VERSION" >"$tmp/ferretdb/build/version/version.txt"
  (cd "$tmp/ferretdb" && go build -o "$FERRETDB_BIN.partial" ./cmd/ferretdb) >"$CACHE/ferretdb-build.log" 2>&1 \
    || { rm -rf "$tmp"; die "building FerretDB failed; see $CACHE/ferretdb-build.log (GOTOOLCHAIN=go1.24.3 may help)"; }
  rm -rf "$tmp"
  mv "$FERRETDB_BIN.partial" "$FERRETDB_BIN"
}

start_redis() {
  if pid_alive "$STATE/redis.pid"; then say "redis already running on 127.0.0.1:$REDIS_PORT"; return; fi
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by another program ($(port_owner "$REDIS_PORT")); stop it or set AVA_REDIS_PORT"
  mkdir -p "$STATE/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --protected-mode yes \
    --appendonly yes --appendfsync always --maxmemory-policy noeviction \
    --dir "$STATE/redis" --daemonize yes --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log"
  wait_port "$REDIS_PORT" redis 10
  say "redis up on 127.0.0.1:$REDIS_PORT (append-only, noeviction)"
}

start_ferretdb() {
  if pid_alive "$STATE/ferretdb.pid"; then say "ferretdb already running on 127.0.0.1:$MONGO_PORT"; return; fi
  port_open "$MONGO_PORT" && die "port $MONGO_PORT is taken by another program ($(port_owner "$MONGO_PORT")); stop it or set AVA_MONGO_PORT"
  port_open "$MONGO_DEBUG_PORT" && die "port $MONGO_DEBUG_PORT (FerretDB debug) is taken; set AVA_MONGO_DEBUG_PORT"
  mkdir -p "$STATE/ferretdb/data" "$STATE/ferretdb/state"
  local handler=(--handler=sqlite --sqlite-url="file:$STATE/ferretdb/data/") where="SQLite in $STATE/ferretdb/data"
  if [ "$BACKEND" = postgresql ]; then
    handler=(--handler=postgresql --postgresql-url="postgres://postgres@127.0.0.1:$PG_PORT/ferretdb")
    where="PostgreSQL on 127.0.0.1:$PG_PORT"
  fi
  nohup "$FERRETDB_BIN" "${handler[@]}" --state-dir="$STATE/ferretdb/state" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr="127.0.0.1:$MONGO_DEBUG_PORT" \
    --telemetry=disable --log-level=warn >"$STATE/ferretdb.log" 2>&1 &
  echo $! >"$STATE/ferretdb.pid"
  wait_port "$MONGO_PORT" ferretdb 20
  say "ferretdb up on 127.0.0.1:$MONGO_PORT (MongoDB wire protocol, $where)"
}

stop_one() { # name
  local pidfile="$STATE/$1.pid" pid i
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; say "$1 not running"; return; fi
  pid="$(cat "$pidfile")"
  kill "$pid"
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$pidfile"
  say "$1 stopped"
}

status_one() { # name port
  if pid_alive "$STATE/$1.pid"; then echo "$1: running (pid $(cat "$STATE/$1.pid"), 127.0.0.1:$2)"; else echo "$1: stopped"; return 1; fi
}

mkdir -p "$STATE" "$CACHE/bin"
case "$BACKEND" in postgresql | sqlite) ;; *) die "AVA_DB_BACKEND must be postgresql or sqlite, not $BACKEND" ;; esac
case "${1:-}" in
  up)
    ensure_redis; ensure_ferretdb
    if [ "$BACKEND" = postgresql ]; then ensure_postgres; fi
    start_redis
    if [ "$BACKEND" = postgresql ]; then start_postgres; fi
    start_ferretdb ;;
  down) stop_one ferretdb; stop_postgres; stop_one redis ;;
  status) rc=0; status_one redis "$REDIS_PORT" || rc=1; status_one ferretdb "$MONGO_PORT" || rc=1; exit $rc ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
