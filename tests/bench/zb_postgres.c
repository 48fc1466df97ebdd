/*
 * zb_postgres.c - case "postgres": libzinv-postgres through
 * inv_apply_changes(), against the plain libpq program a careful engineer
 * would write for the same balance updates, on the same server in the same
 * run: the batch's deltas summed per variant in the client, then one
 * prepared statement per batch,
 *
 *   UPDATE bench_balance b SET balance = b.balance + u.d, updated = $3
 *   FROM unnest($4::uuid[], $5::bigint[]) AS u(v, d)
 *   WHERE b.org = $1 AND b.location = $2 AND b.variant = u.v
 *
 * with binary parameters, run on its own so that it is one transaction per
 * batch and one round trip; a CHECK constraint keeps the bound, so that an
 * overflow aborts the whole batch.  Both sides commit with
 * synchronous_commit = on (the throwaway cluster of tests/pg/with-cluster.sh
 * is switched to it first; elsewhere the server's setting is reported).
 *
 * Rows: one connection at each batch size (the sides alternating in
 * stretches, as in the SQLite case, then balances compared); aggregate
 * throughput of 1, 4 and 16 connections (threads) and of 8 processes, each
 * connection writing its own organization, with the ungranted locks seen
 * by a sampler during the run.  The server is the one of $ZINV_TEST_PG
 * (or $ZINV_BENCH_PG): `make bench` runs zinv-bench under with-cluster.sh.
 */
#include "zb.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/wait.h>

#include <libpq-fe.h>

#include <zinv/postgres.h>

#define ZB_START_BALANCE 1000
#define ZB_OID_UUID 2950
#define ZB_OID_INT8 20

static void pq_die(PGconn *c, const char *what)
{
	fprintf(stderr, "zinv-bench: postgres: %s: %s", what, c ? PQerrorMessage(c) : "?\n");
	exit(1);
}

static const char *conninfo(void)
{
	const char *s = getenv("ZINV_BENCH_PG");
	if (!s || !*s)
		s = getenv("ZINV_TEST_PG");
	if (!s || !*s) {
		fprintf(stderr, "zinv-bench: the postgres case needs a server: set ZINV_BENCH_PG to "
		        "a conninfo, or run under tests/pg/with-cluster.sh (make bench does)\n");
		exit(1);
	}
	return s;
}

static PGconn *pq_connect(void)
{
	PGconn *c = PQconnectdb(conninfo());
	if (PQstatus(c) != CONNECTION_OK)
		pq_die(c, "connect");
	return c;
}

static void pq_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		PQclear(r);
		pq_die(c, sql);
	}
	PQclear(r);
}

/* Binary array buffers: header, then a (length, bytes) pair per element. */
typedef struct zb_arr {
	unsigned char *p;
	size_t len, cap;
} zb_arr;

static void arr_put32(zb_arr *a, uint32_t v)
{
	unsigned char *p = a->p + a->len;
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	a->len += 4;
}

static void arr_start(zb_arr *a, size_t n, uint32_t oid, size_t elem)
{
	size_t need = 20 + n * (4 + elem);
	if (need > a->cap) {
		free(a->p);
		a->cap = need;
		if (!(a->p = malloc(need)))
			zb_die("malloc", INV_ENOMEM);
	}
	a->len = 0;
	arr_put32(a, 1);            /* dimensions */
	arr_put32(a, 0);            /* no nulls */
	arr_put32(a, oid);
	arr_put32(a, (uint32_t)n);
	arr_put32(a, 1);            /* lower bound */
}

static void arr_uuid(zb_arr *a, const inv_uuid *u)
{
	arr_put32(a, 16);
	memcpy(a->p + a->len, u->bytes, 16);
	a->len += 16;
}

static void arr_i64(zb_arr *a, int64_t v)
{
	arr_put32(a, 8);
	arr_put32(a, (uint32_t)((uint64_t)v >> 32));
	arr_put32(a, (uint32_t)v);
}

static int64_t be64(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

/* ------------------------------------------------------------ baseline */

/* One baseline connection writing one organization. */
typedef struct zb_pgbase {
	PGconn *c;
	inv_uuid org, store;
	int32_t *slot;              /* per variant: its place in this batch, or -1 */
	uint32_t *touched;          /* the variants of this batch */
	int64_t *delta;
	zb_arr vars, deltas;
} zb_pgbase;

static const char base_update[] =
	"UPDATE bench_balance b SET balance = b.balance + u.d, updated = $3"
	" FROM unnest($4::uuid[], $5::bigint[]) AS u(v, d)"
	" WHERE b.org = $1 AND b.location = $2 AND b.variant = u.v";

static void base_schema(void)
{
	PGconn *c = pq_connect();
	char sql[512];
	snprintf(sql, sizeof sql,
	         "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_balance;"
	         " CREATE TABLE bench_balance (org uuid NOT NULL, location uuid NOT NULL,"
	         " variant uuid NOT NULL, product uuid NOT NULL, balance bigint NOT NULL"
	         " CHECK (balance BETWEEN %lld AND %lld), updated bigint NOT NULL,"
	         " PRIMARY KEY (org, location, variant))",
	         (long long)-INV_QUANTITY_MAX, (long long)INV_QUANTITY_MAX);
	pq_exec(c, sql);
	PQfinish(c);
}

static void analyze(void)
{
	PGconn *c = pq_connect();
	pq_exec(c, "ANALYZE");
	PQfinish(c);
}

/* Connect, prepare, and load the organization's rows in one COPY-free
 * INSERT from arrays. */
static void base_open(zb_pgbase *b, const zb_catalog *cat, uint64_t seed)
{
	uint64_t st = seed ^ 0x77;
	zb_arr v = { 0 }, p = { 0 };
	const char *vals[4];
	int lens[4], fmts[4] = { 1, 1, 1, 1 };
	PGresult *r;

	memset(b, 0, sizeof *b);
	b->c = pq_connect();
	zb_uuid_random(&b->org, &st);
	zb_uuid_random(&b->store, &st);
	b->slot = malloc(cat->count * sizeof *b->slot);
	b->touched = malloc(cat->count * sizeof *b->touched);
	b->delta = malloc(cat->count * sizeof *b->delta);
	if (!b->slot || !b->touched || !b->delta)
		zb_die("malloc", INV_ENOMEM);
	for (size_t i = 0; i < cat->count; i++)
		b->slot[i] = -1;
	arr_start(&v, cat->count, ZB_OID_UUID, 16);
	arr_start(&p, cat->count, ZB_OID_UUID, 16);
	for (size_t i = 0; i < cat->count; i++) {
		arr_uuid(&v, &cat->variants[i]);
		arr_uuid(&p, &cat->products[i / cat->per_product]);
	}
	vals[0] = (const char *)b->org.bytes;
	vals[1] = (const char *)b->store.bytes;
	vals[2] = (const char *)v.p;
	vals[3] = (const char *)p.p;
	lens[0] = lens[1] = 16;
	lens[2] = (int)v.len;
	lens[3] = (int)p.len;
	r = PQexecParams(b->c, "INSERT INTO bench_balance SELECT $1::uuid, $2::uuid, v, p, "
	                 "1000, 0 FROM unnest($3::uuid[], $4::uuid[]) AS u(v, p)",
	                 4, NULL, vals, lens, fmts, 1);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		pq_die(b->c, "baseline load");
	PQclear(r);
	free(v.p);
	free(p.p);
	r = PQprepare(b->c, "upd", base_update, 5, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		pq_die(b->c, "prepare");
	PQclear(r);
}

static void base_close(zb_pgbase *b)
{
	PQfinish(b->c);
	free(b->slot);
	free(b->touched);
	free(b->delta);
	free(b->vars.p);
	free(b->deltas.p);
	memset(b, 0, sizeof *b);
}

/* One batch: sum the STORE deltas per variant, one UPDATE for all. */
static void base_batch(zb_pgbase *b, const zb_catalog *cat, const zb_move *m, size_t n,
                       int64_t now)
{
	size_t k = 0;
	char nowbuf[8];
	const char *vals[5];
	int lens[5], fmts[5] = { 1, 1, 1, 1, 1 };
	PGresult *r;

	for (size_t i = 0; i < n; i++) {
		int64_t d;
		uint32_t v = m[i].variant;
		if (m[i].to == ZB_STORE)
			d = m[i].quantity;
		else if (m[i].from == ZB_STORE)
			d = -(int64_t)m[i].quantity;
		else
			continue;
		if (b->slot[v] < 0) {
			b->slot[v] = (int32_t)k;
			b->touched[k] = v;
			b->delta[k++] = 0;
		}
		b->delta[b->slot[v]] += d;
	}
	if (k == 0)
		return;
	arr_start(&b->vars, k, ZB_OID_UUID, 16);
	arr_start(&b->deltas, k, ZB_OID_INT8, 8);
	for (size_t i = 0; i < k; i++) {
		arr_uuid(&b->vars, &cat->variants[b->touched[i]]);
		arr_i64(&b->deltas, b->delta[i]);
		b->slot[b->touched[i]] = -1;
	}
	for (int i = 0; i < 8; i++)
		nowbuf[i] = (char)((uint64_t)now >> (56 - 8 * i));
	vals[0] = (const char *)b->org.bytes;
	vals[1] = (const char *)b->store.bytes;
	vals[2] = nowbuf;
	vals[3] = (const char *)b->vars.p;
	vals[4] = (const char *)b->deltas.p;
	lens[0] = lens[1] = 16;
	lens[2] = 8;
	lens[3] = (int)b->vars.len;
	lens[4] = (int)b->deltas.len;
	r = PQexecPrepared(b->c, "upd", 5, vals, lens, fmts, 1);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		pq_die(b->c, "baseline batch");
	if (strtoul(PQcmdTuples(r), NULL, 10) != k) {
		fprintf(stderr, "zinv-bench: postgres baseline: %s of %zu rows updated\n",
		        PQcmdTuples(r), k);
		exit(1);
	}
	PQclear(r);
}

/* ------------------------------------------------------------- libzinv */

/* One organization of a libzinv-postgres store, loaded like the SQLite
 * case's: every product tracked, every variant at ZB_START_BALANCE. */
typedef struct zb_pglib {
	inv_org *org;
	const inv_variant **handles;
	const inv_location *loc[ZB_LOC_COUNT];
	inv_change *buf;
} zb_pglib;

static void lib_trim(inv_org *org)
{
	int64_t seq = 0;
	ZB_CHECK(inv_journal_last_sequence(&seq, org));
	if (seq > 0)
		ZB_CHECK(inv_journal_trim(org, seq));
}

static inv_store *lib_store(int pool)
{
	inv_postgres_options po = INV_POSTGRES_OPTIONS_INIT;
	inv_store *s = NULL;
	po.pool_size = pool;
	po.statement_timeout_ms = 0;
	ZB_CHECK(inv_store_open_postgres(&s, conninfo(), &po, NULL));
	return s;
}

static void lib_open(zb_pglib *l, inv_store *store, const zb_catalog *cat, uint64_t seed,
                     size_t max_batch)
{
	const size_t chunk = cat->per_product * 819;
	inv_tracking_change *tr = calloc(chunk / cat->per_product, sizeof *tr);
	inv_uuid org_uuid;
	uint64_t st = seed ^ 0x0f;

	memset(l, 0, sizeof *l);
	l->handles = malloc(cat->count * sizeof *l->handles);
	l->buf = malloc((max_batch > chunk ? max_batch : chunk) * sizeof *l->buf);
	if (!tr || !l->handles || !l->buf)
		zb_die("malloc", INV_ENOMEM);
	zb_uuid_random(&org_uuid, &st);
	ZB_CHECK(inv_org_open(&l->org, store, &org_uuid));
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
			l->buf[j].variant = l->handles[i + j];
			l->buf[j].from = l->loc[ZB_SUPPLIER];
			l->buf[j].to = l->loc[ZB_STORE];
			l->buf[j].quantity = ZB_START_BALANCE;
		}
		ao.tracking = tr;
		ao.tracking_count = np;
		ZB_CHECK(inv_apply_changes(NULL, l->org, l->buf, n, &ao));
	}
	lib_trim(l->org);
	free(tr);
}

static void lib_close(zb_pglib *l)
{
	free(l->handles);
	free(l->buf);
	inv_org_close(l->org);
	memset(l, 0, sizeof *l);
}

static void lib_batch(zb_pglib *l, const zb_move *m, size_t n)
{
	for (size_t j = 0; j < n; j++) {
		l->buf[j].variant = l->handles[m[j].variant];
		l->buf[j].from = l->loc[m[j].from];
		l->buf[j].to = l->loc[m[j].to];
		l->buf[j].quantity = m[j].quantity;
	}
	ZB_CHECK(inv_apply_changes(NULL, l->org, l->buf, n, NULL));
}

/* libzinv's STORE balances against the baseline's, both in (product,
 * variant) byte order (PostgreSQL compares uuids bytewise). */
static void lib_verify(zb_pglib *l, zb_pgbase *b)
{
	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	inv_balance *bal = NULL;
	size_t n = 0;
	const char *vals[2] = { (const char *)b->org.bytes, (const char *)b->store.bytes };
	int lens[2] = { 16, 16 }, fmts[2] = { 1, 1 };
	PGresult *r;

	q.include_zero = 1;
	ZB_CHECK(inv_balances_read(&bal, &n, NULL, l->org, &q));
	r = PQexecParams(b->c, "SELECT variant, balance FROM bench_balance WHERE org = $1::uuid"
	                 " AND location = $2::uuid ORDER BY product, variant", 2, NULL, vals,
	                 lens, fmts, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		pq_die(b->c, "baseline read");
	if ((size_t)PQntuples(r) != n) {
		fprintf(stderr, "zinv-bench: postgres: libzinv has %zu balances, baseline %d\n", n,
		        PQntuples(r));
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		if (memcmp(PQgetvalue(r, (int)i, 0), bal[i].variant.bytes, 16) != 0 ||
		    be64(PQgetvalue(r, (int)i, 1)) != bal[i].balance) {
			fprintf(stderr, "zinv-bench: postgres: balance %zu: libzinv %lld, baseline "
			        "%lld\n", i, (long long)bal[i].balance,
			        (long long)be64(PQgetvalue(r, (int)i, 1)));
			exit(1);
		}
	PQclear(r);
	inv_free(bal);
}

/* -------------------------------------------------- one connection */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
	return (int64_t)(zb_now_ns() / 1000000);
}

/* Up to `nmoves` moves at one batch size through both sides, alternating
 * in stretches of at least 2,048 moves, stopping once `seconds` passed;
 * returns the moves made. */
static size_t run_pair(const zb_opts *o, zb_pgbase *b, zb_pglib *l, const zb_catalog *cat,
                       const zb_move *moves, size_t nmoves, size_t batch, double *base_rate,
                       double *lib_rate)
{
	size_t stretch = batch >= 2048 ? batch : (2048 / batch) * batch;
	uint64_t base_ns = 0, lib_ns = 0, start = zb_now_ns();
	size_t done = 0;

	if (o->smoke)
		stretch = batch;
	while (done < nmoves && zb_now_ns() - start < (uint64_t)o->pg_seconds * 1000000000u) {
		size_t end = nmoves - done < stretch ? nmoves : done + stretch;
		uint64_t t0 = zb_now_ns();
		for (size_t d = done; d < end; d += batch)
			base_batch(b, cat, moves + d, end - d < batch ? end - d : batch, now_ms());
		base_ns += zb_now_ns() - t0;
		t0 = zb_now_ns();
		for (size_t d = done; d < end; d += batch)
			lib_batch(l, moves + d, end - d < batch ? end - d : batch);
		lib_ns += zb_now_ns() - t0;
		done = end;
	}
	lib_trim(l->org); /* outside the clock: the baseline keeps no history */
	*base_rate = (double)done * 1e9 / (double)base_ns;
	*lib_rate = (double)done * 1e9 / (double)lib_ns;
	return done;
}

/* ------------------------------------------- many connections at once */

typedef struct zb_worker {
	const zb_opts *o;
	const zb_catalog *cat;
	zb_move *moves;
	size_t nmoves;
	int lib;                    /* 1: libzinv, 0: baseline */
	zb_pgbase base;
	zb_pglib l;
	size_t done;                /* moves made in the timed run */
} zb_worker;

static void worker_setup(zb_worker *w, inv_store *store, uint64_t seed)
{
	if (!(w->moves = zb_moves_new(w->nmoves, w->cat->count, seed)))
		zb_die("malloc", INV_ENOMEM);
	if (w->lib)
		lib_open(&w->l, store, w->cat, seed, w->o->pg_conc_batch);
	else
		base_open(&w->base, w->cat, seed);
}

static void worker_run(zb_worker *w, uint64_t until_ns)
{
	size_t batch = w->o->pg_conc_batch, at = 0;
	w->done = 0;
	while (zb_now_ns() < until_ns) {
		if (at + batch > w->nmoves)
			at = 0;
		if (w->lib)
			lib_batch(&w->l, w->moves + at, batch);
		else
			base_batch(&w->base, w->cat, w->moves + at, batch, now_ms());
		at += batch;
		w->done += batch;
	}
}

static void worker_teardown(zb_worker *w)
{
	if (w->lib)
		lib_close(&w->l);
	else
		base_close(&w->base);
	free(w->moves);
}

typedef struct zb_go {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int ready, started;
	uint64_t until;
	zb_worker *w;
	inv_store *store;
	uint64_t seed;
} zb_go;

struct zb_thread_arg {
	zb_go *go;
	size_t i;
};

static void *thread_main(void *p)
{
	struct zb_thread_arg *a = p;
	zb_go *g = a->go;
	uint64_t until;

	worker_setup(&g->w[a->i], g->store, g->seed + 1000 * a->i);
	pthread_mutex_lock(&g->m);
	g->ready++;
	pthread_cond_broadcast(&g->cv);
	while (!g->started)
		pthread_cond_wait(&g->cv, &g->m);
	until = g->until;
	pthread_mutex_unlock(&g->m);
	worker_run(&g->w[a->i], until);
	return NULL;
}

/* Samples pg_locks until *stop: ungranted row or transaction locks (one
 * writer waiting for another's organization row) apart from any other
 * ungranted lock (relation extension and the like). */
struct zb_sampler {
	volatile int stop;
	long samples, row_waits, other_waits;
	char other[16];             /* the lock type of an other wait seen */
};

static void *sampler_main(void *p)
{
	struct zb_sampler *s = p;
	PGconn *c = pq_connect();
	while (!s->stop) {
		PGresult *r = PQexec(c, "SELECT count(*) FILTER (WHERE locktype IN ('tuple',"
		                     " 'transactionid')), count(*), max(locktype) FILTER (WHERE"
		                     " locktype NOT IN ('tuple', 'transactionid'))"
		                     " FROM pg_catalog.pg_locks WHERE NOT granted");
		long row, all;
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			pq_die(c, "pg_locks");
		row = strtol(PQgetvalue(r, 0, 0), NULL, 10);
		all = strtol(PQgetvalue(r, 0, 1), NULL, 10);
		s->row_waits += row;
		s->other_waits += all - row;
		if (all > row)
			snprintf(s->other, sizeof s->other, "%s", PQgetvalue(r, 0, 2));
		s->samples++;
		PQclear(r);
		sleep_ms(20);
	}
	PQfinish(c);
	return NULL;
}

static size_t conc_moves(const zb_opts *o)
{
	return o->pg_conc_batch * 64;
}

/* `n` threads (one connection each, own organization) for pg_conc_seconds:
 * aggregate changes/s. */
static double run_threads(const zb_opts *o, const zb_catalog *cat, int lib, size_t n,
                          struct zb_sampler *smp)
{
	zb_go g;
	pthread_t *t = calloc(n, sizeof *t), st;
	struct zb_thread_arg *args = calloc(n, sizeof *args);
	uint64_t t0;
	size_t total = 0;

	memset(&g, 0, sizeof g);
	g.w = calloc(n, sizeof *g.w);
	if (!t || !args || !g.w)
		zb_die("malloc", INV_ENOMEM);
	pthread_mutex_init(&g.m, NULL);
	pthread_cond_init(&g.cv, NULL);
	g.seed = o->seed + (lib ? 7 : 0) + 100000 * n;
	if (lib)
		g.store = lib_store((int)n);
	for (size_t i = 0; i < n; i++) {
		g.w[i].o = o;
		g.w[i].cat = cat;
		g.w[i].nmoves = conc_moves(o);
		g.w[i].lib = lib;
		args[i].go = &g;
		args[i].i = i;
		if (pthread_create(&t[i], NULL, thread_main, &args[i]) != 0)
			zb_die("pthread_create", INV_ENOMEM);
	}
	pthread_mutex_lock(&g.m);
	while (g.ready < (int)n)
		pthread_cond_wait(&g.cv, &g.m);
	analyze();
	smp->stop = 0;
	if (pthread_create(&st, NULL, sampler_main, smp) != 0)
		zb_die("pthread_create", INV_ENOMEM);
	t0 = zb_now_ns();
	g.until = t0 + (uint64_t)o->pg_conc_ms * 1000000u;
	g.started = 1;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.m);
	for (size_t i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	t0 = zb_now_ns() - t0;
	smp->stop = 1;
	pthread_join(st, NULL);
	for (size_t i = 0; i < n; i++) {
		total += g.w[i].done;
		worker_teardown(&g.w[i]);
	}
	if (g.store)
		inv_store_close(g.store);
	pthread_mutex_destroy(&g.m);
	pthread_cond_destroy(&g.cv);
	free(g.w);
	free(t);
	free(args);
	return (double)total * 1e9 / (double)t0;
}

static void xwrite(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) != (ssize_t)n)
		_exit(1);
}

static int xread(int fd, void *p, size_t n)
{
	return read(fd, p, n) == (ssize_t)n ? 0 : -1;
}

/* `n` processes, each its own store (pool 1) and organization, for
 * pg_conc_seconds; a pipe says ready, go, and the moves made. */
static double run_procs(const zb_opts *o, const zb_catalog *cat, int lib, size_t n,
                        struct zb_sampler *smp)
{
	int up[2], down[2];
	pid_t *pids = calloc(n, sizeof *pids);
	uint64_t t0, until;
	size_t total = 0;
	pthread_t st;

	if (!pids || pipe(up) != 0 || pipe(down) != 0)
		zb_die("pipe", INV_ENOMEM);
	fflush(stdout);
	for (size_t i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			zb_die("fork", INV_ENOMEM);
		if (pid == 0) {
			zb_worker w;
			inv_store *store = lib ? lib_store(1) : NULL;
			char c = 'r';
			memset(&w, 0, sizeof w);
			w.o = o;
			w.cat = cat;
			w.nmoves = conc_moves(o);
			w.lib = lib;
			close(up[0]);
			close(down[1]);
			worker_setup(&w, store, o->seed + 31 * i + (lib ? 7 : 0) + 500000);
			xwrite(up[1], &c, 1);
			if (xread(down[0], &until, sizeof until) != 0)
				_exit(1);
			worker_run(&w, until);
			xwrite(up[1], &w.done, sizeof w.done);
			worker_teardown(&w);
			if (store)
				inv_store_close(store);
			_exit(0);
		}
		pids[i] = pid;
	}
	close(up[1]);
	close(down[0]);
	for (size_t i = 0; i < n; i++) {
		char c;
		if (xread(up[0], &c, 1) != 0)
			zb_die("a bench process failed in its setup", INV_EBACKEND);
	}
	analyze();
	smp->stop = 0;
	if (pthread_create(&st, NULL, sampler_main, smp) != 0)
		zb_die("pthread_create", INV_ENOMEM);
	t0 = zb_now_ns();
	until = t0 + (uint64_t)o->pg_conc_ms * 1000000u;
	for (size_t i = 0; i < n; i++)
		xwrite(down[1], &until, sizeof until);
	for (size_t i = 0; i < n; i++) {
		size_t d;
		if (xread(up[0], &d, sizeof d) != 0)
			zb_die("a bench process failed", INV_EBACKEND);
		total += d;
	}
	t0 = zb_now_ns() - t0;
	smp->stop = 1;
	pthread_join(st, NULL);
	for (size_t i = 0; i < n; i++) {
		int status;
		if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			zb_die("a bench process failed", INV_EBACKEND);
	}
	close(up[0]);
	close(down[1]);
	free(pids);
	return (double)total * 1e9 / (double)t0;
}

/* ------------------------------------------------------------ the case */

/* synchronous_commit = on for every new session of the throwaway cluster
 * (with-cluster.sh sets `local` with a standby that never exists, which
 * `on` would wait for); returns the setting new sessions see. */
static void sync_commit_on(char *out, size_t size)
{
	PGconn *c = pq_connect();
	PGresult *r;
	if (getenv("ZINV_TEST_PG_DIR")) {
		pq_exec(c, "ALTER SYSTEM SET synchronous_standby_names = ''");
		pq_exec(c, "ALTER SYSTEM SET synchronous_commit = on");
		pq_exec(c, "SELECT pg_catalog.pg_reload_conf()");
		PQfinish(c);
		sleep_ms(200); /* the postmaster signals its children */
		c = pq_connect();
	}
	r = PQexec(c, "SELECT current_setting('synchronous_commit'), current_setting('fsync')");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		pq_die(c, "SHOW synchronous_commit");
	snprintf(out, size, "sync_commit=%.8s fsync=%.4s", PQgetvalue(r, 0, 0),
	         PQgetvalue(r, 0, 1));
	PQclear(r);
	PQfinish(c);
}

static void conc_row(const char *name, double lib, double base, const struct zb_sampler *ls,
                     const struct zb_sampler *bs, const zb_opts *o, size_t variants)
{
	zb_row r;
	memset(&r, 0, sizeof r);
	snprintf(r.group, sizeof r.group, "postgres");
	snprintf(r.name, sizeof r.name, "%s batch=%zu", name, o->pg_conc_batch);
	snprintf(r.unit, sizeof r.unit, "changes/s");
	r.lib = lib;
	r.base = base;
	r.higher_better = 1;
	r.target = 0.8;
	snprintf(r.note, sizeof r.note, "own org, %zu variants, %zu ms; %ld samples: row lock "
	         "waits %ld, other %ld %s (base %ld, %ld)", variants, o->pg_conc_ms, ls->samples,
	         ls->row_waits, ls->other_waits, ls->other, bs->row_waits, bs->other_waits);
	zb_report(&r);
}

void zb_case_postgres(const zb_opts *o)
{
	zb_catalog cat, ccat;
	zb_move *moves;
	zb_pgbase b;
	zb_pglib l;
	inv_store *store;
	char sync[48];
	static const size_t conns[] = { 1, 4, 16 };

	sync_commit_on(sync, sizeof sync);
	base_schema();
	if (zb_catalog_init(&cat, o->pg_variants, 10, o->seed) != 0 ||
	    !(moves = zb_moves_new(o->pg_moves, o->pg_variants, o->seed)))
		zb_die("postgres case setup", INV_ENOMEM);
	{
		size_t max_batch = 0;
		for (size_t i = 0; i < o->batch_count; i++)
			if (o->batches[i] > max_batch)
				max_batch = o->batches[i];
		base_open(&b, &cat, o->seed);
		store = lib_store(1);
		lib_open(&l, store, &cat, o->seed, max_batch);
		/* fresh statistics for both sides' tables, as after any bulk load:
		 * without them a generic plan of the baseline's UPDATE scans */
		analyze();
	}
	for (size_t i = 0; i < o->batch_count; i++) {
		size_t bs = o->batches[i];
		size_t n = o->sql_max_commits && bs * o->sql_max_commits < o->pg_moves
		                   ? bs * o->sql_max_commits : o->pg_moves;
		zb_row r;
		memset(&r, 0, sizeof r);
		snprintf(r.group, sizeof r.group, "postgres");
		snprintf(r.name, sizeof r.name, "apply batch=%zu", bs);
		snprintf(r.unit, sizeof r.unit, "changes/s");
		r.higher_better = 1;
		r.target = 0.8;
		n = run_pair(o, &b, &l, &cat, moves, n, bs, &r.base, &r.lib);
		snprintf(r.note, sizeof r.note, "1 connection, %zu variants, %zu moves, %s",
		         cat.count, n, sync);
		zb_report(&r);
	}
	lib_verify(&l, &b);
	lib_close(&l);
	inv_store_close(store);
	base_close(&b);
	free(moves);
	zb_catalog_free(&cat);

	if (zb_catalog_init(&ccat, o->pg_conc_variants, 10, o->seed + 1) != 0)
		zb_die("postgres case setup", INV_ENOMEM);
	for (size_t i = 0; i < sizeof conns / sizeof conns[0]; i++) {
		struct zb_sampler ls, bsmp;
		memset(&ls, 0, sizeof ls);
		memset(&bsmp, 0, sizeof bsmp);
		char name[48];
		double base = run_threads(o, &ccat, 0, conns[i], &bsmp);
		double lib = run_threads(o, &ccat, 1, conns[i], &ls);
		snprintf(name, sizeof name, "%zu connection%s", conns[i], conns[i] > 1 ? "s" : "");
		conc_row(name, lib, base, &ls, &bsmp, o, ccat.count);
	}
	{
		struct zb_sampler ls, bsmp;
		memset(&ls, 0, sizeof ls);
		memset(&bsmp, 0, sizeof bsmp);
		double base = run_procs(o, &ccat, 0, 8, &bsmp);
		double lib = run_procs(o, &ccat, 1, 8, &ls);
		conc_row("8 processes", lib, base, &ls, &bsmp, o, ccat.count);
	}
	zb_catalog_free(&ccat);
}
