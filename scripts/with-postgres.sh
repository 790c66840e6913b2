#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on a free loopback port, and stops
# the server afterwards, also when the command fails or is interrupted.
#
#   scripts/with-postgres.sh swift test
#
# The server's URL is exported as POSTGRES_TEST_URL (a trust-authenticated
# superuser `postgres`, database `postgres`): the PostgreSQL tests use it. (Not CHATBRIDGE_*:
# the exec sink's tests check that its children see exactly chatbridge's own variables.) The cluster
# lives in a temporary folder that is removed at the end. initdb refuses to run as root,
# so as root the cluster is created and run as the `postgres` user.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "with-postgres: no PostgreSQL server found (apt-get install postgresql)" >&2
  exit 1
fi

folder=$(mktemp -d /tmp/chatbridge-pg.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_owner=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$folder"
  as_owner=(runuser -u postgres --)
fi

stop() {
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$folder/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$folder"
}
trap stop EXIT
trap 'exit 130' INT TERM

"${as_owner[@]}" "$bindir/initdb" -D "$folder/data" -U postgres --auth=trust --no-sync -E UTF8 >"$folder/initdb.log" 2>&1 \
  || { cat "$folder/initdb.log" >&2; exit 1; }
# Loopback only, no Unix socket in a shared place; fsync off: a throwaway cluster.
"${as_owner[@]}" "$bindir/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $folder -c fsync=off -c max_connections=400" start >/dev/null \
  || { cat "$folder/server.log" >&2; exit 1; }

export POSTGRES_TEST_URL="postgres://postgres@127.0.0.1:$port/postgres"
# The server's binaries, for tests that run a cluster of their own (a database outage).
export POSTGRES_TEST_BIN="$bindir"
echo "with-postgres: PostgreSQL on 127.0.0.1:$port" >&2
"$@"
