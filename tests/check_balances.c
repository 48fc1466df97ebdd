/*
 * check_balances.c - reading balances.
 */
#include <string.h>

#include "testutil.h"

static struct tu_env env;

static void setup(void)
{
	tu_open(&env, INV_NEGATIVE_ALLOW);
}

static void teardown(void)
{
	tu_close(&env);
}

/* Products 10 and 30 tracked, 20 not; variants stocked out of order. */
static void stock(void)
{
	tu_track(&env, 30);
	tu_track(&env, 10);
	tu_stock(&env, tu_variant(&env, 30, 32), 2);
	tu_stock(&env, tu_variant(&env, 10, 12), 1);
	tu_stock(&env, tu_variant(&env, 30, 31), 5);
	tu_stock(&env, tu_variant(&env, 10, 11), 4);
	ck_assert_int_eq(tu_move(&env, tu_variant(&env, 10, 11), env.store_loc, env.sold, 4), 0);
	tu_track(&env, 20);
	tu_stock(&env, tu_variant(&env, 20, 21), 9);
	{
		inv_uuid p20 = tu_uuid(20);

		ck_assert_int_eq(inv_tracking_stop(env.org, &p20), 0);
	}
}

static void assert_item(const inv_balance *b, uint32_t product, uint32_t variant, int64_t bal)
{
	inv_uuid p = tu_uuid(product), v = tu_uuid(variant);

	ck_assert_mem_eq(&b->product, &p, 16);
	ck_assert_mem_eq(&b->variant, &v, 16);
	ck_assert_int_eq(b->balance, bal);
}

START_TEST(test_reads_list_tracked_non_zero_balances_sorted)
{
	inv_balance *b = NULL;
	size_t n = 0;
	int more = -1;

	stock();
	ck_assert_int_eq(inv_balances_read(&b, &n, &more, env.org, NULL), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(more, 0);
	assert_item(&b[0], 10, 12, 1);
	assert_item(&b[1], 30, 31, 5);
	assert_item(&b[2], 30, 32, 2);
	ck_assert_int_eq(b[0].updated, TU_T0);
	inv_free(b);
}
END_TEST

START_TEST(test_reads_include_zero_on_request)
{
	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	inv_balance *b = NULL;
	size_t n = 0;

	stock();
	q.include_zero = 1;
	ck_assert_int_eq(inv_balances_read(&b, &n, NULL, env.org, &q), 0);
	ck_assert_uint_eq(n, 4);
	assert_item(&b[0], 10, 11, 0);
	inv_free(b);
}
END_TEST

START_TEST(test_reads_filter_by_product)
{
	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	inv_uuid products[3] = { tu_uuid(30), tu_uuid(20), tu_uuid(30) };
	inv_balance *b = NULL;
	size_t n = 0;

	stock();
	q.products = products;
	q.product_count = 3;
	ck_assert_int_eq(inv_balances_read(&b, &n, NULL, env.org, &q), 0);
	ck_assert_uint_eq(n, 2);
	assert_item(&b[0], 30, 31, 5);
	assert_item(&b[1], 30, 32, 2);
	inv_free(b);
	/* An empty list of products selects none. */
	q.product_count = 0;
	ck_assert_int_eq(inv_balances_read(&b, &n, NULL, env.org, &q), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_reads_page_with_cursor_and_limit)
{
	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	inv_balance *b = NULL;
	size_t n = 0;
	int more = 0;

	stock();
	q.limit = 2;
	ck_assert_int_eq(inv_balances_read(&b, &n, &more, env.org, &q), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(more, 1);
	q.has_after = 1;
	q.after_product = b[1].product;
	q.after_variant = b[1].variant;
	inv_free(b);
	ck_assert_int_eq(inv_balances_read(&b, &n, &more, env.org, &q), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(more, 0);
	assert_item(&b[0], 30, 32, 2);
	inv_free(b);
}
END_TEST

START_TEST(test_reads_fill_low_stock_on_request)
{
	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	inv_balance *b = NULL;
	inv_uuid p = tu_uuid(30), v = tu_uuid(31);
	int64_t level = 10;
	size_t n = 0;

	stock();
	ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &v, &level, 1), 0);
	q.with_low_stock = 1;
	ck_assert_int_eq(inv_balances_read(&b, &n, NULL, env.org, &q), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(b[0].has_low_stock_level, 0);
	ck_assert_int_eq(b[1].has_low_stock_level, 1);
	ck_assert_int_eq(b[1].low_stock_level, 10);
	ck_assert_int_eq(b[1].low_stock_alert, 1);
	inv_free(b);
}
END_TEST

START_TEST(test_sold_bin_and_supplier_hold_no_balances)
{
	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	const inv_location *locs[3];
	inv_balance *b = NULL;
	size_t n = 7, i;
	int64_t bal = -1;

	stock();
	locs[0] = env.sold;
	locs[1] = env.bin;
	locs[2] = env.supplier;
	for (i = 0; i < 3; i++) {
		q.location = locs[i];
		ck_assert_int_eq(inv_balances_read(&b, &n, NULL, env.org, &q), 0);
		ck_assert_uint_eq(n, 0);
		ck_assert_int_eq(inv_balance_get(&bal, env.org, tu_variant(&env, 10, 12), locs[i]), 0);
		ck_assert_int_eq(bal, 0);
	}
}
END_TEST

START_TEST(test_balance_get_reads_any_variant_tracked_or_not)
{
	stock();
	ck_assert_int_eq(tu_balance(&env, tu_variant(&env, 20, 21)), 9);
	ck_assert_int_eq(tu_balance(&env, tu_variant(&env, 10, 99)), 0);
}
END_TEST

START_TEST(test_reads_reject_bad_arguments)
{
	struct tu_env other;
	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	inv_balance *b;
	size_t n;
	int64_t bal;
	int rc;

	tu_open(&other, INV_NEGATIVE_ALLOW);
	q.location = other.store_loc;
	rc = inv_balances_read(&b, &n, NULL, env.org, &q);
	tu_assert_error(rc, INV_EINVAL, -1, "location");
	q.location = NULL;
	q.version = 2;
	rc = inv_balances_read(&b, &n, NULL, env.org, &q);
	tu_assert_error(rc, INV_EVERSION, -1, NULL);
	q.version = 1;
	q.product_count = 2;
	rc = inv_balances_read(&b, &n, NULL, env.org, &q);
	tu_assert_error(rc, INV_EINVAL, -1, "products");
	rc = inv_balance_get(&bal, env.org, tu_variant(&other, 1, 2), NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "variant");
	rc = inv_balance_get(&bal, env.org, tu_variant(&env, 1, 2), other.store_loc);
	tu_assert_error(rc, INV_EINVAL, -1, "location");
	ck_assert_int_eq(inv_balance_query_init(&q, 3), INV_EVERSION);
	ck_assert_int_eq(inv_balance_query_init(&q, 1), 0);
	tu_close(&other);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("balances");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reads_list_tracked_non_zero_balances_sorted);
	tcase_add_test(tc, test_reads_include_zero_on_request);
	tcase_add_test(tc, test_reads_filter_by_product);
	tcase_add_test(tc, test_reads_page_with_cursor_and_limit);
	tcase_add_test(tc, test_reads_fill_low_stock_on_request);
	tcase_add_test(tc, test_sold_bin_and_supplier_hold_no_balances);
	tcase_add_test(tc, test_balance_get_reads_any_variant_tracked_or_not);
	tcase_add_test(tc, test_reads_reject_bad_arguments);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
