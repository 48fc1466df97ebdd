/*
 * check_custom_backend.c - the example backend in examples/custom-backend/
 * passes the same conformance suite as the built-in ones, and carries a
 * real store end to end.
 *
 * The example is compiled into this program as is, so that the template
 * users copy is exactly the code that is tested.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "../examples/custom-backend/custom_backend.c"

static int open_custom(const inv_backend_ops **ops, void **instance, void *ctx)
{
	(void)ctx;
	*ops = custom_backend_ops();
	return custom_backend_new(instance);
}

static const struct inv_conformance_target custom_target = { .open = open_custom };

static inv_uuid mkuuid(uint8_t tag, uint8_t n)
{
	inv_uuid u;

	memset(&u, 0, sizeof(u));
	u.bytes[0] = tag;
	u.bytes[15] = n;
	return u;
}

START_TEST(test_custom_backend_carries_a_store_end_to_end)
{
	void *instance;
	inv_store *store;
	inv_org *org;
	const inv_location *supplier, *stock, *sold;
	const inv_variant *v;
	inv_uuid org_id = mkuuid(1, 1), product = mkuuid(2, 1), variant = mkuuid(3, 1);
	inv_tracking_change start = { product, INV_TRACKING_START, 0 };
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_change change;
	inv_sale_line line;
	inv_result *r;
	inv_journal *j;
	int64_t balance;

	ck_assert_int_eq(custom_backend_new(&instance), 0);
	ck_assert_int_eq(inv_store_open(&store, custom_backend_ops(), instance, NULL), 0);
	ck_assert_int_eq(inv_org_open(&org, store, &org_id), 0);
	ck_assert_int_eq(inv_location_by_type(&supplier, org, INV_LOCATION_SUPPLIER), 0);
	ck_assert_int_eq(inv_location_by_type(&stock, org, INV_LOCATION_STORE), 0);
	ck_assert_int_eq(inv_location_by_type(&sold, org, INV_LOCATION_SOLD), 0);
	ck_assert_int_eq(inv_variant_get(&v, org, &product, &variant), 0);

	change = (inv_change){ v, supplier, stock, 10 };
	opts.tracking = &start;
	opts.tracking_count = 1;
	ck_assert_int_eq(inv_apply_changes(&r, org, &change, 1, &opts), 0);
	ck_assert_int_eq(inv_result_sequence(r), 1);
	inv_result_free(r);

	/* A failing batch (DENY, 11 > 10) leaves nothing behind: the backend's
	 * rollback threw the working copy away. */
	ck_assert_int_eq(inv_org_set_negative_policy(org, INV_NEGATIVE_DENY), 0);
	line = (inv_sale_line){ v, 11 };
	ck_assert_int_eq(inv_record_sale(&r, org, &line, 1, NULL), INV_EINSUFFICIENT);
	line.quantity = 4;
	ck_assert_int_eq(inv_record_sale(&r, org, &line, 1, NULL), 0);
	inv_result_free(r);

	ck_assert_int_eq(inv_balance_get(&balance, org, v, NULL), 0);
	ck_assert_int_eq(balance, 6);
	ck_assert_int_eq(inv_journal_read(&j, org, NULL), 0);
	ck_assert_uint_eq(inv_journal_count(j), 2);
	inv_journal_free(j);
	inv_org_close(org);
	inv_store_close(store);
}
END_TEST

static int collect_sequence(const inv_journal_entry_record *rec, void *payload)
{
	int64_t *seqs = payload;

	seqs[++seqs[0]] = rec->sequence; /* seqs[0] counts */
	return 0;
}

static void append_entry(const inv_backend_ops *ops, void *txn, const inv_uuid *org,
                         int64_t sequence)
{
	inv_journal_entry_record e;
	inv_journal_record r;

	memset(&e, 0, sizeof(e));
	memset(&r, 0, sizeof(r));
	r.kind = INV_RECORD_MOVE;
	r.quantity = sequence;
	e.sequence = sequence;
	e.record_count = 1;
	e.records = &r;
	ck_assert_int_eq(ops->journal_append(txn, org, &e), 0);
}

/* The persistent journal list: a snapshot keeps its entries through a later
 * trim and append; a new snapshot sees the trimmed, longer journal. */
START_TEST(test_custom_backend_snapshot_survives_journal_trim)
{
	const inv_backend_ops *ops = custom_backend_ops();
	inv_uuid org = mkuuid(1, 1);
	void *instance, *w, *r1, *r2;
	int64_t seqs[8];
	int64_t s;

	ck_assert_int_eq(custom_backend_new(&instance), 0);
	ck_assert_int_eq(ops->begin(instance, &org, 1, &w), 0);
	for (s = 1; s <= 3; s++)
		append_entry(ops, w, &org, s);
	ck_assert_int_eq(ops->commit(w), 0);

	ck_assert_int_eq(ops->begin(instance, &org, 0, &r1), 0);
	ck_assert_int_eq(ops->begin(instance, &org, 1, &w), 0);
	ck_assert_int_eq(ops->journal_trim(w, &org, 2), 0);
	append_entry(ops, w, &org, 4);
	ck_assert_int_eq(ops->commit(w), 0);

	seqs[0] = 0;
	ck_assert_int_eq(ops->journal_read(r1, &org, 0, 0, collect_sequence, seqs), 0);
	ck_assert_int_eq(seqs[0], 3);
	ck_assert_int_eq(seqs[1], 1);
	ck_assert_int_eq(seqs[3], 3);
	ops->rollback(r1);

	ck_assert_int_eq(ops->begin(instance, &org, 0, &r2), 0);
	seqs[0] = 0;
	ck_assert_int_eq(ops->journal_read(r2, &org, 0, 0, collect_sequence, seqs), 0);
	ck_assert_int_eq(seqs[0], 2);
	ck_assert_int_eq(seqs[1], 3);
	ck_assert_int_eq(seqs[2], 4);
	seqs[0] = 0;
	ck_assert_int_eq(ops->journal_read(r2, &org, 3, 0, collect_sequence, seqs), 0);
	ck_assert_int_eq(seqs[0], 1);
	ck_assert_int_eq(seqs[1], 4);
	ops->rollback(r2);
	ops->close(instance);
}
END_TEST

/* Four tills selling one unit at a time, two per organization. */
struct till {
	inv_store *store;
	inv_uuid org;
	int failures;
};

enum { SALES = 200 };

static void *till_run(void *arg)
{
	struct till *t = arg;
	inv_uuid product = mkuuid(2, 1), variant = mkuuid(3, 1);
	const inv_variant *v;
	inv_org *org;
	int i;

	if (inv_org_open(&org, t->store, &t->org) != 0 ||
	    inv_variant_get(&v, org, &product, &variant) != 0) {
		t->failures = SALES;
		return NULL;
	}
	for (i = 0; i < SALES; i++) {
		inv_sale_line line = { v, 1 };

		if (inv_record_sale(NULL, org, &line, 1, NULL) != 0)
			t->failures++;
	}
	inv_org_close(org);
	return NULL;
}

START_TEST(test_custom_backend_serializes_writers_so_no_sale_is_lost)
{
	void *instance;
	inv_store *store;
	struct till tills[4];
	pthread_t threads[4];
	inv_uuid product = mkuuid(2, 1), variant = mkuuid(3, 1);
	int i;

	ck_assert_int_eq(custom_backend_new(&instance), 0);
	ck_assert_int_eq(inv_store_open(&store, custom_backend_ops(), instance, NULL), 0);
	for (i = 0; i < 4; i++) {
		inv_org *org;

		tills[i] = (struct till){ store, mkuuid(1, (uint8_t)(1 + i / 2)), 0 };
		ck_assert_int_eq(inv_org_open(&org, store, &tills[i].org), 0);
		ck_assert_int_eq(inv_tracking_start(org, &product), 0);
		inv_org_close(org);
	}
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, till_run, &tills[i]), 0);
	for (i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	for (i = 0; i < 4; i += 2) {
		inv_org *org;
		const inv_variant *v;
		int64_t balance, last;

		ck_assert_int_eq(tills[i].failures + tills[i + 1].failures, 0);
		ck_assert_int_eq(inv_org_open(&org, store, &tills[i].org), 0);
		ck_assert_int_eq(inv_variant_get(&v, org, &product, &variant), 0);
		ck_assert_int_eq(inv_balance_get(&balance, org, v, NULL), 0);
		ck_assert_int_eq(balance, -2 * SALES);
		ck_assert_int_eq(inv_journal_last_sequence(&last, org), 0);
		ck_assert_int_eq(last, 1 + 2 * SALES);
		inv_org_close(org);
	}
	inv_store_close(store);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("custom-backend");
	TCase *tc = tcase_create("store");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_custom_backend_carries_a_store_end_to_end);
	tcase_add_test(tc, test_custom_backend_serializes_writers_so_no_sale_is_lost);
	tcase_add_test(tc, test_custom_backend_snapshot_survives_journal_trim);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_add_suite(sr, inv_conformance_suite("conformance/custom", &custom_target));
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
