/*
 * zb_mem.c - case 1: the memory backend through inv_apply_changes(), against
 * the plain hash table of zb_hash.c, on the same random moves.
 *
 * Both sides start every variant at 1000 units, run the same moves in the
 * same order, and must end with the same balances: the run fails otherwise,
 * so a ratio never compares different work.
 */
#include "zb.h"
#include "zb_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZB_START_BALANCE 1000
/* Changes between clock readings (and journal trims on the library side). */
#define ZB_SEGMENT 65536

/*
 * One segment of moves [done, end) through the baseline; nanoseconds.
 * Both sides get their change arrays built before the clock starts, as a
 * caller hands them over: the baseline's carry their keys, the library's
 * their handles.
 */
static uint64_t base_segment(const zb_opts *o, zb_htable *t, const zb_catalog *cat,
                             const zb_move *moves, size_t done, size_t end, size_t batch,
                             zb_hchange *buf)
{
	uint64_t t0;
	for (size_t j = 0; j < end - done; j++) {
		const zb_move *m = &moves[done + j];
		memcpy(buf[j].key, cat->keys[m->variant], 32);
		buf[j].from = m->from;
		buf[j].to = m->to;
		buf[j].quantity = m->quantity;
	}
	zb_cg_on(o);
	t0 = zb_cpu_ns();
	for (size_t k = 0; k < end - done; k += batch) {
		size_t n = end - done - k < batch ? end - done - k : batch;
		if (zb_htable_apply(t, buf + k, n) != 0)
			zb_die("baseline apply", INV_EINVAL);
	}
	t0 = zb_cpu_ns() - t0;
	zb_cg_off(o);
	return t0;
}

typedef struct zb_lib {
	inv_store *store;
	inv_org *org;
	const inv_variant **handles;
	const inv_location *loc[ZB_LOC_COUNT];
} zb_lib;

static void trim_journal(inv_org *org)
{
	int64_t seq = 0;
	ZB_CHECK(inv_journal_last_sequence(&seq, org));
	if (seq > 0)
		ZB_CHECK(inv_journal_trim(org, seq));
}

/* A store with every product tracked, every variant resolved and holding
 * `start` units in the default STORE (moved in from SUPPLIER). */
static void lib_open(zb_lib *l, const zb_catalog *cat, uint64_t seed, int64_t start)
{
	size_t nprod = (cat->count + cat->per_product - 1) / cat->per_product;
	inv_uuid org_uuid;
	uint64_t st = seed ^ 0x0f;
	inv_change *buf;
	const size_t chunk = 8189;

	memset(l, 0, sizeof *l);
	zb_uuid_random(&org_uuid, &st);
	ZB_CHECK(inv_store_open_memory(&l->store, NULL));
	ZB_CHECK(inv_org_open(&l->org, l->store, &org_uuid));
	ZB_CHECK(inv_location_by_type(&l->loc[ZB_STORE], l->org, INV_LOCATION_STORE));
	ZB_CHECK(inv_location_by_type(&l->loc[ZB_SOLD], l->org, INV_LOCATION_SOLD));
	ZB_CHECK(inv_location_by_type(&l->loc[ZB_SUPPLIER], l->org, INV_LOCATION_SUPPLIER));
	for (size_t p = 0; p < nprod; p++)
		ZB_CHECK(inv_tracking_start(l->org, &cat->products[p]));
	l->handles = malloc(cat->count * sizeof *l->handles);
	buf = malloc(chunk * sizeof *buf);
	if (!l->handles || !buf)
		zb_die("malloc", INV_ENOMEM);
	for (size_t i = 0; i < cat->count; i++)
		ZB_CHECK(inv_variant_get(&l->handles[i], l->org,
		                         &cat->products[i / cat->per_product], &cat->variants[i]));
	for (size_t i = 0; i < cat->count; i += chunk) {
		size_t n = cat->count - i < chunk ? cat->count - i : chunk;
		for (size_t j = 0; j < n; j++) {
			buf[j].variant = l->handles[i + j];
			buf[j].from = l->loc[ZB_SUPPLIER];
			buf[j].to = l->loc[ZB_STORE];
			buf[j].quantity = start;
		}
		ZB_CHECK(inv_apply_changes(NULL, l->org, buf, n, NULL));
		trim_journal(l->org);
	}
	free(buf);
}

static void lib_close(zb_lib *l)
{
	free(l->handles);
	inv_org_close(l->org);
	inv_store_close(l->store);
	memset(l, 0, sizeof *l);
}

/* One segment of moves [done, end) through inv_apply_changes(); ns. */
static uint64_t lib_segment(const zb_opts *o, zb_lib *l, const zb_move *moves, size_t done,
                            size_t end, size_t batch, inv_change *buf)
{
	uint64_t t0;
	for (size_t j = 0; j < end - done; j++) {
		const zb_move *m = &moves[done + j];
		buf[j].variant = l->handles[m->variant];
		buf[j].from = l->loc[m->from];
		buf[j].to = l->loc[m->to];
		buf[j].quantity = m->quantity;
	}
	zb_cg_on(o);
	t0 = zb_cpu_ns();
	for (size_t k = 0; k < end - done; k += batch) {
		size_t n = end - done - k < batch ? end - done - k : batch;
		ZB_CHECK(inv_apply_changes(NULL, l->org, buf + k, n, NULL));
	}
	t0 = zb_cpu_ns() - t0;
	zb_cg_off(o);
	/* The journal would hold 120 bytes per change; an outbox consumer
	 * trims it.  Outside the clock: this case measures applying. */
	trim_journal(l->org);
	return t0;
}

static void lib_verify(zb_lib *l, const zb_htable *t, const zb_catalog *cat)
{
	for (size_t i = 0; i < cat->count; i++) {
		int64_t got = 0;
		const zb_hslot *s = zb_htable_find(t, cat->keys[i]);
		ZB_CHECK(inv_balance_get(&got, l->org, l->handles[i], NULL));
		if (!s || s->balance != got) {
			fprintf(stderr, "zinv-bench: memory: variant %zu: libzinv balance %lld, "
			        "baseline %lld\n", i, (long long)got, s ? (long long)s->balance : -1LL);
			exit(1);
		}
	}
}

/*
 * All moves through both sides at one batch size, in segments of
 * ZB_SEGMENT changes (a clock reading and a journal trim between).
 * Segments alternate between the sides, so that a burst of load from the
 * machine's other tenants hits both; under callgrind each side runs whole,
 * for its own dump.  Rates in changes per second.
 */
static void run_pair(const zb_opts *o, zb_htable *t, const zb_catalog *cat, zb_lib *lib,
                     const zb_move *moves, size_t nmoves, size_t batch, double *base_rate,
                     double *lib_rate)
{
	size_t seg = batch > ZB_SEGMENT ? batch : ZB_SEGMENT;
	uint64_t base_ns = 0, lib_ns = 0;
	zb_hchange *hbuf = malloc(seg * sizeof *hbuf);
	inv_change *lbuf = malloc(seg * sizeof *lbuf);
	char label[64];

	if (!hbuf || !lbuf)
		zb_die("malloc", INV_ENOMEM);
	for (int pass = 0; pass < (o->callgrind ? 2 : 1); pass++) {
		for (size_t done = 0; done < nmoves; done += seg) {
			size_t end = nmoves - done < seg ? nmoves : done + seg;
			if (pass == 0)
				base_ns += base_segment(o, t, cat, moves, done, end, batch, hbuf);
			if (pass == 1 || !o->callgrind)
				lib_ns += lib_segment(o, lib, moves, done, end, batch, lbuf);
		}
		snprintf(label, sizeof label, "memory %s batch=%zu", pass ? "libzinv" : "baseline",
		         batch);
		if (o->callgrind)
			zb_cg_dump(o, label, nmoves);
	}
	*base_rate = (double)nmoves * 1e9 / (double)(base_ns ? base_ns : 1);
	*lib_rate = (double)nmoves * 1e9 / (double)(lib_ns ? lib_ns : 1);
	free(hbuf);
	free(lbuf);
}

void zb_case_memory(const zb_opts *o)
{
	zb_catalog cat;
	zb_htable t;
	zb_move *moves = NULL;
	size_t maxb = 0;
	zb_lib l;

	for (size_t i = 0; i < o->batch_count; i++)
		if (o->batches[i] > maxb)
			maxb = o->batches[i];
	if (zb_catalog_init(&cat, o->mem_variants, 10, o->seed) != 0 ||
	    !(moves = zb_moves_new(o->mem_moves, o->mem_variants, o->seed)) ||
	    zb_htable_init(&t, o->mem_variants, maxb) != 0)
		zb_die("memory case setup", INV_ENOMEM);
	for (size_t i = 0; i < cat.count; i++)
		if (zb_htable_insert(&t, cat.keys[i], ZB_START_BALANCE) != 0)
			zb_die("baseline insert", INV_ENOMEM);
	lib_open(&l, &cat, o->seed, ZB_START_BALANCE);
	for (size_t i = 0; i < o->batch_count; i++) {
		size_t b = o->batches[i];
		zb_row r;
		memset(&r, 0, sizeof r);
		snprintf(r.group, sizeof r.group, "memory");
		snprintf(r.name, sizeof r.name, "apply batch=%zu", b);
		snprintf(r.unit, sizeof r.unit, "changes/s");
		snprintf(r.note, sizeof r.note, "%zu variants, %zu moves", cat.count, o->mem_moves);
		r.higher_better = 1;
		r.target = b == 1 || b == 1000 ? 0.5 : 0;
		run_pair(o, &t, &cat, &l, moves, o->mem_moves, b, &r.base, &r.lib);
		zb_report(&r);
	}
	lib_verify(&l, &t, &cat);
	lib_close(&l);
	zb_htable_free(&t);
	free(moves);
	zb_catalog_free(&cat);
}
