/*
 * check_custom_backend.c - the example backend in examples/custom-backend/
 * passes the same conformance suite as the built-in ones, and carries a
 * real store end to end.
 *
 * The example is compiled into this program as is, so that the template
 * users copy is exactly the code that is tested.
 */
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

int main(void)
{
	Suite *s = suite_create("custom-backend");
	TCase *tc = tcase_create("store");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_custom_backend_carries_a_store_end_to_end);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_add_suite(sr, inv_conformance_suite("conformance/custom", &custom_target));
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
