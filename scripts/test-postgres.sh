#!/usr/bin/env bash
# Start the PostgreSQL server the tests use (or find it already running) and print its URL.
#
#   bash scripts/test-postgres.sh    ->  postgresql+psycopg://digest:digest@127.0.0.1:55432/digest_test
#
# The server is Debian's `postgresql` package (installed when missing), run from
# /usr/lib/postgresql/<version>/bin on a throwaway cluster of its own in $DIGEST_TEST_PG_DIR
# (default: $TMPDIR/digest-test-postgres), never the system's `main` cluster. As root (CI) it
# runs as the `postgres` user. It listens on 127.0.0.1:$DIGEST_TEST_PG_PORT (default 55432) and
# on a unix socket in that folder; the superuser gets in only through the socket (peer auth),
# and the role `digest` (password `digest`, may create databases: the tests make one per test)
# through TCP. fsync is off: the data is disposable, and the suite runs faster.
#
# A second run reuses the running server. With DIGEST_TEST_POSTGRES_URL already set (a server
# of your own), nothing is started and that URL is printed.
set -euo pipefail

if [[ -n ${DIGEST_TEST_POSTGRES_URL:-} ]]; then
    echo "$DIGEST_TEST_POSTGRES_URL"
    exit 0
fi

dir=${DIGEST_TEST_PG_DIR:-${TMPDIR:-/tmp}/digest-test-postgres}
port=${DIGEST_TEST_PG_PORT:-55432}
data=$dir/data
run=$dir/run  # the socket and the server log, written by the server
url="postgresql+psycopg://digest:digest@127.0.0.1:$port/digest_test"

newest_bin() { find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1; }

bin=$(newest_bin)
if [[ -z $bin || ! -x $bin/pg_ctl ]]; then
    if [[ $(id -u) != 0 ]]; then
        echo "PostgreSQL is not installed: run 'sudo apt-get install postgresql' (or set DIGEST_TEST_POSTGRES_URL)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(newest_bin)
fi

if [[ $(id -u) == 0 ]]; then
    owner=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    owner=$(id -un)
    as_owner() { "$@"; }
fi

mkdir -p "$dir"
# One start at a time (e.g. `make -j`); the second waits, then finds the server up.
exec 9>"$dir/lock"
flock 9

if ! as_owner "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1; then
    version=$("$bin/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
    if [[ -f $data/PG_VERSION && $(cat "$data/PG_VERSION") != "$version" ]]; then
        rm -rf "$data"  # made by another major version; test data is disposable
    fi
    if [[ ! -f $data/PG_VERSION ]]; then
        rm -rf "$data" "$run"
        install -d -o "$owner" -m 700 "$data"
        install -d -o "$owner" -m 755 "$run"
        as_owner "$bin/initdb" -D "$data" --encoding=UTF8 --locale=C \
            --auth-local=peer --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        cat >>"$data/postgresql.conf" <<EOF

# digest's test server (scripts/test-postgres.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$run'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    # 9>&-: the server must not inherit the lock, or the next run would wait for it forever.
    if ! as_owner "$bin/pg_ctl" start -w -t 60 -D "$data" -l "$run/server.log" >/dev/null 9>&-; then
        echo "PostgreSQL did not start (is port $port taken? set DIGEST_TEST_PG_PORT); $run/server.log:" >&2
        tail -n 20 "$run/server.log" >&2
        exit 1
    fi
fi

psql_admin() { as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$run" -p "$port" -d postgres "$@"; }
if [[ -z $(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'digest'") ]]; then
    psql_admin -c "CREATE ROLE digest LOGIN CREATEDB PASSWORD 'digest'"
fi
if [[ -z $(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'digest_test'") ]]; then
    psql_admin -c "CREATE DATABASE digest_test OWNER digest"
fi

echo "$url" >"$dir/url"
echo "$url"
