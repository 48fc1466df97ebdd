/*
 * check_threads.c - many threads on one store and one organization: no
 * update lost, a gap-free journal, events in commit order.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

enum { THREADS = 8, BATCHES = 10000, VARIANTS = 16 };

static struct tu_env env;
static pthread_t tids[2];

/* The last byte of a tu_uuid(): which test organization an event is about. */
static int org_number(const inv_uuid *u)
{
	return u->bytes[15];
}

struct order_check {
	pthread_mutex_t lock;   /* the callback runs on many threads */
	int64_t last;
	int64_t out_of_order;
	int64_t events;
};

static void check_order(const inv_event *e, void *payload)
{
	struct order_check *o = payload;
	int64_t seq = inv_journal_entry_sequence(inv_event_entry(e));

	pthread_mutex_lock(&o->lock);
	if (seq != o->last + 1)
		o->out_of_order++;
	o->last = seq;
	o->events++;
	pthread_mutex_unlock(&o->lock);
}

struct worker {
	pthread_t thread;
	int index;
	int failures;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	inv_uuid p = tu_uuid(10);
	int i;

	for (i = w->index; i < BATCHES; i += THREADS) {
		const inv_variant *in = NULL, *out = NULL;
		inv_uuid vin = tu_uuid(100 + (uint32_t)(i % VARIANTS));
		inv_uuid vout = tu_uuid(100 + (uint32_t)((i * 7) % VARIANTS));
		inv_change c[2];

		/* Resolving handles concurrently returns the shared ones. */
		if (inv_variant_get(&in, env.org, &p, &vin) ||
		    inv_variant_get(&out, env.org, &p, &vout)) {
			w->failures++;
			continue;
		}
		c[0] = (inv_change){ in, env.supplier, env.store_loc, 3 };
		c[1] = (inv_change){ out, env.store_loc, env.sold, 1 };
		if (inv_apply_changes(NULL, env.org, c, 2, NULL))
			w->failures++;
	}
	return NULL;
}

static volatile int readers_stop;

static void *read_loop(void *arg)
{
	int *failures = arg;

	while (!__atomic_load_n(&readers_stop, __ATOMIC_RELAXED)) {
		inv_balance *b = NULL;
		size_t n = 0;

		if (inv_balances_read(&b, &n, NULL, env.org, NULL))
			(*failures)++;
		inv_free(b);
	}
	return NULL;
}

START_TEST(test_concurrent_batches_lose_no_update_and_journal_stays_gap_free)
{
	struct worker w[THREADS];
	struct order_check order = { .lock = PTHREAD_MUTEX_INITIALIZER };
	int64_t want[VARIANTS] = { 0 };
	pthread_t reader;
	int reader_failures = 0;
	inv_journal *j = NULL;
	uint64_t id;
	int i;

	tu_track(&env, 10);
	order.last = 1;
	ck_assert_int_eq(inv_subscribe(&id, env.store, 0, check_order, &order), 0);
	ck_assert_int_eq(pthread_create(&reader, NULL, read_loop, &reader_failures), 0);
	for (i = 0; i < THREADS; i++) {
		w[i].index = i;
		w[i].failures = 0;
		ck_assert_int_eq(pthread_create(&w[i].thread, NULL, work, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(w[i].thread, NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	__atomic_store_n(&readers_stop, 1, __ATOMIC_RELAXED);
	pthread_join(reader, NULL);
	ck_assert_int_eq(reader_failures, 0);

	for (i = 0; i < BATCHES; i++) {
		want[i % VARIANTS] += 3;
		want[(i * 7) % VARIANTS] -= 1;
	}
	for (i = 0; i < VARIANTS; i++)
		ck_assert_int_eq(tu_balance(&env, tu_variant(&env, 10, 100 + (uint32_t)i)), want[i]);

	ck_assert_int_eq(tu_last_sequence(&env), BATCHES + 1);
	ck_assert_int_eq(inv_journal_read(&j, env.org, NULL), 0);
	ck_assert_uint_eq(inv_journal_count(j), BATCHES + 1);
	for (i = 0; i < BATCHES + 1; i++)
		ck_assert_int_eq(inv_journal_entry_sequence(inv_journal_at(j, (size_t)i)), i + 1);
	inv_journal_free(j);
	ck_assert_int_eq(order.events, BATCHES);
	ck_assert_int_eq(order.out_of_order, 0);
}
END_TEST

/* Two organizations, a thread on each, and a subscriber that answers every
 * balance change of one organization with a write to the other: the
 * callbacks never wait for each other (a busy organization answers
 * INV_EBUSY), so this finishes, and every write that succeeded counts. */
enum { CROSS_BATCHES = 500 };

struct cross {
	inv_org *org[2];
	const inv_variant *v[2];
	const inv_location *supplier[2], *store[2];
	int ok[2];          /* successful callback writes into org[i] */
	int busy[2];
	int other_rc;
	pthread_mutex_t lock;
};

static void write_to_the_other(const inv_event *e, void *payload)
{
	struct cross *x = payload;
	int to = org_number(inv_event_org_uuid(e)) == 1 ? 1 : 0;
	inv_change c = { x->v[to], x->supplier[to], x->store[to], 1 };
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_uuid mark = tu_uuid(99);
	int rc;

	/* Answer the workers' batches, not the answers. */
	if (inv_event_get_type(e) != INV_EVENT_BALANCE_CHANGED ||
	    inv_journal_entry_external_uuid(inv_event_entry(e)))
		return;
	opts.external_uuid = &mark;
	/* Linger, so that both threads are inside callbacks at once. */
	nanosleep(&(struct timespec){ 0, 20000 }, NULL);
	rc = inv_apply_changes(NULL, x->org[to], &c, 1, &opts);
	pthread_mutex_lock(&x->lock);
	if (rc == 0)
		x->ok[to]++;
	else if (rc == INV_EBUSY)
		x->busy[to]++;
	else
		x->other_rc = rc;
	pthread_mutex_unlock(&x->lock);
}

struct cross_worker {
	struct cross *x;
	int side;
	int failures;
};

static void *cross_work(void *arg)
{
	struct cross_worker *w = arg;
	struct cross *x = w->x;
	inv_change c = { x->v[w->side], x->supplier[w->side], x->store[w->side], 1 };
	int i;

	for (i = 0; i < CROSS_BATCHES; i++)
		if (inv_apply_changes(NULL, x->org[w->side], &c, 1, NULL))
			w->failures++;
	return NULL;
}

START_TEST(test_callbacks_writing_to_each_others_organizations_never_deadlock)
{
	struct cross x = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct cross_worker w[2];
	inv_uuid p = tu_uuid(10), v = tu_uuid(11);
	uint64_t id;
	int i;

	for (i = 0; i < 2; i++) {
		inv_uuid org = tu_uuid((uint32_t)i + 1);

		ck_assert_int_eq(inv_org_open(&x.org[i], env.store, &org), 0);
		ck_assert_int_eq(inv_tracking_start(x.org[i], &p), 0);
		ck_assert_int_eq(inv_variant_get(&x.v[i], x.org[i], &p, &v), 0);
		ck_assert_int_eq(inv_location_by_type(&x.store[i], x.org[i], INV_LOCATION_STORE), 0);
		ck_assert_int_eq(inv_location_by_type(&x.supplier[i], x.org[i],
		                                      INV_LOCATION_SUPPLIER), 0);
	}
	ck_assert_int_eq(inv_subscribe(&id, env.store, 0, write_to_the_other, &x), 0);
	for (i = 0; i < 2; i++) {
		w[i] = (struct cross_worker){ &x, i, 0 };
		ck_assert_int_eq(pthread_create(&tids[i], NULL, cross_work, &w[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(tids[i], NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	ck_assert_int_eq(x.other_rc, 0);
	for (i = 0; i < 2; i++) {
		int64_t bal = -1;

		ck_assert_int_eq(inv_balance_get(&bal, x.org[i], x.v[i], NULL), 0);
		ck_assert_int_eq(bal, CROSS_BATCHES + x.ok[i]);
		ck_assert_int_eq(x.ok[i] + x.busy[i], CROSS_BATCHES);
		inv_org_close(x.org[i]);
	}
}
END_TEST

static void setup(void)
{
	tu_open(&env, INV_NEGATIVE_ALLOW);
}

static void teardown(void)
{
	tu_close(&env);
}

int main(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_concurrent_batches_lose_no_update_and_journal_stays_gap_free);
	tcase_add_test(tc, test_callbacks_writing_to_each_others_organizations_never_deadlock);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
