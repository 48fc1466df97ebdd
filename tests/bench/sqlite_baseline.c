/*
 * sqlite_baseline.c - libzinv-sqlite against hand-written SQLite.
 *
 * For sync FULL and NORMAL and batch sizes 1, 100 and 1000, runs batches of
 * read-modify-write balance updates for a fixed time three ways, each on a
 * fresh file in the same run:
 *
 *   zinv      inv_apply_changes() on a store opened with inv_store_open_sqlite()
 *   baseline  prepared statements, one BEGIN IMMEDIATE .. COMMIT per batch:
 *             per change SELECT the balance, then UPDATE it (INSERT when new)
 *   +journal  the baseline plus what libzinv must also store per batch: the
 *             organization's sequence, a journal entry and one journal
 *             record per change
 *
 * and prints batches/s, changes/s and zinv's ratio to each baseline, then
 * the CPU time per change of each (the machine's other load moves the
 * throughput numbers much more than the CPU ones).
 *
 * Standalone (not part of `make check`).  Build and run from the top:
 *
 *   make && cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude \
 *       tests/bench/sqlite_baseline.c -o build/sqlite_baseline -Llib \
 *       -Wl,-rpath,$PWD/lib -lzinv-sqlite -lzinv -lsqlite3
 *   build/sqlite_baseline [seconds-per-case] [directory] [size]
 *
 * `size` runs only that batch size, and BENCH_ONLY=zinv|base|journal only
 * that program (for profiling one case).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <zinv.h>
#include <zinv/sqlite.h>

enum { VARIANTS = 1000 };

static double seconds_per_case = 1.0;
static long only_kind = -1; /* profiling: 0 zinv, 1 baseline, 2 +journal */
static const char *dir = "/tmp";

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "%s: %d (%s)\n", what, rc, inv_error_last()->message);
	exit(1);
}

static void fresh_path(char *out, size_t n, const char *tag)
{
	char side[300];

	snprintf(out, n, "%s/zinv-bench-%ld-%s.db", dir, (long)getpid(), tag);
	unlink(out);
	snprintf(side, sizeof(side), "%s-wal", out);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", out);
	unlink(side);
}

static void remove_db(const char *path)
{
	char side[300];

	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

static inv_uuid uuid_n(unsigned tag, unsigned n)
{
	inv_uuid u;

	memset(&u, 0, sizeof(u));
	u.bytes[0] = (uint8_t)tag;
	u.bytes[6] = 0x40;
	u.bytes[8] = 0x80;
	u.bytes[14] = (uint8_t)(n >> 8);
	u.bytes[15] = (uint8_t)n;
	return u;
}

/* Change i of batch k: alternately receive and sell one unit of a variant,
 * walking over all VARIANTS so that big batches touch distinct rows. */
static unsigned change_variant(long k, size_t size, size_t i)
{
	return (unsigned)(((size_t)k * size + i) % VARIANTS);
}

static int change_receives(long k, size_t i)
{
	return ((size_t)k + i) % 2 == 0;
}

struct rate {
	long batches;
	double secs;
	double cpu;     /* CPU seconds of this process, user + system */
};

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ libzinv */

static struct rate run_zinv(int sync, size_t size)
{
	inv_sqlite_options so = INV_SQLITE_OPTIONS_INIT;
	inv_store *store;
	inv_org *org;
	const inv_location *store_loc, *sold, *supplier;
	const inv_variant *v[VARIANTS];
	inv_change *changes = calloc(size, sizeof(*changes));
	inv_uuid org_uuid = uuid_n(1, 1), product = uuid_n(2, 1);
	char path[256];
	struct rate r = { 0, 0, 0 };
	double t0, c0;
	int rc;
	unsigned i;

	fresh_path(path, sizeof(path), "zinv");
	so.sync = sync;
	if ((rc = inv_store_open_sqlite(&store, path, &so, NULL)))
		die("open", rc);
	if ((rc = inv_org_open(&org, store, &org_uuid)))
		die("org", rc);
	inv_location_by_type(&store_loc, org, INV_LOCATION_STORE);
	inv_location_by_type(&sold, org, INV_LOCATION_SOLD);
	inv_location_by_type(&supplier, org, INV_LOCATION_SUPPLIER);
	if ((rc = inv_tracking_start(org, &product)))
		die("tracking", rc);
	for (i = 0; i < VARIANTS; i++) {
		inv_uuid u = uuid_n(3, i);

		if ((rc = inv_variant_get(&v[i], org, &product, &u)))
			die("variant", rc);
	}
	t0 = now();
	c0 = cpu_now();
	do {
		size_t j;

		for (j = 0; j < size; j++) {
			int in = change_receives(r.batches, j);

			changes[j].variant = v[change_variant(r.batches, size, j)];
			changes[j].from = in ? supplier : store_loc;
			changes[j].to = in ? store_loc : sold;
			changes[j].quantity = 1;
		}
		if ((rc = inv_apply_changes(NULL, org, changes, size, NULL)))
			die("apply", rc);
		r.batches++;
		r.secs = now() - t0;
	} while (r.secs < seconds_per_case);
	r.cpu = cpu_now() - c0;
	inv_org_close(org);
	inv_store_close(store);
	remove_db(path);
	free(changes);
	return r;
}

/* ------------------------------------------------------------ baseline */

static void sql(sqlite3 *db, const char *s)
{
	char *msg = NULL;

	if (sqlite3_exec(db, s, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", s, msg ? msg : "?");
		exit(1);
	}
}

static sqlite3_stmt *prep(sqlite3 *db, const char *s)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v3(db, s, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", s, sqlite3_errmsg(db));
		exit(1);
	}
	return st;
}

static void step_done(sqlite3 *db, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE) {
		fprintf(stderr, "step: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	sqlite3_reset(st);
}

static struct rate run_baseline(int sync, size_t size, int with_journal)
{
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *get, *upd, *ins, *seq_get, *seq_put, *entry, *rec;
	inv_uuid org = uuid_n(1, 1), loc = uuid_n(4, 1), product = uuid_n(2, 1);
	inv_uuid from_other = uuid_n(4, 4), to_other = uuid_n(4, 2);
	char path[256];
	struct rate r = { 0, 0, 0 };
	double t0, c0;

	fresh_path(path, sizeof(path), with_journal ? "journal" : "baseline");
	if (sqlite3_open(path, &db) != SQLITE_OK)
		exit(1);
	sql(db, "PRAGMA journal_mode = WAL");
	sql(db, sync == INV_SQLITE_SYNC_FULL ? "PRAGMA synchronous = FULL"
	                                     : "PRAGMA synchronous = NORMAL");
	sql(db, "CREATE TABLE variants (org BLOB, location BLOB, variant BLOB, product BLOB,"
	        " balance INTEGER, updated INTEGER, PRIMARY KEY (org, location, variant))"
	        " WITHOUT ROWID;"
	        "CREATE TABLE organizations (org BLOB PRIMARY KEY, last_sequence INTEGER)"
	        " WITHOUT ROWID;"
	        "CREATE TABLE journal_entries (org BLOB, sequence INTEGER, time INTEGER,"
	        " record_count INTEGER, PRIMARY KEY (org, sequence)) WITHOUT ROWID;"
	        "CREATE TABLE journal_records (org BLOB, sequence INTEGER, idx INTEGER,"
	        " kind INTEGER, product BLOB, variant BLOB, from_location BLOB,"
	        " to_location BLOB, location BLOB, quantity INTEGER, before_balance INTEGER,"
	        " after_balance INTEGER, PRIMARY KEY (org, sequence, idx)) WITHOUT ROWID;");
	begin = prep(db, "BEGIN IMMEDIATE");
	commit = prep(db, "COMMIT");
	get = prep(db, "SELECT balance FROM variants WHERE org = ?1 AND location = ?2 AND"
	               " variant = ?3");
	upd = prep(db, "UPDATE variants SET balance = ?4, updated = ?5 WHERE org = ?1 AND"
	               " location = ?2 AND variant = ?3");
	ins = prep(db, "INSERT INTO variants VALUES (?1, ?2, ?3, ?6, ?4, ?5)");
	seq_get = prep(db, "SELECT last_sequence FROM organizations WHERE org = ?1");
	seq_put = prep(db, "INSERT OR REPLACE INTO organizations VALUES (?1, ?2)");
	entry = prep(db, "INSERT INTO journal_entries VALUES (?1, ?2, ?3, ?4)");
	rec = prep(db, "INSERT INTO journal_records VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7,"
	               " ?8, 1, ?9, ?10)");
	t0 = now();
	c0 = cpu_now();
	do {
		int64_t seq = 0, time_ms = (int64_t)(now() * 1000);
		size_t j;

		step_done(db, begin);
		if (with_journal) {
			sqlite3_bind_blob(seq_get, 1, org.bytes, 16, SQLITE_STATIC);
			if (sqlite3_step(seq_get) == SQLITE_ROW)
				seq = sqlite3_column_int64(seq_get, 0);
			sqlite3_reset(seq_get);
			seq++;
		}
		for (j = 0; j < size; j++) {
			inv_uuid var = uuid_n(3, change_variant(r.batches, size, j));
			int in = change_receives(r.batches, j), found;
			int64_t before = 0, after;
			sqlite3_stmt *w;

			sqlite3_bind_blob(get, 1, org.bytes, 16, SQLITE_STATIC);
			sqlite3_bind_blob(get, 2, loc.bytes, 16, SQLITE_STATIC);
			sqlite3_bind_blob(get, 3, var.bytes, 16, SQLITE_STATIC);
			found = sqlite3_step(get) == SQLITE_ROW;
			if (found)
				before = sqlite3_column_int64(get, 0);
			sqlite3_reset(get);
			after = before + (in ? 1 : -1);
			w = found ? upd : ins;
			sqlite3_bind_blob(w, 1, org.bytes, 16, SQLITE_STATIC);
			sqlite3_bind_blob(w, 2, loc.bytes, 16, SQLITE_STATIC);
			sqlite3_bind_blob(w, 3, var.bytes, 16, SQLITE_STATIC);
			sqlite3_bind_int64(w, 4, after);
			sqlite3_bind_int64(w, 5, time_ms);
			if (!found)
				sqlite3_bind_blob(w, 6, product.bytes, 16, SQLITE_STATIC);
			step_done(db, w);
			if (with_journal) {
				sqlite3_bind_blob(rec, 1, org.bytes, 16, SQLITE_STATIC);
				sqlite3_bind_int64(rec, 2, seq);
				sqlite3_bind_int64(rec, 3, (int64_t)j);
				sqlite3_bind_blob(rec, 4, product.bytes, 16, SQLITE_STATIC);
				sqlite3_bind_blob(rec, 5, var.bytes, 16, SQLITE_STATIC);
				sqlite3_bind_blob(rec, 6, (in ? from_other : loc).bytes, 16,
				                  SQLITE_STATIC);
				sqlite3_bind_blob(rec, 7, (in ? loc : to_other).bytes, 16,
				                  SQLITE_TRANSIENT);
				sqlite3_bind_blob(rec, 8, loc.bytes, 16, SQLITE_STATIC);
				sqlite3_bind_int64(rec, 9, before);
				sqlite3_bind_int64(rec, 10, after);
				step_done(db, rec);
			}
		}
		if (with_journal) {
			sqlite3_bind_blob(entry, 1, org.bytes, 16, SQLITE_STATIC);
			sqlite3_bind_int64(entry, 2, seq);
			sqlite3_bind_int64(entry, 3, time_ms);
			sqlite3_bind_int64(entry, 4, (int64_t)size);
			step_done(db, entry);
			sqlite3_bind_blob(seq_put, 1, org.bytes, 16, SQLITE_STATIC);
			sqlite3_bind_int64(seq_put, 2, seq);
			step_done(db, seq_put);
		}
		step_done(db, commit);
		r.batches++;
		r.secs = now() - t0;
	} while (r.secs < seconds_per_case);
	r.cpu = cpu_now() - c0;
	sqlite3_finalize(begin);
	sqlite3_finalize(commit);
	sqlite3_finalize(get);
	sqlite3_finalize(upd);
	sqlite3_finalize(ins);
	sqlite3_finalize(seq_get);
	sqlite3_finalize(seq_put);
	sqlite3_finalize(entry);
	sqlite3_finalize(rec);
	sqlite3_close(db);
	remove_db(path);
	return r;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 1, 100, 1000 };
	size_t only = 0, i;
	int s;

	if (argc > 1)
		seconds_per_case = atof(argv[1]);
	if (argc > 2)
		dir = argv[2];
	if (argc > 3)
		only = (size_t)atol(argv[3]);
	if (getenv("BENCH_ONLY")) {
		const char *k = getenv("BENCH_ONLY");

		only_kind = strcmp(k, "zinv") == 0 ? 0 : strcmp(k, "base") == 0 ? 1 : 2;
	}
	printf("libzinv %s, SQLite %s, %.1f s per case, files in %s\n", inv_version(),
	       sqlite3_libversion(), seconds_per_case, dir);
	printf("%-6s %5s | %10s %12s | %10s %12s %6s | %10s %12s %6s\n", "sync", "size",
	       "zinv b/s", "zinv ch/s", "base b/s", "base ch/s", "ratio", "+jrnl b/s",
	       "+jrnl ch/s", "ratio");
	struct rate all[2][3][3];

	memset(all, 0, sizeof(all));
	for (s = 0; s < 2; s++) {
		int sync = s == 0 ? INV_SQLITE_SYNC_FULL : INV_SQLITE_SYNC_NORMAL;

		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			if (only && sizes[i] != only)
				continue;
			struct rate none = { 1, 1e9, 0 };
			struct rate z = only_kind <= 0 ? run_zinv(sync, sizes[i]) : none;
			struct rate b = only_kind < 0 || only_kind == 1 ? run_baseline(sync, sizes[i], 0)
			                                                : none;
			struct rate j = only_kind < 0 || only_kind == 2 ? run_baseline(sync, sizes[i], 1)
			                                                : none;
			double zb = (double)z.batches / z.secs, bb = (double)b.batches / b.secs;
			double jb = (double)j.batches / j.secs;

			printf("%-6s %5zu | %10.1f %12.0f | %10.1f %12.0f %6.2f | %10.1f %12.0f %6.2f\n",
			       s == 0 ? "FULL" : "NORMAL", sizes[i], zb, zb * (double)sizes[i], bb,
			       bb * (double)sizes[i], zb / bb, jb, jb * (double)sizes[i], zb / jb);
			fflush(stdout);
			all[s][i][0] = z;
			all[s][i][1] = b;
			all[s][i][2] = j;
		}
	}
	printf("\nCPU microseconds per change (user + system)\n");
	printf("%-6s %5s | %8s %8s %8s | %6s %6s\n", "sync", "size", "zinv", "base", "+jrnl",
	       "z/base", "z/jrnl");
	for (s = 0; s < 2; s++) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			double us[3];
			int k;

			if (only && sizes[i] != only)
				continue;
			for (k = 0; k < 3; k++)
				us[k] = all[s][i][k].cpu * 1e6 /
				        ((double)all[s][i][k].batches * (double)sizes[i]);
			printf("%-6s %5zu | %8.2f %8.2f %8.2f | %6.2f %6.2f\n",
			       s == 0 ? "FULL" : "NORMAL", sizes[i], us[0], us[1], us[2],
			       us[1] > 0 ? us[0] / us[1] : 0, us[2] > 0 ? us[0] / us[2] : 0);
		}
	}
	return 0;
}
