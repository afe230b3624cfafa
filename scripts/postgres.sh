#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the `netspec tune` worker tests.
#   eval "$(bash scripts/postgres.sh start)"   # exports NETSPEC_TEST_POSTGRES (a URL) and
#                                              # NETSPEC_TEST_POSTGRES_DIR (its data folder)
#   bash scripts/postgres.sh stop "$NETSPEC_TEST_POSTGRES_DIR"
# As root with apt-get, it installs Debian's `postgresql` package first if needed. Without a
# server it prints nothing and exits 0: the tests that need one skip.
set -euo pipefail
as_pg() {  # the server refuses to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

case "${1:-start}" in
stop)
  [ -n "${2:-}" ] && [ -d "$2/data" ] || exit 0
  as_pg "$(bin)/pg_ctl" -D "$2/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$2"
  ;;
start)
  if [ -z "$(bin)" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends postgresql) >/dev/null 2>&1 || true
  fi
  BIN=$(bin)
  if [ -z "$BIN" ]; then
    echo "warning: no PostgreSQL server; the tune worker tests skip" >&2
    exit 0
  fi
  DIR=$(mktemp -d /tmp/netspec-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
  PORT=55432
  while (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do PORT=$((PORT + 1)); done
  PW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/data/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200" start >/dev/null
  as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -qX \
    -c "CREATE ROLE netspec LOGIN PASSWORD '$PW'" -c "CREATE DATABASE netspec OWNER netspec"
  echo "export NETSPEC_TEST_POSTGRES=postgresql://netspec:$PW@127.0.0.1:$PORT/netspec"
  echo "export NETSPEC_TEST_POSTGRES_DIR=$DIR"
  ;;
*)
  echo "usage: $0 start | stop DIR" >&2
  exit 2
  ;;
esac
