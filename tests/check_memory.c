/*
 * check_memory.c - the built-in memory backend: the conformance suite, and
 * what is specific to it.
 */
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "fault_backend.h"

static int open_memory(const inv_backend_ops **ops, void **instance, void *ctx)
{
	(void)ctx;
	*ops = inv_memory_backend_ops();
	return inv_memory_backend_new(instance);
}

static const struct inv_conformance_target memory_target = { .open = open_memory };

/* The fault wrapper with no fault armed must be invisible. */
static int open_wrapped_memory(const inv_backend_ops **ops, void **instance, void *ctx)
{
	const inv_backend_ops *inner_ops;
	void *inner;
	int rc = open_memory(&inner_ops, &inner, ctx);

	if (rc)
		return rc;
	rc = inv_fault_backend_wrap(ops, instance, inner_ops, inner);
	if (rc)
		inner_ops->close(inner);
	return rc;
}

static const struct inv_conformance_target wrapped_target = { .open = open_wrapped_memory };

static void open_mem(const inv_backend_ops **ops, void **inst)
{
	*ops = inv_memory_backend_ops();
	ck_assert_int_eq(inv_memory_backend_new(inst), 0);
}

START_TEST(test_memory_ops_table_has_every_member)
{
	const inv_backend_ops *ops = inv_memory_backend_ops();

	ck_assert_uint_eq(ops->version, INV_BACKEND_VERSION);
	ck_assert_str_eq(ops->name, "memory");
	ck_assert_ptr_nonnull(ops->variant_get_many);
	ck_assert_ptr_nonnull(ops->variant_put_many);
	ck_assert_ptr_nonnull(ops->control);
}
END_TEST

START_TEST(test_memory_new_rejects_null)
{
	ck_assert_int_eq(inv_memory_backend_new(NULL), INV_EINVAL);
}
END_TEST

START_TEST(test_memory_write_in_read_transaction_fails)
{
	const inv_backend_ops *ops;
	void *inst, *txn;
	inv_uuid org = { { 1 } };
	inv_org_record rec;
	inv_org_record out;

	open_mem(&ops, &inst);
	memset(&rec, 0, sizeof(rec));
	rec.org = org;
	ck_assert_int_eq(ops->begin(inst, &org, 0, &txn), 0);
	ck_assert_int_eq(ops->org_put(txn, &rec), INV_EBACKEND);
	ck_assert_int_eq(inv_error_last()->code, INV_EBACKEND);
	ck_assert_ptr_nonnull(strstr(inv_error_last()->message, "read transaction"));
	ck_assert_int_eq(ops->journal_trim(txn, &org, 5), INV_EBACKEND);
	ck_assert_int_eq(ops->org_get(txn, &org, &out), INV_ENOTFOUND);
	ops->rollback(txn);
	ops->close(inst);
}
END_TEST

START_TEST(test_memory_journal_rejects_non_increasing_sequence)
{
	const inv_backend_ops *ops;
	void *inst, *txn;
	inv_uuid org = { { 1 } };
	inv_journal_entry_record e;

	open_mem(&ops, &inst);
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(ops->begin(inst, &org, 1, &txn), 0);
	e.sequence = 5;
	ck_assert_int_eq(ops->journal_append(txn, &org, &e), 0);
	ck_assert_int_eq(ops->journal_append(txn, &org, &e), INV_EBACKEND);
	e.sequence = 4;
	ck_assert_int_eq(ops->journal_append(txn, &org, &e), INV_EBACKEND);
	ck_assert_int_eq(ops->commit(txn), 0);
	ops->close(inst);
}
END_TEST

START_TEST(test_memory_close_frees_uncommitted_nothing_twice)
{
	/* Close with committed data of every kind: ASan proves no leak. */
	const inv_backend_ops *ops;
	void *inst, *txn;
	inv_uuid org = { { 1 } };
	inv_idempotency_record ir;

	open_mem(&ops, &inst);
	ck_assert_int_eq(ops->begin(inst, &org, 1, &txn), 0);
	memset(&ir, 0, sizeof(ir));
	ir.key = "a";
	ir.result = "r";
	ir.result_len = 1;
	ck_assert_int_eq(ops->idempotency_put(txn, &org, &ir), 0);
	ck_assert_int_eq(ops->idempotency_put(txn, &org, &ir), 0);
	ck_assert_int_eq(ops->commit(txn), 0);
	ops->close(inst);
}
END_TEST

static Suite *memory_suite(void)
{
	Suite *s = suite_create("memory");
	TCase *tc = tcase_create("memory");

	tcase_add_test(tc, test_memory_ops_table_has_every_member);
	tcase_add_test(tc, test_memory_new_rejects_null);
	tcase_add_test(tc, test_memory_write_in_read_transaction_fails);
	tcase_add_test(tc, test_memory_journal_rejects_non_increasing_sequence);
	tcase_add_test(tc, test_memory_close_frees_uncommitted_nothing_twice);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(memory_suite());
	int failed;

	srunner_add_suite(sr, inv_conformance_suite("conformance/memory", &memory_target));
	srunner_add_suite(sr, inv_conformance_suite("conformance/fault(memory)", &wrapped_target));
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
