#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the integration tests, from Debian's package.
# Usage: source scripts/test-postgres.sh   (exports MLOPS_TEST_POSTGRES_URL; stop_test_postgres stops it)
# Installs the package with apt-get when it is missing (CI runs as root on Debian).

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PG_PORT=${PG_PORT:-55432}
PG_DATA=$(mktemp -d /tmp/mlops-lab-pg.XXXXXX)

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres "$PG_DATA"
as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
  -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1" start >/dev/null

export MLOPS_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
stop_test_postgres() { as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null || true; rm -rf "$PG_DATA"; }
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
