/*
 * check_lowstock.c - low-stock levels, alerts and crossings.
 */
#include <string.h>

#include "testutil.h"

static struct tu_env env;
static inv_uuid p, v;

static void setup(void)
{
	tu_open(&env, INV_NEGATIVE_ALLOW);
	p = tu_uuid(10);
	v = tu_uuid(11);
}

static void teardown(void)
{
	tu_close(&env);
}

START_TEST(test_get_returns_defaults_when_there_is_no_entry)
{
	inv_low_stock ls;

	memset(&ls, 0x55, sizeof(ls));
	ck_assert_int_eq(inv_low_stock_get(&ls, env.org, env.store_loc, &p, &v), 0);
	ck_assert_int_eq(ls.has_level, 0);
	ck_assert_int_eq(ls.alert, 0);
	ck_assert_int_eq(ls.level, 0);
	ck_assert_mem_eq(&ls.product, &p, 16);
	ck_assert_mem_eq(&ls.variant, &v, 16);
}
END_TEST

START_TEST(test_set_then_get_round_trips)
{
	inv_low_stock ls;
	int64_t level = 0;

	ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &v, &level, 0), 0);
	ck_assert_int_eq(inv_low_stock_get(&ls, env.org, env.store_loc, &p, &v), 0);
	ck_assert_int_eq(ls.has_level, 1);
	ck_assert_int_eq(ls.level, 0);
	ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &v, NULL, 5), 0);
	ck_assert_int_eq(inv_low_stock_get(&ls, env.org, env.store_loc, &p, &v), 0);
	ck_assert_int_eq(ls.has_level, 0);
	ck_assert_int_eq(ls.alert, 1);
	/* Levels are not journaled. */
	ck_assert_int_eq(tu_last_sequence(&env), 0);
}
END_TEST

START_TEST(test_setting_the_defaults_deletes_the_entry)
{
	inv_low_stock *list = NULL;
	size_t n = 9;
	int64_t level = 3;

	ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &v, &level, 1), 0);
	ck_assert_int_eq(inv_low_stock_list(&list, &n, env.org, env.store_loc, NULL), 0);
	ck_assert_uint_eq(n, 1);
	inv_free(list);
	ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &v, NULL, 0), 0);
	ck_assert_int_eq(inv_low_stock_list(&list, &n, env.org, env.store_loc, NULL), 0);
	ck_assert_uint_eq(n, 0);
	inv_free(list);
}
END_TEST

START_TEST(test_delete_removes_and_tolerates_a_missing_entry)
{
	inv_low_stock ls;
	int64_t level = 3;

	ck_assert_int_eq(inv_low_stock_delete(env.org, env.store_loc, &p, &v), 0);
	ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &v, &level, 0), 0);
	ck_assert_int_eq(inv_low_stock_delete(env.org, env.store_loc, &p, &v), 0);
	ck_assert_int_eq(inv_low_stock_get(&ls, env.org, env.store_loc, &p, &v), 0);
	ck_assert_int_eq(ls.has_level, 0);
}
END_TEST

START_TEST(test_list_is_sorted_and_filters_by_product)
{
	inv_low_stock *list = NULL;
	size_t n = 0;
	int64_t level = 1;
	uint32_t keys[4][2] = { { 30, 32 }, { 10, 12 }, { 30, 31 }, { 10, 11 } };
	size_t i;

	for (i = 0; i < 4; i++) {
		inv_uuid pp = tu_uuid(keys[i][0]), vv = tu_uuid(keys[i][1]);

		ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &pp, &vv, &level, 0), 0);
	}
	ck_assert_int_eq(inv_low_stock_list(&list, &n, env.org, env.store_loc, NULL), 0);
	ck_assert_uint_eq(n, 4);
	for (i = 0; i + 1 < n; i++)
		ck_assert_int_lt(memcmp(&list[i], &list[i + 1], 32), 0);
	inv_free(list);
	{
		inv_uuid pp = tu_uuid(30);

		ck_assert_int_eq(inv_low_stock_list(&list, &n, env.org, env.store_loc, &pp), 0);
		ck_assert_uint_eq(n, 2);
		ck_assert_mem_eq(&list[0].product, &pp, 16);
		inv_free(list);
	}
}
END_TEST

START_TEST(test_bad_location_and_level_are_rejected)
{
	inv_low_stock ls;
	inv_low_stock *list;
	size_t n;
	int64_t level = -1;
	int rc;

	rc = inv_low_stock_set(env.org, env.sold, &p, &v, NULL, 1);
	tu_assert_error(rc, INV_EINVAL, -1, "location");
	rc = inv_low_stock_set(env.org, NULL, &p, &v, NULL, 1);
	tu_assert_error(rc, INV_EINVAL, -1, "location");
	rc = inv_low_stock_set(env.org, env.store_loc, &p, &v, &level, 1);
	tu_assert_error(rc, INV_EINVAL, -1, "level");
	level = INV_QUANTITY_MAX + 1;
	rc = inv_low_stock_set(env.org, env.store_loc, &p, &v, &level, 1);
	tu_assert_error(rc, INV_EINVAL, -1, "level");
	rc = inv_low_stock_get(&ls, env.org, env.bin, &p, &v);
	tu_assert_error(rc, INV_EINVAL, -1, "location");
	rc = inv_low_stock_list(&list, &n, env.org, env.supplier, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "location");
	rc = inv_low_stock_set(env.org, env.store_loc, NULL, &v, NULL, 1);
	tu_assert_error(rc, INV_EINVAL, -1, "product");
	rc = inv_low_stock_delete(env.org, env.store_loc, &p, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "variant");
}
END_TEST

START_TEST(test_crossings_are_journaled_once_per_crossing)
{
	const inv_variant *h;
	int64_t level = 5;
	inv_journal *j = NULL;
	inv_change c[3];
	size_t i, lows = 0;

	tu_track(&env, 10);
	h = tu_variant(&env, 10, 11);
	tu_stock(&env, h, 10);
	ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &v, &level, 1), 0);
	/* 10 -> 4 (low) -> 3 (still low) -> 8 (back) in one batch: the batch
	 * as a whole goes from not low to not low, so no crossing. */
	c[0] = (inv_change){ h, env.store_loc, env.sold, 6 };
	c[1] = (inv_change){ h, env.store_loc, env.sold, 1 };
	c[2] = (inv_change){ h, env.supplier, env.store_loc, 5 };
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, c, 3, NULL), 0);
	ck_assert_int_eq(tu_move(&env, h, env.store_loc, env.sold, 4), 0);  /* 8 -> 4: low */
	ck_assert_int_eq(tu_move(&env, h, env.store_loc, env.sold, 1), 0);  /* 4 -> 3: still */
	ck_assert_int_eq(tu_move(&env, h, env.supplier, env.store_loc, 2), 0); /* 5: back */

	ck_assert_int_eq(inv_journal_read(&j, env.org, NULL), 0);
	for (i = 0; i < inv_journal_count(j); i++) {
		const inv_journal_entry *e = inv_journal_at(j, i);
		size_t k;

		for (k = 0; k < inv_journal_entry_record_count(e); k++) {
			const inv_journal_record *r = &inv_journal_entry_records(e)[k];

			if (r->kind != INV_RECORD_LOW_STOCK)
				continue;
			lows++;
			ck_assert_int_eq(r->quantity, 5);
			ck_assert_mem_eq(&r->location, inv_location_uuid(env.store_loc), 16);
			if (lows == 1) {
				ck_assert_int_eq(inv_journal_entry_sequence(e), 4);
				ck_assert_int_eq(r->low, 1);
				ck_assert_int_eq(r->after, 4);
			} else {
				ck_assert_int_eq(inv_journal_entry_sequence(e), 6);
				ck_assert_int_eq(r->low, 0);
				ck_assert_int_eq(r->after, 5);
			}
		}
	}
	ck_assert_uint_eq(lows, 2);
	inv_journal_free(j);
}
END_TEST

/* A batch changing many variants reads the levels differently (one scan);
 * the crossings are the same, in the order the batch first touched them. */
START_TEST(test_crossings_of_a_large_batch_follow_first_touch_order)
{
	enum { N = 40 };
	const inv_variant *h[N];
	inv_change c[N];
	inv_journal *j = NULL;
	const inv_journal_entry *e;
	const inv_journal_record *r;
	int64_t level = 5;
	size_t i, lows = 0;
	int round;

	tu_track(&env, 10);
	for (i = 0; i < N; i++) {
		h[i] = tu_variant(&env, 10, 100 + (uint32_t)i);
		c[i] = (inv_change){ h[i], env.supplier, env.store_loc, 10 };
	}
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, c, N, NULL), 0);
	/* Levels on variants 107, 103 and 130; 130 stays above it. */
	for (i = 0; i < 3; i++) {
		inv_uuid vv = tu_uuid(i == 0 ? 107 : i == 1 ? 103 : 130);
		int64_t lv = i == 2 ? 2 : level;

		ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &vv, &lv, 0), 0);
	}
	/* Twice: down across the levels, then back up. */
	for (round = 0; round < 2; round++) {
		for (i = 0; i < N; i++)
			c[i] = (inv_change){ h[N - 1 - i], env.store_loc, env.sold, 7 };
		if (round == 1)
			for (i = 0; i < N; i++)
				c[i] = (inv_change){ h[N - 1 - i], env.supplier, env.store_loc, 7 };
		ck_assert_int_eq(inv_apply_changes(NULL, env.org, c, N, NULL), 0);
		ck_assert_int_eq(inv_journal_read(&j, env.org, NULL), 0);
		e = inv_journal_at(j, inv_journal_count(j) - 1);
		ck_assert_uint_eq(inv_journal_entry_record_count(e), N + 2);
		r = inv_journal_entry_records(e) + N;
		for (i = 0; i < 2; i++, lows++) {
			inv_uuid want = tu_uuid(i == 0 ? 107 : 103);

			ck_assert_int_eq(r[i].kind, INV_RECORD_LOW_STOCK);
			ck_assert_mem_eq(&r[i].variant, &want, 16);
			ck_assert_int_eq(r[i].low, round == 0);
			ck_assert_int_eq(r[i].after, round == 0 ? 3 : 10);
			ck_assert_int_eq(r[i].quantity, 5);
		}
		inv_journal_free(j);
	}
	ck_assert_uint_eq(lows, 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lowstock");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_get_returns_defaults_when_there_is_no_entry);
	tcase_add_test(tc, test_set_then_get_round_trips);
	tcase_add_test(tc, test_setting_the_defaults_deletes_the_entry);
	tcase_add_test(tc, test_delete_removes_and_tolerates_a_missing_entry);
	tcase_add_test(tc, test_list_is_sorted_and_filters_by_product);
	tcase_add_test(tc, test_bad_location_and_level_are_rejected);
	tcase_add_test(tc, test_crossings_are_journaled_once_per_crossing);
	tcase_add_test(tc, test_crossings_of_a_large_batch_follow_first_touch_order);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
