/*
 * check_tracking.c - which products count.
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

START_TEST(test_start_tracking_makes_a_product_count)
{
	inv_uuid p = tu_uuid(10);
	int tracked = -1;

	ck_assert_int_eq(inv_tracking_get(&tracked, env.org, &p), 0);
	ck_assert_int_eq(tracked, 0);
	tu_track(&env, 10);
	ck_assert_int_eq(inv_tracking_get(&tracked, env.org, &p), 0);
	ck_assert_int_eq(tracked, 1);
	ck_assert_int_eq(tu_last_sequence(&env), 1);
}
END_TEST

START_TEST(test_starting_a_tracked_product_is_not_an_error_and_stores_nothing)
{
	struct tu_events ev = { 0 };
	uint64_t id;

	tu_track(&env, 10);
	ck_assert_int_eq(inv_subscribe(&id, env.store, 0, tu_collect_event, &ev), 0);
	tu_track(&env, 10);
	ck_assert_int_eq(tu_last_sequence(&env), 1);
	ck_assert_uint_eq(ev.count, 0);
}
END_TEST

START_TEST(test_stopping_an_untracked_product_fails_with_enottracked)
{
	inv_uuid p = tu_uuid(10);
	int rc = inv_tracking_stop(env.org, &p);

	tu_assert_error(rc, INV_ENOTTRACKED, -1, "tracking");
	ck_assert_int_eq(tu_last_sequence(&env), 0);
}
END_TEST

START_TEST(test_stop_keeps_balances_hides_them_rejects_moves_and_start_brings_them_back)
{
	inv_uuid p = tu_uuid(10);
	const inv_variant *v;
	inv_balance *b = NULL;
	size_t n = 9;
	inv_result *r = NULL;
	inv_sale_line line;
	int rc;

	tu_track(&env, 10);
	v = tu_variant(&env, 10, 11);
	tu_stock(&env, v, 7);
	ck_assert_int_eq(inv_tracking_stop(env.org, &p), 0);

	ck_assert_int_eq(inv_balances_read(&b, &n, NULL, env.org, NULL), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(tu_balance(&env, v), 7); /* kept */
	rc = tu_move(&env, v, env.store_loc, env.sold, 1);
	tu_assert_error(rc, INV_ENOTTRACKED, 0, NULL);
	line = (inv_sale_line){ v, 2 };
	ck_assert_int_eq(inv_record_sale(&r, env.org, &line, 1, NULL), 0);
	ck_assert_uint_eq(inv_result_skipped_count(r), 1);
	inv_result_free(r);
	ck_assert_int_eq(tu_balance(&env, v), 7);

	tu_track(&env, 10);
	ck_assert_int_eq(inv_balances_read(&b, &n, NULL, env.org, NULL), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(b[0].balance, 7);
	inv_free(b);
}
END_TEST

START_TEST(test_tracking_list_is_sorted_by_uuid_bytes)
{
	inv_uuid *list = NULL, p = tu_uuid(20);
	size_t n = 0;

	tu_track(&env, 30);
	tu_track(&env, 10);
	tu_track(&env, 20);
	tu_track(&env, 40);
	ck_assert_int_eq(inv_tracking_stop(env.org, &p), 0);
	ck_assert_int_eq(inv_tracking_list(&list, &n, env.org), 0);
	ck_assert_uint_eq(n, 3);
	p = tu_uuid(10);
	ck_assert_mem_eq(&list[0], &p, 16);
	p = tu_uuid(30);
	ck_assert_mem_eq(&list[1], &p, 16);
	p = tu_uuid(40);
	ck_assert_mem_eq(&list[2], &p, 16);
	inv_free(list);
}
END_TEST

START_TEST(test_tracking_changes_apply_before_the_moves_of_their_batch)
{
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_tracking_change t[2];
	inv_journal *j = NULL;
	const inv_journal_record *rec;
	inv_change c;
	int rc;

	t[0] = (inv_tracking_change){ .product = tu_uuid(10), .action = INV_TRACKING_START };
	t[1] = (inv_tracking_change){ .product = tu_uuid(20), .action = INV_TRACKING_STOP };
	c = (inv_change){ tu_variant(&env, 10, 11), env.supplier, env.store_loc, 4 };
	opts.tracking = t;
	opts.tracking_count = 2;
	/* Stopping an untracked product fails the whole batch. */
	rc = inv_apply_changes(NULL, env.org, &c, 1, &opts);
	tu_assert_error(rc, INV_ENOTTRACKED, 1, "tracking");
	ck_assert_int_eq(tu_last_sequence(&env), 0);

	opts.tracking_count = 1;
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, &c, 1, &opts), 0);
	ck_assert_int_eq(tu_balance(&env, c.variant), 4);
	ck_assert_int_eq(inv_journal_read(&j, env.org, NULL), 0);
	ck_assert_uint_eq(inv_journal_count(j), 1);
	ck_assert_uint_eq(inv_journal_entry_record_count(inv_journal_at(j, 0)), 2);
	rec = inv_journal_entry_records(inv_journal_at(j, 0));
	ck_assert_int_eq(rec[0].kind, INV_RECORD_TRACKING_STARTED);
	ck_assert_int_eq(rec[1].kind, INV_RECORD_MOVE);
	inv_journal_free(j);

	t[0].action = 7;
	rc = inv_apply_changes(NULL, env.org, &c, 1, &opts);
	tu_assert_error(rc, INV_EINVAL, 0, "tracking");
}
END_TEST

START_TEST(test_tracking_rejects_null_arguments)
{
	inv_uuid p = tu_uuid(1);
	int out;
	inv_uuid *list;
	size_t n;

	ck_assert_int_eq(inv_tracking_start(NULL, &p), INV_EINVAL);
	ck_assert_int_eq(inv_tracking_start(env.org, NULL), INV_EINVAL);
	ck_assert_int_eq(inv_tracking_stop(env.org, NULL), INV_EINVAL);
	ck_assert_int_eq(inv_tracking_get(NULL, env.org, &p), INV_EINVAL);
	ck_assert_int_eq(inv_tracking_get(&out, env.org, NULL), INV_EINVAL);
	ck_assert_int_eq(inv_tracking_list(&list, NULL, env.org), INV_EINVAL);
	ck_assert_int_eq(inv_tracking_list(NULL, &n, env.org), INV_EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tracking");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_start_tracking_makes_a_product_count);
	tcase_add_test(tc, test_starting_a_tracked_product_is_not_an_error_and_stores_nothing);
	tcase_add_test(tc, test_stopping_an_untracked_product_fails_with_enottracked);
	tcase_add_test(tc, test_stop_keeps_balances_hides_them_rejects_moves_and_start_brings_them_back);
	tcase_add_test(tc, test_tracking_list_is_sorted_by_uuid_bytes);
	tcase_add_test(tc, test_tracking_changes_apply_before_the_moves_of_their_batch);
	tcase_add_test(tc, test_tracking_rejects_null_arguments);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
