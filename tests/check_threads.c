/*
 * check_threads.c - many threads on one store and one organization: no
 * update lost, a gap-free journal, events in commit order.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { THREADS = 8, BATCHES = 10000, VARIANTS = 16 };

static struct tu_env env;

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
	suite_add_tcase(s, tc);
	return tu_run(s);
}
