#!/bin/sh
# sqlite-floor.sh - what SQLite itself can do at batch 8,189, sync FULL,
# without libzinv: random balance updates in place by integer key (the
# floor under any store that keeps balances in a B-tree), against appending
# the same batches as one journal blob per transaction (what a write-behind
# design would acknowledge on).  WAL, 64 MiB page cache, 100,000 rows.
#
#   sh tests/bench/sqlite-floor.sh [DIR]
set -eu
dir=$(mktemp -d "${1:-${TMPDIR:-/tmp}}/sqlite-floor.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cat > "$dir/floor.c" <<'C'
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ROWS = 100000, BATCH = 8189, ROUNDS = 12 };

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void run(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", sql, err);
		exit(1);
	}
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
		exit(1);
	}
	return st;
}

static void step(sqlite3 *db, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE) {
		fprintf(stderr, "step: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	sqlite3_reset(st);
}

int main(int argc, char **argv)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	unsigned seed = 1;
	char *blob;
	double t0;

	if (argc != 2 || sqlite3_open(argv[1], &db) != SQLITE_OK)
		return 2;
	run(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	        "PRAGMA cache_size = -65536;"
	        "CREATE TABLE balances (id INTEGER PRIMARY KEY, org BLOB, location BLOB,"
	        " variant BLOB, product BLOB, balance INTEGER, updated INTEGER);"
	        "CREATE TABLE journal (id INTEGER PRIMARY KEY, records BLOB);");
	st = prepare(db, "INSERT INTO balances VALUES (?1, zeroblob(16), zeroblob(16),"
	                 " randomblob(16), randomblob(16), 0, 0)");
	run(db, "BEGIN");
	for (int i = 1; i <= ROWS; i++) {
		sqlite3_bind_int(st, 1, i);
		step(db, st);
	}
	run(db, "COMMIT");
	sqlite3_finalize(st);

	st = prepare(db, "UPDATE balances SET balance = balance + 1, updated = ?1 WHERE id = ?2");
	t0 = now();
	for (int r = 0; r < ROUNDS; r++) {
		run(db, "BEGIN");
		for (int i = 0; i < BATCH; i++) {
			seed = seed * 1103515245u + 12345u;
			sqlite3_bind_int(st, 1, r);
			sqlite3_bind_int(st, 2, 1 + (int)((seed >> 8) % ROWS));
			step(db, st);
		}
		run(db, "COMMIT");
	}
	printf("balances in place          %7.0f k changes/s\n",
	       ROUNDS * BATCH / (now() - t0) / 1e3);
	sqlite3_finalize(st);

	st = prepare(db, "INSERT INTO journal (records) VALUES (?1)");
	if (!(blob = calloc(BATCH, 64)))
		return 1;
	for (int size = 48; size <= 64; size += 16) {
		t0 = now();
		for (int r = 0; r < ROUNDS; r++) {
			run(db, "BEGIN");
			sqlite3_bind_blob(st, 1, blob, BATCH * size, SQLITE_STATIC);
			step(db, st);
			run(db, "COMMIT");
		}
		printf("journal blob only, %2d B/change %7.0f k changes/s\n", size,
		       ROUNDS * BATCH / (now() - t0) / 1e3);
	}
	sqlite3_finalize(st);
	free(blob);
	return sqlite3_close(db) == SQLITE_OK ? 0 : 1;
}
C
cc -O2 -o "$dir/floor" "$dir/floor.c" -lsqlite3
"$dir/floor" "$dir/floor.db"
