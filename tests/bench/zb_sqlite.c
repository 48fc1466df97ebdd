/*
 * zb_sqlite.c - case 2: the SQLite backend through inv_apply_changes(),
 * against the plain program a careful engineer would write for the same
 * work: one prepared UPDATE per change that adds the quantity and checks
 * the bound in its WHERE clause (one B-tree descent), one transaction per
 * batch, and the very settings libzinv-sqlite uses by default (WAL,
 * synchronous FULL or NORMAL, the page cache and memory map of
 * INV_SQLITE_OPTIONS_INIT, temp_store MEMORY), so that the ratio measures
 * libzinv and not the settings.  Files in one temp dir.
 *
 * At batch size b a run makes min(moves, b * max_commits) moves, so that
 * batch-1 FULL (one fsync per change) stays within minutes; the note on each
 * row says how many it made.  Balances of both sides are compared at the end.
 */
#include "zb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include <zinv/sqlite.h>

#define ZB_START_BALANCE 1000

typedef struct zb_sqlbase {
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *select, *update;
	uint8_t loc_store[16];
} zb_sqlbase;

static void sql_die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "zinv-bench: sqlite baseline: %s: %s\n", what,
	        db ? sqlite3_errmsg(db) : "?");
	exit(1);
}

static void sql_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "zinv-bench: sqlite baseline: %s: %s\n", sql, err ? err : "?");
		exit(1);
	}
}

static sqlite3_stmt *sql_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		sql_die(db, sql);
	return st;
}

static void sql_step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		sql_die(db, what);
	sqlite3_reset(st);
}

/* The schema a hand-written program would keep: the vtable's variant
 * record, keyed by (location, variant). */
static void base_open(zb_sqlbase *b, const char *path, int full, const zb_catalog *cat)
{
	sqlite3_stmt *ins;
	uint64_t st = 77;
	inv_uuid store;

	memset(b, 0, sizeof *b);
	/* NOMUTEX, as libzinv-sqlite opens its connections: one thread uses it */
	if (sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		sql_die(b->db, path);
	{
		inv_sqlite_options so;
		char sql[160];

		ZB_CHECK(inv_sqlite_options_init(&so, INV_SQLITE_OPTIONS_VERSION));
		snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d; PRAGMA mmap_size = %lld;"
		         " PRAGMA temp_store = MEMORY", so.cache_kib ? so.cache_kib : 2000,
		         (long long)so.mmap_mib * 1024 * 1024);
		sql_exec(b->db, sql);
	}
	sql_exec(b->db, "PRAGMA journal_mode=WAL");
	sql_exec(b->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
	sql_exec(b->db, "CREATE TABLE balance (location BLOB NOT NULL, variant BLOB NOT NULL,"
	                " product BLOB NOT NULL, balance INTEGER NOT NULL,"
	                " updated INTEGER NOT NULL, PRIMARY KEY (location, variant))"
	                " WITHOUT ROWID");
	zb_uuid_random(&store, &st);
	memcpy(b->loc_store, store.bytes, 16);
	ins = sql_prepare(b->db, "INSERT INTO balance VALUES (?1, ?2, ?3, ?4, 0)");
	sql_exec(b->db, "BEGIN");
	for (size_t i = 0; i < cat->count; i++) {
		sqlite3_bind_blob(ins, 1, b->loc_store, 16, SQLITE_STATIC);
		sqlite3_bind_blob(ins, 2, cat->variants[i].bytes, 16, SQLITE_STATIC);
		sqlite3_bind_blob(ins, 3, cat->products[i / cat->per_product].bytes, 16,
		                  SQLITE_STATIC);
		sqlite3_bind_int64(ins, 4, ZB_START_BALANCE);
		sql_step_done(b->db, ins, "insert");
	}
	sql_exec(b->db, "COMMIT");
	sqlite3_finalize(ins);
	b->begin = sql_prepare(b->db, "BEGIN IMMEDIATE");
	b->commit = sql_prepare(b->db, "COMMIT");
	b->select = sql_prepare(b->db, "SELECT balance FROM balance"
	                               " WHERE location = ?1 AND variant = ?2");
	b->update = sql_prepare(b->db, "UPDATE balance SET balance = balance + ?3, updated = ?4"
	                               " WHERE location = ?1 AND variant = ?2"
	                               " AND balance + ?3 BETWEEN ?5 AND ?6");
	sqlite3_bind_blob(b->update, 1, b->loc_store, 16, SQLITE_STATIC);
	sqlite3_bind_int64(b->update, 5, -INV_QUANTITY_MAX);
	sqlite3_bind_int64(b->update, 6, INV_QUANTITY_MAX);
}

static void base_close(zb_sqlbase *b)
{
	sqlite3_finalize(b->begin);
	sqlite3_finalize(b->commit);
	sqlite3_finalize(b->select);
	sqlite3_finalize(b->update);
	sqlite3_close(b->db);
	memset(b, 0, sizeof *b);
}

static int64_t base_balance(zb_sqlbase *b, const inv_uuid *variant, int *found)
{
	int64_t v = 0;
	sqlite3_bind_blob(b->select, 1, b->loc_store, 16, SQLITE_STATIC);
	sqlite3_bind_blob(b->select, 2, variant->bytes, 16, SQLITE_STATIC);
	*found = sqlite3_step(b->select) == SQLITE_ROW;
	if (*found)
		v = sqlite3_column_int64(b->select, 0);
	sqlite3_reset(b->select);
	return v;
}

/* One batch: each change is one UPDATE that adds its delta where the
 * result stays within bounds; no row changed means an unknown variant or
 * an overflow, and the batch is rolled back. */
static int base_batch(zb_sqlbase *b, const zb_catalog *cat, const zb_move *m, size_t n,
                      int64_t now)
{
	sql_step_done(b->db, b->begin, "begin");
	sqlite3_bind_int64(b->update, 4, now);
	for (size_t i = 0; i < n; i++) {
		int64_t delta;

		if (m[i].to == ZB_STORE)
			delta = m[i].quantity;
		else if (m[i].from == ZB_STORE)
			delta = -(int64_t)m[i].quantity;
		else
			continue;
		sqlite3_bind_blob(b->update, 2, cat->variants[m[i].variant].bytes, 16,
		                  SQLITE_STATIC);
		sqlite3_bind_int64(b->update, 3, delta);
		sql_step_done(b->db, b->update, "update");
		if (sqlite3_changes(b->db) != 1)
			goto fail;
	}
	sql_step_done(b->db, b->commit, "commit");
	return 0;
fail:
	sql_exec(b->db, "ROLLBACK");
	return -1;
}

/* Moves [done, end) in batches; nanoseconds. */
static uint64_t base_segment(const zb_opts *o, zb_sqlbase *b, const zb_catalog *cat,
                             const zb_move *moves, size_t done, size_t end, size_t batch)
{
	uint64_t t0 = zb_now_ns();
	zb_cg_on(o);
	while (done < end) {
		size_t n = end - done < batch ? end - done : batch;
		if (base_batch(b, cat, moves + done, n, (int64_t)(zb_now_ns() / 1000000)) != 0)
			sql_die(b->db, "baseline batch failed");
		done += n;
	}
	zb_cg_off(o);
	return zb_now_ns() - t0;
}

typedef struct zb_sqllib {
	inv_store *store;
	inv_org *org;
	const inv_variant **handles;
	const inv_location *loc[ZB_LOC_COUNT];
} zb_sqllib;

static void lib_trim(inv_org *org)
{
	int64_t seq = 0;
	ZB_CHECK(inv_journal_last_sequence(&seq, org));
	if (seq > 0)
		ZB_CHECK(inv_journal_trim(org, seq));
}

/* A store on `path` with every product tracked and every variant holding
 * `start` units, loaded in batches that also start the tracking. */
static void lib_open(zb_sqllib *l, const char *path, int full, const zb_catalog *cat,
                     uint64_t seed, int64_t start)
{
	inv_sqlite_options so = INV_SQLITE_OPTIONS_INIT;
	const size_t chunk = cat->per_product * 819;
	inv_change *buf = malloc(chunk * sizeof *buf);
	inv_tracking_change *tr = calloc(chunk / cat->per_product, sizeof *tr);
	inv_uuid org_uuid;
	uint64_t st = seed ^ 0x0f;

	memset(l, 0, sizeof *l);
	l->handles = malloc(cat->count * sizeof *l->handles);
	if (!buf || !tr || !l->handles)
		zb_die("malloc", INV_ENOMEM);
	so.sync = full ? INV_SQLITE_SYNC_FULL : INV_SQLITE_SYNC_NORMAL;
	zb_uuid_random(&org_uuid, &st);
	ZB_CHECK(inv_store_open_sqlite(&l->store, path, &so, NULL));
	ZB_CHECK(inv_org_open(&l->org, l->store, &org_uuid));
	ZB_CHECK(inv_location_by_type(&l->loc[ZB_STORE], l->org, INV_LOCATION_STORE));
	ZB_CHECK(inv_location_by_type(&l->loc[ZB_SOLD], l->org, INV_LOCATION_SOLD));
	ZB_CHECK(inv_location_by_type(&l->loc[ZB_SUPPLIER], l->org, INV_LOCATION_SUPPLIER));
	for (size_t i = 0; i < cat->count; i += chunk) {
		size_t n = cat->count - i < chunk ? cat->count - i : chunk;
		size_t np = (n + cat->per_product - 1) / cat->per_product;
		inv_apply_options ao = INV_APPLY_OPTIONS_INIT;
		for (size_t p = 0; p < np; p++) {
			tr[p].product = cat->products[i / cat->per_product + p];
			tr[p].action = INV_TRACKING_START;
		}
		for (size_t j = 0; j < n; j++) {
			ZB_CHECK(inv_variant_get(&l->handles[i + j], l->org,
			                         &cat->products[(i + j) / cat->per_product],
			                         &cat->variants[i + j]));
			buf[j].variant = l->handles[i + j];
			buf[j].from = l->loc[ZB_SUPPLIER];
			buf[j].to = l->loc[ZB_STORE];
			buf[j].quantity = start;
		}
		ao.tracking = tr;
		ao.tracking_count = np;
		ZB_CHECK(inv_apply_changes(NULL, l->org, buf, n, &ao));
	}
	lib_trim(l->org);
	free(buf);
	free(tr);
}

static void lib_close(zb_sqllib *l)
{
	free(l->handles);
	inv_org_close(l->org);
	inv_store_close(l->store);
	memset(l, 0, sizeof *l);
}

/* Moves [done, end) in batches; nanoseconds. */
static uint64_t lib_segment(const zb_opts *o, zb_sqllib *l, const zb_move *moves, size_t done,
                            size_t end, size_t batch, inv_change *buf)
{
	uint64_t t0 = zb_now_ns();
	zb_cg_on(o);
	while (done < end) {
		size_t n = end - done < batch ? end - done : batch;
		for (size_t j = 0; j < n; j++) {
			const zb_move *m = &moves[done + j];
			buf[j].variant = l->handles[m->variant];
			buf[j].from = l->loc[m->from];
			buf[j].to = l->loc[m->to];
			buf[j].quantity = m->quantity;
		}
		ZB_CHECK(inv_apply_changes(NULL, l->org, buf, n, NULL));
		done += n;
	}
	zb_cg_off(o);
	return zb_now_ns() - t0;
}

static void lib_verify(zb_sqllib *l, zb_sqlbase *b, const zb_catalog *cat)
{
	for (size_t i = 0; i < cat->count; i++) {
		int64_t got = 0, want;
		int found;
		ZB_CHECK(inv_balance_get(&got, l->org, l->handles[i], NULL));
		want = base_balance(b, &cat->variants[i], &found);
		if (!found || want != got) {
			fprintf(stderr, "zinv-bench: sqlite: variant %zu: libzinv balance %lld, "
			        "baseline %lld\n", i, (long long)got, (long long)want);
			exit(1);
		}
	}
}

/*
 * Up to `nmoves` moves at one batch size through both sides, alternating
 * in stretches of at least 2,048 moves so that load from the machine's
 * other tenants (disk included) hits both, and stopping early once
 * `seconds` have passed: the disk decides how long a run takes, and a
 * bench that never finishes measures nothing.  Under callgrind every move
 * is made, each side whole, for its own dump.  Returns the moves made.
 */
static size_t run_pair(const zb_opts *o, const char *name, zb_sqlbase *b, zb_sqllib *lib,
                       const zb_catalog *cat,
                       const zb_move *moves, size_t nmoves, size_t batch, double *base_rate,
                       double *lib_rate)
{
	size_t stretch = batch >= 2048 ? batch : (2048 / batch) * batch;
	uint64_t base_ns = 0, lib_ns = 0, start = zb_now_ns();
	size_t done = 0;
	inv_change *buf = malloc(batch * sizeof *buf);
	if (!buf)
		zb_die("malloc", INV_ENOMEM);
	if (o->callgrind) {
		char label[96];

		snprintf(label, sizeof label, "sqlite baseline %s", name);
		zb_cg_dump(o, "sqlite setup", 0);
		base_ns = base_segment(o, b, cat, moves, 0, nmoves, batch);
		zb_cg_dump(o, label, nmoves);
		lib_ns = lib_segment(o, lib, moves, 0, nmoves, batch, buf);
		snprintf(label, sizeof label, "sqlite libzinv %s", name);
		zb_cg_dump(o, label, nmoves);
		done = nmoves;
	}
	while (done < nmoves && zb_now_ns() - start < (uint64_t)o->sql_seconds * 1000000000u) {
		size_t end = nmoves - done < stretch ? nmoves : done + stretch;
		base_ns += base_segment(o, b, cat, moves, done, end, batch);
		lib_ns += lib_segment(o, lib, moves, done, end, batch, buf);
		done = end;
	}
	free(buf);
	/* Journal rows are history an outbox consumer trims; outside the
	 * clock, as the baseline keeps none. */
	lib_trim(lib->org);
	*base_rate = (double)done * 1e9 / (double)base_ns;
	*lib_rate = (double)done * 1e9 / (double)lib_ns;
	return done;
}

static void rm_db(const char *path)
{
	char p[1200];
	unlink(path);
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-journal", path);
	unlink(p);
}

static void make_tmpdir(char *tmpl, size_t size, const char *dir)
{
	if (strlen(dir) > size - 32) {
		fprintf(stderr, "zinv-bench: --dir too long\n");
		exit(2);
	}
	snprintf(tmpl, size, "%s/zinv-bench-XXXXXX", dir);
	if (!mkdtemp(tmpl)) {
		perror("zinv-bench: mkdtemp");
		exit(1);
	}
}

/* Bytes of the database and its WAL. */
static double file_bytes(const char *path)
{
	char wal[1200];
	struct stat sb;
	double n = 0;
	if (stat(path, &sb) == 0)
		n += (double)sb.st_size;
	snprintf(wal, sizeof wal, "%s-wal", path);
	if (stat(wal, &sb) == 0)
		n += (double)sb.st_size;
	return n;
}

static void vacuum(const char *path)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		sql_die(db, path);
	sql_exec(db, "VACUUM");
	sql_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	sqlite3_close(db);
}

static void report_file(const char *name, double lib, double base, size_t n, const char *note)
{
	zb_row r;
	memset(&r, 0, sizeof r);
	snprintf(r.group, sizeof r.group, "footprint");
	snprintf(r.name, sizeof r.name, "%s", name);
	snprintf(r.unit, sizeof r.unit, "B/variant");
	snprintf(r.note, sizeof r.note, "%s", note ? note : "");
	r.lib = lib / (double)n;
	r.base = base / (double)n;
	zb_report(&r);
}

void zb_sqlite_footprint(const zb_opts *o)
{
	char tmpl[1024], path[1100], note[96];
	double base, base_vac, lib = ZB_NAN, lib_vac = ZB_NAN;
	zb_catalog cat;
	zb_sqlbase b;

	make_tmpdir(tmpl, sizeof tmpl, o->dir);
	if (zb_catalog_init(&cat, o->fp_sql_variants, 10, o->seed) != 0)
		zb_die("footprint setup", INV_ENOMEM);
	snprintf(path, sizeof path, "%s/baseline.db", tmpl);
	base_open(&b, path, 0, &cat);
	base_close(&b);
	base = file_bytes(path);
	vacuum(path);
	base_vac = file_bytes(path);
	rm_db(path);
	{
		zb_sqllib l;
		snprintf(path, sizeof path, "%s/libzinv.db", tmpl);
		lib_open(&l, path, 0, &cat, o->seed, ZB_START_BALANCE);
		lib_close(&l);
		lib = file_bytes(path);
		vacuum(path);
		lib_vac = file_bytes(path);
		rm_db(path);
	}
	snprintf(note, sizeof note, "%zu variants loaded, journal trimmed", cat.count);
	report_file("SQLite file", lib, base, cat.count, note);
	report_file("SQLite file after VACUUM", lib_vac, base_vac, cat.count, NULL);
	rmdir(tmpl);
	zb_catalog_free(&cat);
}

void zb_case_sqlite(const zb_opts *o)
{
	char tmpl[1024], path[1100];
	zb_catalog cat;
	zb_move *moves = NULL;

	make_tmpdir(tmpl, sizeof tmpl, o->dir);
	if (zb_catalog_init(&cat, o->sql_variants, 10, o->seed) != 0 ||
	    !(moves = zb_moves_new(o->sql_moves, o->sql_variants, o->seed)))
		zb_die("sqlite case setup", INV_ENOMEM);
	for (int full = 1; full >= 0; full--) {
		zb_sqlbase b;
		snprintf(path, sizeof path, "%s/baseline-%s.db", tmpl, full ? "full" : "normal");
		base_open(&b, path, full, &cat);
		zb_sqllib l;
		char lpath[1100];
		snprintf(lpath, sizeof lpath, "%s/libzinv-%s.db", tmpl, full ? "full" : "normal");
		lib_open(&l, lpath, full, &cat, o->seed, ZB_START_BALANCE);
		for (size_t i = 0; i < o->batch_count; i++) {
			size_t bs = o->batches[i];
			size_t n = o->sql_max_commits && bs * o->sql_max_commits < o->sql_moves
			                   ? bs * o->sql_max_commits : o->sql_moves;
			zb_row r;
			memset(&r, 0, sizeof r);
			snprintf(r.group, sizeof r.group, "sqlite");
			snprintf(r.name, sizeof r.name, "apply batch=%zu sync=%s", bs,
			         full ? "FULL" : "NORMAL");
			snprintf(r.unit, sizeof r.unit, "changes/s");
			snprintf(r.note, sizeof r.note, "%zu variants, %zu moves", cat.count, n);
			r.higher_better = 1;
			r.target = 0.8;
			n = run_pair(o, r.name, &b, &l, &cat, moves, n, bs, &r.base, &r.lib);
			snprintf(r.note, sizeof r.note, "%zu variants, %zu moves", cat.count, n);
			zb_report(&r);
		}
		lib_verify(&l, &b, &cat);
		lib_close(&l);
		rm_db(lpath);
		base_close(&b);
		rm_db(path);
	}
	rmdir(tmpl);
	free(moves);
	zb_catalog_free(&cat);
}
