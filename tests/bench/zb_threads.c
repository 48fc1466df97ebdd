/*
 * zb_threads.c - case "threads": two threads applying batches to two
 * organizations of one memory store, against one thread doing the same
 * work for one organization.  Wall-clock rates; the target is a speedup of
 * 1.6 on two cores (the machine may be shared: see the load average).
 */
#include "zb.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZB_T_BATCH 1000

typedef struct zb_torg {
	inv_org *org;
	const inv_variant **handles;
	const inv_location *loc[ZB_LOC_COUNT];
	const zb_move *moves;
	size_t nmoves;
	inv_change *buf;
} zb_torg;

static void torg_open(zb_torg *t, inv_store *s, const zb_catalog *cat, uint64_t seed)
{
	size_t nprod = (cat->count + cat->per_product - 1) / cat->per_product;
	inv_uuid u;
	uint64_t st = seed;

	zb_uuid_random(&u, &st);
	ZB_CHECK(inv_org_open(&t->org, s, &u));
	ZB_CHECK(inv_location_by_type(&t->loc[ZB_STORE], t->org, INV_LOCATION_STORE));
	ZB_CHECK(inv_location_by_type(&t->loc[ZB_SOLD], t->org, INV_LOCATION_SOLD));
	ZB_CHECK(inv_location_by_type(&t->loc[ZB_SUPPLIER], t->org, INV_LOCATION_SUPPLIER));
	for (size_t p = 0; p < nprod; p++)
		ZB_CHECK(inv_tracking_start(t->org, &cat->products[p]));
	t->handles = malloc(cat->count * sizeof *t->handles);
	t->buf = malloc(ZB_T_BATCH * sizeof *t->buf);
	if (!t->handles || !t->buf)
		zb_die("malloc", INV_ENOMEM);
	for (size_t i = 0; i < cat->count; i++)
		ZB_CHECK(inv_variant_get(&t->handles[i], t->org,
		                         &cat->products[i / cat->per_product], &cat->variants[i]));
}

/* Applies every move in batches of ZB_T_BATCH; the journal is trimmed
 * every 64 batches, as an outbox consumer would. */
static void *torg_run(void *arg)
{
	zb_torg *t = arg;
	int64_t seq;

	for (size_t k = 0; k < t->nmoves; k += ZB_T_BATCH) {
		size_t n = t->nmoves - k < ZB_T_BATCH ? t->nmoves - k : ZB_T_BATCH;
		for (size_t j = 0; j < n; j++) {
			const zb_move *m = &t->moves[k + j];
			t->buf[j].variant = t->handles[m->variant];
			t->buf[j].from = t->loc[m->from];
			t->buf[j].to = t->loc[m->to];
			t->buf[j].quantity = m->quantity;
		}
		ZB_CHECK(inv_apply_changes(NULL, t->org, t->buf, n, NULL));
		if ((k / ZB_T_BATCH) % 64 == 63) {
			ZB_CHECK(inv_journal_last_sequence(&seq, t->org));
			ZB_CHECK(inv_journal_trim(t->org, seq));
		}
	}
	return NULL;
}

void zb_case_threads(const zb_opts *o)
{
	zb_catalog cat;
	zb_move *moves;
	inv_store *s;
	zb_torg t[2];
	pthread_t th;
	uint64_t one, two;
	size_t n = o->mem_moves;
	zb_row r;

	if (zb_catalog_init(&cat, o->mem_variants, 10, o->seed) != 0 ||
	    !(moves = zb_moves_new(n, o->mem_variants, o->seed)))
		zb_die("threads case setup", INV_ENOMEM);
	memset(t, 0, sizeof t);
	ZB_CHECK(inv_store_open_memory(&s, NULL));
	for (int i = 0; i < 2; i++) {
		torg_open(&t[i], s, &cat, o->seed + 17 * (uint64_t)(i + 1));
		t[i].moves = moves;
		t[i].nmoves = n;
	}
	/* Warm both organizations (every variant record exists), then time. */
	torg_run(&t[0]);
	torg_run(&t[1]);
	one = zb_now_ns();
	torg_run(&t[0]);
	one = zb_now_ns() - one;
	two = zb_now_ns();
	if (pthread_create(&th, NULL, torg_run, &t[1]) != 0)
		zb_die("pthread_create", INV_ENOMEM);
	torg_run(&t[0]);
	pthread_join(th, NULL);
	two = zb_now_ns() - two;

	memset(&r, 0, sizeof r);
	snprintf(r.group, sizeof r.group, "threads");
	snprintf(r.name, sizeof r.name, "2 orgs x 2 threads batch=%d", ZB_T_BATCH);
	snprintf(r.unit, sizeof r.unit, "changes/s");
	snprintf(r.note, sizeof r.note, "base = 1 thread, 1 org; %zu variants, %zu moves each",
	         cat.count, n);
	r.higher_better = 1;
	r.target = 1.6;
	r.base = (double)n * 1e9 / (double)(one ? one : 1);
	r.lib = 2.0 * (double)n * 1e9 / (double)(two ? two : 1);
	zb_report(&r);

	for (int i = 0; i < 2; i++) {
		free(t[i].handles);
		free(t[i].buf);
		inv_org_close(t[i].org);
	}
	inv_store_close(s);
	free(moves);
	zb_catalog_free(&cat);
}
