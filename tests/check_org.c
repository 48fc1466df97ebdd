/*
 * check_org.c - organizations, system locations, variant handles, policy.
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

START_TEST(test_system_locations_are_created_once_with_stable_uuids)
{
	static const char *names[] = { "STORE", "SOLD", "BIN", "SUPPLIER" };
	inv_uuid first[4], org = tu_uuid(1);
	uint64_t generated;
	size_t i;

	ck_assert_uint_eq(inv_org_location_count(env.org), 4);
	for (i = 0; i < 4; i++) {
		const inv_location *loc = inv_org_location_at(env.org, i);

		ck_assert_int_eq(inv_location_get_type(loc), (int)i + 1);
		ck_assert_str_eq(inv_location_name(loc), names[i]);
		ck_assert_str_eq(inv_location_description(loc), "System generated location");
		ck_assert_int_eq(inv_location_is_default(loc), i == 0);
		first[i] = *inv_location_uuid(loc);
		ck_assert_int_eq(first[i].bytes[0], 0xb0); /* from the store's generator */
	}
	ck_assert_ptr_null(inv_org_location_at(env.org, 4));
	generated = env.uuid_counter;
	ck_assert_uint_eq(generated, 4);

	/* The last handle closed, the organization reopens from storage. */
	inv_org_close(env.org);
	ck_assert_int_eq(inv_org_open(&env.org, env.store, &org), 0);
	for (i = 0; i < 4; i++)
		ck_assert_mem_eq(inv_location_uuid(inv_org_location_at(env.org, i)), &first[i], 16);
	ck_assert_uint_eq(env.uuid_counter, generated);
}
END_TEST

START_TEST(test_opening_an_organization_twice_shares_state)
{
	inv_org *again = NULL;
	inv_uuid org = tu_uuid(1);
	const inv_variant *v;

	ck_assert_int_eq(inv_org_open(&again, env.store, &org), 0);
	ck_assert_ptr_eq(inv_org_location_at(again, 0), env.store_loc);
	v = tu_variant(&env, 10, 11);
	{
		inv_uuid p = tu_uuid(10), u = tu_uuid(11);
		const inv_variant *w;

		ck_assert_int_eq(inv_variant_get(&w, again, &p, &u), 0);
		ck_assert_ptr_eq(w, v);
	}
	inv_org_close(again);
	/* env.org is still open and usable. */
	ck_assert_mem_eq(inv_org_uuid(env.org), &org, 16);
	tu_track(&env, 10);
}
END_TEST

START_TEST(test_organizations_are_independent)
{
	inv_org *other = NULL;
	inv_uuid o2 = tu_uuid(2);
	const inv_location *loc;
	int rc;

	ck_assert_int_eq(inv_org_open(&other, env.store, &o2), 0);
	ck_assert_mem_ne(inv_location_uuid(inv_org_location_at(other, 0)),
	                 inv_location_uuid(env.store_loc), 16);
	rc = inv_location_by_uuid(&loc, other, inv_location_uuid(env.store_loc));
	tu_assert_error(rc, INV_ENOTFOUND, -1, "location");
	ck_assert_int_eq(inv_location_by_uuid(&loc, env.org, inv_location_uuid(env.sold)), 0);
	ck_assert_ptr_eq(loc, env.sold);
	tu_track(&env, 10);
	{
		int tracked = 1;
		inv_uuid p = tu_uuid(10);

		ck_assert_int_eq(inv_tracking_get(&tracked, other, &p), 0);
		ck_assert_int_eq(tracked, 0);
	}
	inv_org_close(other);
}
END_TEST

START_TEST(test_same_variant_pair_returns_the_same_handle)
{
	const inv_variant *a = tu_variant(&env, 10, 11), *b = tu_variant(&env, 10, 11);
	inv_uuid p = tu_uuid(10), v = tu_uuid(11);

	ck_assert_ptr_eq(a, b);
	ck_assert_mem_eq(inv_variant_product_uuid(a), &p, 16);
	ck_assert_mem_eq(inv_variant_uuid(a), &v, 16);
	ck_assert_ptr_ne(tu_variant(&env, 10, 12), a);
}
END_TEST

START_TEST(test_negative_policy_defaults_from_the_store_and_persists)
{
	inv_negative_policy p;
	inv_uuid org = tu_uuid(1);
	int rc;

	ck_assert_int_eq(inv_org_get_negative_policy(&p, env.org), 0);
	ck_assert_int_eq(p, INV_NEGATIVE_ALLOW);
	ck_assert_int_eq(inv_org_set_negative_policy(env.org, INV_NEGATIVE_DENY), 0);
	inv_org_close(env.org);
	ck_assert_int_eq(inv_org_open(&env.org, env.store, &org), 0);
	ck_assert_int_eq(inv_org_get_negative_policy(&p, env.org), 0);
	ck_assert_int_eq(p, INV_NEGATIVE_DENY);
	rc = inv_org_set_negative_policy(env.org, (inv_negative_policy)5);
	tu_assert_error(rc, INV_EINVAL, -1, "policy");
	tu_close(&env);

	tu_open(&env, INV_NEGATIVE_DENY);
	ck_assert_int_eq(inv_org_get_negative_policy(&p, env.org), 0);
	ck_assert_int_eq(p, INV_NEGATIVE_DENY);
}
END_TEST

START_TEST(test_org_calls_reject_bad_arguments)
{
	inv_org *o = NULL;
	const inv_location *loc;
	const inv_variant *v;
	inv_uuid u = tu_uuid(5);

	ck_assert_int_eq(inv_org_open(NULL, env.store, &u), INV_EINVAL);
	ck_assert_int_eq(inv_org_open(&o, NULL, &u), INV_EINVAL);
	ck_assert_int_eq(inv_org_open(&o, env.store, NULL), INV_EINVAL);
	ck_assert_int_eq(inv_location_by_type(&loc, env.org, (inv_location_type)9), INV_ENOTFOUND);
	ck_assert_int_eq(inv_location_by_type(&loc, env.org, (inv_location_type)0), INV_ENOTFOUND);
	ck_assert_int_eq(inv_variant_get(&v, env.org, NULL, &u), INV_EINVAL);
	ck_assert_int_eq(inv_variant_get(&v, env.org, &u, NULL), INV_EINVAL);
	ck_assert_int_eq(inv_variant_get(&v, NULL, &u, &u), INV_EINVAL);
	ck_assert_uint_eq(inv_org_location_count(NULL), 0);
	ck_assert_ptr_null(inv_org_uuid(NULL));
	inv_org_close(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("org");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_system_locations_are_created_once_with_stable_uuids);
	tcase_add_test(tc, test_opening_an_organization_twice_shares_state);
	tcase_add_test(tc, test_organizations_are_independent);
	tcase_add_test(tc, test_same_variant_pair_returns_the_same_handle);
	tcase_add_test(tc, test_negative_policy_defaults_from_the_store_and_persists);
	tcase_add_test(tc, test_org_calls_reject_bad_arguments);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
