/*
 * check_journal.c - the journal: gap-free sequences, contents, queries, trim.
 */
#include <string.h>

#include "testutil.h"

static struct tu_env env;
static const inv_variant *v11, *v21;

static void setup(void)
{
	tu_open(&env, INV_NEGATIVE_ALLOW);
	tu_track(&env, 10);                 /* sequence 1 */
	tu_track(&env, 20);                 /* sequence 2 */
	v11 = tu_variant(&env, 10, 11);
	v21 = tu_variant(&env, 20, 21);
}

static void teardown(void)
{
	tu_close(&env);
}

static inv_journal *read_all(void)
{
	inv_journal *j = NULL;

	ck_assert_int_eq(inv_journal_read(&j, env.org, NULL), 0);
	return j;
}

START_TEST(test_committed_batches_get_gap_free_sequences)
{
	inv_journal *j;
	size_t i;

	tu_stock(&env, v11, 1);
	ck_assert_int_eq(tu_move(&env, v11, env.store_loc, env.store_loc, 1), INV_EINVAL);
	ck_assert_int_eq(tu_move(&env, tu_variant(&env, 30, 31), env.supplier, env.store_loc, 1),
	                 INV_ENOTTRACKED);
	tu_stock(&env, v21, 1);
	tu_stock(&env, v11, 1);
	j = read_all();
	ck_assert_uint_eq(inv_journal_count(j), 5);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(inv_journal_entry_sequence(inv_journal_at(j, i)), (int64_t)i + 1);
	ck_assert_int_eq(tu_last_sequence(&env), 5);
	ck_assert_ptr_null(inv_journal_at(j, 5));
	inv_journal_free(j);
}
END_TEST

START_TEST(test_entry_holds_the_batch_and_its_context)
{
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_uuid ext = tu_uuid(90), user = tu_uuid(91), client = tu_uuid(92);
	inv_uuid p = tu_uuid(10), v = tu_uuid(11);
	const inv_journal_entry *e;
	const inv_journal_record *r;
	inv_change c[2];
	inv_journal *j;

	env.now = TU_T0 + 500;
	opts.external_uuid = &ext;
	opts.user_uuid = &user;
	opts.client_uuid = &client;
	opts.idempotency_key = "key-1";
	c[0] = (inv_change){ v11, env.supplier, env.store_loc, 7 };
	c[1] = (inv_change){ v11, env.store_loc, env.bin, 2 };
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, c, 2, &opts), 0);
	j = read_all();
	e = inv_journal_at(j, 2);
	ck_assert_int_eq(inv_journal_entry_time(e), TU_T0 + 500);
	ck_assert_mem_eq(inv_journal_entry_external_uuid(e), &ext, 16);
	ck_assert_mem_eq(inv_journal_entry_user_uuid(e), &user, 16);
	ck_assert_mem_eq(inv_journal_entry_client_uuid(e), &client, 16);
	ck_assert_str_eq(inv_journal_entry_idempotency_key(e), "key-1");
	ck_assert_uint_eq(inv_journal_entry_record_count(e), 2);
	r = inv_journal_entry_records(e);
	ck_assert_int_eq(r[0].kind, INV_RECORD_MOVE);
	ck_assert_mem_eq(&r[0].product, &p, 16);
	ck_assert_mem_eq(&r[0].variant, &v, 16);
	ck_assert_mem_eq(&r[0].from, inv_location_uuid(env.supplier), 16);
	ck_assert_mem_eq(&r[0].to, inv_location_uuid(env.store_loc), 16);
	ck_assert_mem_eq(&r[0].location, inv_location_uuid(env.store_loc), 16);
	ck_assert_int_eq(r[0].quantity, 7);
	ck_assert_int_eq(r[0].before, 0);
	ck_assert_int_eq(r[0].after, 7);
	ck_assert_int_eq(r[1].before, 7);
	ck_assert_int_eq(r[1].after, 5);
	/* Entries without context report NULL. */
	e = inv_journal_at(j, 0);
	ck_assert_ptr_null(inv_journal_entry_external_uuid(e));
	ck_assert_ptr_null(inv_journal_entry_user_uuid(e));
	ck_assert_ptr_null(inv_journal_entry_idempotency_key(e));
	ck_assert_int_eq(inv_journal_entry_records(e)[0].kind, INV_RECORD_TRACKING_STARTED);
	inv_journal_free(j);
}
END_TEST

START_TEST(test_move_without_a_store_side_has_a_nil_location)
{
	static const inv_uuid nil;
	inv_journal *j;
	const inv_journal_record *r;

	ck_assert_int_eq(tu_move(&env, v11, env.sold, env.bin, 3), 0);
	j = read_all();
	r = inv_journal_entry_records(inv_journal_at(j, 2));
	ck_assert_mem_eq(&r->location, &nil, 16);
	ck_assert_int_eq(r->before, 0);
	ck_assert_int_eq(r->after, 0);
	inv_journal_free(j);
}
END_TEST

START_TEST(test_query_by_sequence_product_and_time)
{
	inv_journal_query q = INV_JOURNAL_QUERY_INIT;
	inv_journal *j = NULL;
	int i;

	for (i = 0; i < 300; i++) {
		env.now = TU_T0 + i;
		tu_stock(&env, i % 3 ? v11 : v21, 1);  /* sequences 3..302 */
	}
	q.after_sequence = 100;
	q.limit = 10;
	ck_assert_int_eq(inv_journal_read(&j, env.org, &q), 0);
	ck_assert_uint_eq(inv_journal_count(j), 10);
	ck_assert_int_eq(inv_journal_entry_sequence(inv_journal_at(j, 0)), 101);
	inv_journal_free(j);

	/* Product filter across more than one backend chunk. */
	q = (inv_journal_query)INV_JOURNAL_QUERY_INIT;
	q.has_product = 1;
	q.product = tu_uuid(20);
	ck_assert_int_eq(inv_journal_read(&j, env.org, &q), 0);
	ck_assert_uint_eq(inv_journal_count(j), 101); /* the tracking start + 100 */
	inv_journal_free(j);
	q.limit = 5;
	q.after_sequence = 2;
	ck_assert_int_eq(inv_journal_read(&j, env.org, &q), 0);
	ck_assert_uint_eq(inv_journal_count(j), 5);
	ck_assert_int_eq(inv_journal_entry_sequence(inv_journal_at(j, 1)), 6);
	inv_journal_free(j);

	q = (inv_journal_query)INV_JOURNAL_QUERY_INIT;
	q.time_from = TU_T0 + 10;
	q.time_to = TU_T0 + 20;
	ck_assert_int_eq(inv_journal_read(&j, env.org, &q), 0);
	ck_assert_uint_eq(inv_journal_count(j), 10);
	ck_assert_int_eq(inv_journal_entry_time(inv_journal_at(j, 0)), TU_T0 + 10);
	inv_journal_free(j);
}
END_TEST

START_TEST(test_trim_keeps_the_numbering)
{
	inv_journal *j;

	tu_stock(&env, v11, 1);
	tu_stock(&env, v11, 1);                 /* sequence 4 */
	ck_assert_int_eq(inv_journal_trim(env.org, 3), 0);
	j = read_all();
	ck_assert_uint_eq(inv_journal_count(j), 1);
	ck_assert_int_eq(inv_journal_entry_sequence(inv_journal_at(j, 0)), 4);
	inv_journal_free(j);
	ck_assert_int_eq(tu_last_sequence(&env), 4);
	ck_assert_int_eq(inv_journal_trim(env.org, 10), 0);
	ck_assert_int_eq(tu_last_sequence(&env), 4);
	tu_stock(&env, v11, 1);
	j = read_all();
	ck_assert_uint_eq(inv_journal_count(j), 1);
	ck_assert_int_eq(inv_journal_entry_sequence(inv_journal_at(j, 0)), 5);
	inv_journal_free(j);
	ck_assert_int_eq(tu_balance(&env, v11), 3);
}
END_TEST

START_TEST(test_journal_calls_reject_bad_arguments)
{
	inv_journal_query q = INV_JOURNAL_QUERY_INIT;
	inv_journal *j;
	int64_t seq;
	int rc;

	rc = inv_journal_trim(env.org, -1);
	tu_assert_error(rc, INV_EINVAL, -1, "up_to");
	q.after_sequence = -1;
	rc = inv_journal_read(&j, env.org, &q);
	tu_assert_error(rc, INV_EINVAL, -1, "after_sequence");
	q.after_sequence = 0;
	q.version = 9;
	rc = inv_journal_read(&j, env.org, &q);
	tu_assert_error(rc, INV_EVERSION, -1, NULL);
	ck_assert_int_eq(inv_journal_read(NULL, env.org, NULL), INV_EINVAL);
	ck_assert_int_eq(inv_journal_last_sequence(&seq, NULL), INV_EINVAL);
	ck_assert_int_eq(inv_journal_query_init(&q, 2), INV_EVERSION);
	ck_assert_int_eq(inv_journal_query_init(&q, 1), 0);
	ck_assert_uint_eq(inv_journal_count(NULL), 0);
	inv_journal_free(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_committed_batches_get_gap_free_sequences);
	tcase_add_test(tc, test_entry_holds_the_batch_and_its_context);
	tcase_add_test(tc, test_move_without_a_store_side_has_a_nil_location);
	tcase_add_test(tc, test_query_by_sequence_product_and_time);
	tcase_add_test(tc, test_trim_keeps_the_numbering);
	tcase_add_test(tc, test_journal_calls_reject_bad_arguments);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
