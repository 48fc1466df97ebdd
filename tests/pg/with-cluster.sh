#!/bin/sh
# with-cluster.sh - run a command against a throwaway PostgreSQL cluster.
#
#   sh tests/pg/with-cluster.sh CMD [ARGS...]
#
# Creates a cluster (initdb + pg_ctl from `pg_config --bindir`, else the
# highest /usr/lib/postgresql/*/bin) in a mkdtemp directory, listening on a
# free TCP port of 127.0.0.1 and on a unix socket in that directory; runs
# CMD with these exported, then always stops the cluster and removes the
# directory, exiting with CMD's status:
#
#   ZINV_TEST_PG        conninfo of the superuser on database "zinv_test"
#   ZINV_TEST_PG_DIR    the cluster's directory (data/, socket/, server.log)
#   ZINV_TEST_PG_BIN    the PostgreSQL bin directory (pg_ctl, psql)
#   ZINV_TEST_PG_RUN    prefix for running server programs as the cluster's
#                       owner ("runuser -u postgres --" as root, else "")
#   ZINV_TEST_PG_PW_USER, ZINV_TEST_PG_PW_PASS  a role that must log in
#                       with a password (scram-sha-256, over TCP only)
#   PGHOST PGPORT PGUSER PGDATABASE             the same, for libpq/psql
#
# As root (CI) the server runs as the `postgres` system user, since initdb
# refuses root.  pg_hba: local (socket) trust for everyone, host
# scram-sha-256.  Settings: fsync on, small shared_buffers,
# synchronous_commit = local with synchronous_standby_names set to a
# standby that never exists, so that a session choosing
# synchronous_commit = on hangs in COMMIT after committing locally (the
# in-doubt COMMIT test).  If the cluster cannot start, the server log is
# printed and the script fails (status 1); it never skips.
set -u
[ $# -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

bin=$(pg_config --bindir 2>/dev/null)
[ -x "$bin/initdb" ] || bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "with-cluster: no initdb found (install postgresql)" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/zinv-pg-XXXXXX") || exit 1
run=""
if [ "$(id -u)" = 0 ]; then
	run="runuser -u postgres --"
	chown postgres "$dir"
	chmod 700 "$dir"
fi
export ZINV_TEST_PG_DIR="$dir" ZINV_TEST_PG_BIN="$bin" ZINV_TEST_PG_RUN="$run"

cleanup() {
	$run "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "with-cluster: $1" >&2
	[ -f "$dir/server.log" ] && { echo "--- server log:" >&2; cat "$dir/server.log" >&2; }
	exit 1
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
	|| fail "cannot pick a free port"
su=$(if [ -n "$run" ]; then echo postgres; else id -un; fi)

$run mkdir -p "$dir/data" "$dir/socket" || fail "cannot create directories"
$run "$bin/initdb" -D "$dir/data" -U "$su" -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
	|| { cat "$dir/initdb.log" >&2; fail "initdb failed"; }
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/socket'
shared_buffers = 16MB
max_connections = 100
fsync = on
synchronous_commit = local
synchronous_standby_names = 'zinv_standby_that_never_exists'
password_encryption = 'scram-sha-256'
log_min_messages = warning
CONF
cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 scram-sha-256
HBA
$run "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1 \
	|| fail "the server did not start"

export PGHOST="$dir/socket" PGPORT="$port" PGUSER="$su" PGDATABASE=zinv_test
export ZINV_TEST_PG_PW_USER=zinv_pw ZINV_TEST_PG_PW_PASS=zinv-secret
"$bin/psql" -qX -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL || fail "cannot set the cluster up"
CREATE DATABASE zinv_test;
CREATE ROLE zinv_pw LOGIN PASSWORD 'zinv-secret';
GRANT ALL ON DATABASE zinv_test TO zinv_pw;
SQL
"$bin/psql" -qX -v ON_ERROR_STOP=1 -d zinv_test -c "GRANT ALL ON SCHEMA public TO zinv_pw" \
	>/dev/null || fail "cannot set the cluster up"
export ZINV_TEST_PG="host=$dir/socket port=$port user=$su dbname=zinv_test"

"$@"
