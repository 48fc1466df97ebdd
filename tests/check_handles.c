/*
 * check_handles.c - the batch engine's scratch in the variant handles,
 * white-box: a handle keeps the low bits of the organization's batch
 * counter and cache epoch (struct inv_variant in lib/core_int.h), and
 * these tests drive the counters to where those bits come round.  Linked
 * against libzinv.a, whose internals they read.
 */
#include <stdlib.h>
#include <string.h>

#include <zinv/backend.h>

#include "../lib/core_int.h"
#include "testutil.h"

static struct tu_env env;
static const inv_variant *v11, *v12;

static void setup(void)
{
	tu_open(&env, INV_NEGATIVE_ALLOW);
	tu_track(&env, 10);
	v11 = tu_variant(&env, 10, 11);
	v12 = tu_variant(&env, 10, 12);
}

static void teardown(void)
{
	tu_close(&env);
}

START_TEST(test_handles_forget_their_slots_when_the_batch_counter_wraps)
{
	inv_change c[2];

	tu_stock(&env, v11, 5);
	/* v11 assigned a slot in the batch whose low 32 bits are 1, the value
	 * the counter takes next once it wraps and steps past 0. */
	((inv_variant *)v11)->gen = 1;
	env.org->gen = UINT32_MAX;
	c[0] = (inv_change){ v12, env.supplier, env.store_loc, 3 };
	c[1] = (inv_change){ v11, env.supplier, env.store_loc, 4 };
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, c, 2, NULL), 0);
	ck_assert_uint_eq((uint32_t)env.org->gen, 1);
	ck_assert_int_eq(tu_balance(&env, v11), 9);
	ck_assert_int_eq(tu_balance(&env, v12), 3);
}
END_TEST

/* The STORE balance of v stored as `balance`, behind the engine's back. */
static void backend_put(const inv_variant *v, int64_t balance)
{
	const inv_backend_ops *ops = env.store->ops;
	inv_variant_record rec = { .location = env.store_loc->uuid, .variant = v->uuid,
	                           .product = tu_uuid(10), .balance = balance };
	void *txn;

	ck_assert_int_eq(ops->begin(env.store->instance, &env.org->node.key, 1, &txn), 0);
	ck_assert_int_eq(ops->variant_put(txn, &env.org->node.key, &rec), 0);
	ck_assert_int_eq(ops->commit(txn), 0);
}

START_TEST(test_handles_forget_their_cache_when_the_epoch_wraps)
{
	tu_stock(&env, v11, 5);
	/* v11 cached in the epoch whose low 31 bits are 1, the value the
	 * epoch takes next once they wrap and step past 0. */
	((inv_variant *)v11)->cache = inv__variant_cache(1, 1);
	env.org->cache_epoch = 0x7fffffff;
	backend_put(v11, 100);
	inv__org_cache_stale(env.org);
	ck_assert_uint_eq(env.org->cache_epoch & 0x7fffffff, 1);
	ck_assert_int_eq(tu_move(&env, v11, env.supplier, env.store_loc, 1), 0);
	ck_assert_int_eq(tu_balance(&env, v11), 101);
}
END_TEST

static Suite *handles_suite(void)
{
	Suite *s = suite_create("handles");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_handles_forget_their_slots_when_the_batch_counter_wraps);
	tcase_add_test(tc, test_handles_forget_their_cache_when_the_epoch_wraps);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(handles_suite());
}
