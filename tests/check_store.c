/*
 * check_store.c - opening and closing stores, options, backend versions.
 */
#include <string.h>

#include <zinv/backend.h>

#include "testutil.h"

START_TEST(test_options_init_fills_defaults_and_checks_the_version)
{
	inv_store_options o;

	memset(&o, 0xff, sizeof(o));
	ck_assert_int_eq(inv_store_options_init(&o, INV_STORE_OPTIONS_VERSION), 0);
	ck_assert_int_eq(o.version, INV_STORE_OPTIONS_VERSION);
	ck_assert_ptr_null(o.clock);
	ck_assert_ptr_null(o.uuid_generate);
	ck_assert_int_eq(o.negative_policy, INV_NEGATIVE_ALLOW);
	ck_assert_int_eq(inv_store_options_init(&o, 2), INV_EVERSION);
	ck_assert_int_eq(inv_store_options_init(NULL, 1), INV_EINVAL);
}
END_TEST

START_TEST(test_open_memory_with_default_options_uses_system_clock_and_libuuid)
{
	inv_store *s = NULL;
	inv_org *o = NULL;
	inv_uuid org = tu_uuid(1);
	inv_journal *j = NULL;
	const inv_variant *v;
	inv_uuid p = tu_uuid(10), u = tu_uuid(11);
	inv_change c;

	ck_assert_int_eq(inv_store_open_memory(&s, NULL), 0);
	ck_assert_int_eq(inv_org_open(&o, s, &org), 0);
	/* libuuid time-based: version 1 in the high nibble of byte 6 */
	ck_assert_int_eq(inv_location_uuid(inv_org_location_at(o, 0))->bytes[6] >> 4, 1);
	ck_assert_int_eq(inv_tracking_start(o, &p), 0);
	ck_assert_int_eq(inv_variant_get(&v, o, &p, &u), 0);
	c = (inv_change){ v, inv_org_location_at(o, 3), inv_org_location_at(o, 0), 1 };
	ck_assert_int_eq(inv_apply_changes(NULL, o, &c, 1, NULL), 0);
	ck_assert_int_eq(inv_journal_read(&j, o, NULL), 0);
	ck_assert_int_gt(inv_journal_entry_time(inv_journal_at(j, 0)), TU_T0);
	inv_journal_free(j);
	/* Closing the store closes the organization handle left open. */
	inv_store_close(s);
}
END_TEST

static const inv_backend_ops *memory_ops_with(uint32_t version, int drop_begin)
{
	static inv_backend_ops ops;

	ops = *inv_memory_backend_ops();
	ops.version = version;
	if (drop_begin)
		ops.begin = NULL;
	return &ops;
}

START_TEST(test_open_checks_the_backend_ops_version_and_members)
{
	inv_store *s = (inv_store *)1;
	void *inst = NULL;
	int rc;

	ck_assert_int_eq(inv_memory_backend_new(&inst), 0);
	rc = inv_store_open(&s, memory_ops_with(0, 0), inst, NULL);
	tu_assert_error(rc, INV_EVERSION, -1, "version");
	ck_assert_ptr_null(s);
	rc = inv_store_open(&s, memory_ops_with(INV_BACKEND_VERSION + 1, 0), inst, NULL);
	tu_assert_error(rc, INV_EVERSION, -1, "version");
	rc = inv_store_open(&s, memory_ops_with(1, 1), inst, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "ops");
	rc = inv_store_open(&s, NULL, inst, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "ops");
	rc = inv_store_open(NULL, inv_memory_backend_ops(), inst, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "out");
	/* On failure the caller still owns the instance. */
	ck_assert_int_eq(inv_store_open(&s, inv_memory_backend_ops(), inst, NULL), 0);
	inv_store_close(s);
}
END_TEST

START_TEST(test_version_2_table_lacking_a_sync_state_member_is_refused_by_name)
{
	inv_backend_ops ops = *inv_memory_backend_ops();
	inv_store *s = (inv_store *)1;
	void *inst = NULL;
	int rc;

	ops.version = 2;
	ck_assert_int_eq(inv_memory_backend_new(&inst), 0);
	ops.sync_state_get = NULL;
	rc = inv_store_open(&s, &ops, inst, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "sync_state_get");
	ck_assert_ptr_null(s);
	ops = *inv_memory_backend_ops();
	ops.version = 2;
	ops.sync_state_put = NULL;
	rc = inv_store_open(&s, &ops, inst, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "sync_state_put");
	ck_assert_ptr_null(s);
	inv_memory_backend_ops()->close(inst);
}
END_TEST

/* Stand-ins for the members past a version-1 table's end: a 1.0 backend's
 * table is shorter, so the core must never read them. */
static int v1_sync_get(void *txn, const inv_uuid *org, inv_sync_state_fn fn, void *payload)
{
	(void)txn, (void)org, (void)fn, (void)payload;
	ck_abort_msg("the core called sync_state_get of a version-1 table");
	return 0;
}

static int v1_sync_put(void *txn, const inv_uuid *org, const void *data, size_t len)
{
	(void)txn, (void)org, (void)data, (void)len;
	ck_abort_msg("the core called sync_state_put of a version-1 table");
	return 0;
}

/* A store on `ops` (the memory backend's, altered) tracks, stocks twice
 * and reads back what it stocked. */
static void stock_through(const inv_backend_ops *ops)
{
	inv_store_options opts;
	struct tu_env env;
	inv_uuid ou = tu_uuid(1);
	const inv_variant *v;
	void *inst = NULL;

	memset(&env, 0, sizeof(env));
	env.now = TU_T0;
	tu_options(&opts, &env);
	ck_assert_int_eq(inv_memory_backend_new(&inst), 0);
	ck_assert_int_eq(inv_store_open(&env.store, ops, inst, &opts), 0);
	ck_assert_int_eq(inv_org_open(&env.org, env.store, &ou), 0);
	ck_assert_int_eq(inv_location_by_type(&env.store_loc, env.org, INV_LOCATION_STORE), 0);
	ck_assert_int_eq(inv_location_by_type(&env.supplier, env.org, INV_LOCATION_SUPPLIER), 0);
	tu_track(&env, 10);
	v = tu_variant(&env, 10, 11);
	tu_stock(&env, v, 5);
	tu_stock(&env, v, 2);
	ck_assert_int_eq(tu_balance(&env, v), 7);
	ck_assert_int_eq(tu_last_sequence(&env), 3);
	tu_close(&env);
}

START_TEST(test_version_1_backend_still_opens_and_works)
{
	inv_backend_ops ops = *inv_memory_backend_ops();

	ops.version = 1;
	ops.sync_state_get = v1_sync_get;
	ops.sync_state_put = v1_sync_put;
	stock_through(&ops);
}
END_TEST

/* A version-2 table ends before commit_release. */
static int v2_commit_release(void *txn, void (*release)(void *), void *arg)
{
	(void)txn, (void)release, (void)arg;
	ck_abort_msg("the core called commit_release of a version-2 table");
	return 0;
}

START_TEST(test_version_2_backend_is_never_read_past_its_end)
{
	inv_backend_ops ops = *inv_memory_backend_ops();

	ops.version = 2;
	ops.commit_release = v2_commit_release;
	stock_through(&ops);
}
END_TEST

START_TEST(test_open_checks_the_options)
{
	inv_store_options o = INV_STORE_OPTIONS_INIT;
	inv_store *s = NULL;
	int rc;

	o.version = 7;
	rc = inv_store_open_memory(&s, &o);
	tu_assert_error(rc, INV_EVERSION, -1, "version");
	o.version = INV_STORE_OPTIONS_VERSION;
	o.negative_policy = 3;
	rc = inv_store_open_memory(&s, &o);
	tu_assert_error(rc, INV_EINVAL, -1, "negative_policy");
	ck_assert_ptr_null(s);
	inv_store_close(NULL);
}
END_TEST

START_TEST(test_two_stores_never_see_each_other)
{
	struct tu_env a, b;
	const inv_variant *va;

	tu_open(&a, INV_NEGATIVE_ALLOW);
	tu_open(&b, INV_NEGATIVE_ALLOW);
	tu_track(&a, 10);
	va = tu_variant(&a, 10, 11);
	tu_stock(&a, va, 3);
	ck_assert_int_eq(tu_last_sequence(&b), 0);
	ck_assert_int_eq(tu_balance(&b, tu_variant(&b, 10, 11)), 0);
	tu_close(&a);
	tu_close(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("rules");

	tcase_add_test(tc, test_options_init_fills_defaults_and_checks_the_version);
	tcase_add_test(tc, test_open_memory_with_default_options_uses_system_clock_and_libuuid);
	tcase_add_test(tc, test_open_checks_the_backend_ops_version_and_members);
	tcase_add_test(tc, test_open_checks_the_options);
	tcase_add_test(tc, test_version_2_table_lacking_a_sync_state_member_is_refused_by_name);
	tcase_add_test(tc, test_version_1_backend_still_opens_and_works);
	tcase_add_test(tc, test_version_2_backend_is_never_read_past_its_end);
	tcase_add_test(tc, test_two_stores_never_see_each_other);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
