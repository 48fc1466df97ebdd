#!/bin/sh
# pg-floor.sh - what PostgreSQL itself charges for a batch of one change,
# without libzinv: pgbench runs, on the same server and data, the bench's
# baseline (one autocommit UPDATE) and the statements libzinv-postgres sends
# for such a batch in its two round trips (BEGIN and the organization's row
# lock; then the balance, the organization's row, the journal entry and
# COMMIT).  The ratio of their latencies bounds what libzinv can reach at
# batch 1 in `zinv-bench --only postgres`.
#
#   sh tests/pg/with-cluster.sh sh tests/bench/pg-floor.sh [SECONDS]
set -eu
secs=${1:-5}
bin=${ZINV_TEST_PG_BIN:?run through tests/pg/with-cluster.sh}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
org="'00000000-0000-0000-0000-000000000001'"
loc="'00000000-0000-0000-0000-000000000002'"
var="('00000000-0000-0000-0000-' || lpad(:v::text, 12, '0'))::uuid"

"$bin/psql" -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages = warning;
ALTER SYSTEM SET synchronous_commit = on;
ALTER SYSTEM SET synchronous_standby_names = '';
SELECT pg_reload_conf();
DROP SCHEMA IF EXISTS zinv_floor CASCADE;
CREATE SCHEMA zinv_floor;
SET search_path = zinv_floor;
CREATE TABLE org_locks (org uuid PRIMARY KEY);
CREATE TABLE organizations (org uuid PRIMARY KEY, last_sequence bigint NOT NULL,
  negative_policy integer NOT NULL);
CREATE TABLE variants (org uuid, location uuid, variant uuid, product uuid,
  balance bigint NOT NULL, updated bigint NOT NULL, PRIMARY KEY (org, location, variant));
CREATE INDEX variants_by_product ON variants (org, product, location);
CREATE TABLE journal_entries (org uuid, sequence bigint, time bigint, records bytea,
  PRIMARY KEY (org, sequence));
CREATE TABLE baseline (LIKE variants INCLUDING ALL);
INSERT INTO org_locks VALUES ($org);
INSERT INTO organizations VALUES ($org, 0, 0);
INSERT INTO variants SELECT $org, $loc,
  ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid,
  '00000000-0000-0000-0000-000000000003', 1000, 0 FROM generate_series(1, 100000) i;
INSERT INTO baseline SELECT * FROM variants;
VACUUM ANALYZE;
SQL

cat >"$dir/baseline.sql" <<SQL
\set v random(1, 100000)
UPDATE zinv_floor.baseline SET balance = balance + 1, updated = 5
  WHERE org = $org AND location = $loc AND variant = $var;
SQL
cat >"$dir/libzinv.sql" <<SQL
\set v random(1, 100000)
\startpipeline
BEGIN;
SELECT pg_current_xact_id()::text FROM zinv_floor.org_locks WHERE org = $org FOR UPDATE;
\endpipeline
\startpipeline
UPDATE zinv_floor.variants SET balance = balance + 1, updated = 5
  WHERE org = $org AND location = $loc AND variant = $var;
UPDATE zinv_floor.organizations SET last_sequence = last_sequence + 1 WHERE org = $org;
INSERT INTO zinv_floor.journal_entries SELECT org, last_sequence, 5,
  pg_catalog.repeat('x', 116)::bytea FROM zinv_floor.organizations WHERE org = $org;
COMMIT;
\endpipeline
SQL

for round in 1 2; do
	for s in baseline libzinv; do
		ms=$("$bin/pgbench" -n -M prepared -T "$secs" -f "$dir/$s.sql" 2>&1 |
		     sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p')
		[ -n "$ms" ] || { echo "pg-floor: pgbench failed ($s)" >&2; exit 1; }
		printf 'round %d  %-9s %s ms a batch\n' "$round" "$s" "$ms"
	done
done
"$bin/psql" -qX -c "SET client_min_messages = warning" -c "DROP SCHEMA zinv_floor CASCADE" >/dev/null
