/*
 * check_apply.c - inv_apply_changes(), sales, refunds, set-balance,
 * idempotency: one test per rule of DESIGN.md.
 */
#include <stdlib.h>
#include <string.h>

#include <zinv/backend.h>

#include "fault_backend.h"
#include "testutil.h"

static struct tu_env env;

static void setup(void)
{
	tu_open(&env, INV_NEGATIVE_ALLOW);
}

static void setup_deny(void)
{
	tu_open(&env, INV_NEGATIVE_DENY);
}

static void teardown(void)
{
	tu_close(&env);
}

/* Product 10 is tracked with variants 11 and 12; product 20 (variant 21) is not. */
static const inv_variant *v11, *v12, *v21;

static void catalog(void)
{
	tu_track(&env, 10);
	v11 = tu_variant(&env, 10, 11);
	v12 = tu_variant(&env, 10, 12);
	v21 = tu_variant(&env, 20, 21);
}

START_TEST(test_apply_is_all_or_nothing)
{
	struct tu_snapshot before, after;
	inv_change c[3];
	int rc;

	catalog();
	tu_stock(&env, v11, 5);
	tu_snapshot_take(&before, &env);
	c[0] = (inv_change){ v11, env.store_loc, env.sold, 2 };
	c[1] = (inv_change){ v12, env.supplier, env.store_loc, 7 };
	c[2] = (inv_change){ v21, env.store_loc, env.sold, 1 };
	rc = inv_apply_changes(NULL, env.org, c, 3, NULL);
	tu_assert_error(rc, INV_ENOTTRACKED, 2, NULL);
	tu_snapshot_take(&after, &env);
	tu_snapshot_assert_eq(&before, &after);
	ck_assert_int_eq(tu_balance(&env, v11), 5);
	ck_assert_int_eq(tu_balance(&env, v12), 0);
	tu_snapshot_free(&before);
	tu_snapshot_free(&after);
}
END_TEST

START_TEST(test_apply_checks_each_change_against_the_running_balance)
{
	inv_change in_then_out[2] = {
		{ NULL, NULL, NULL, 3 }, { NULL, NULL, NULL, 3 },
	};
	int rc;

	catalog();
	in_then_out[0] = (inv_change){ v11, env.supplier, env.store_loc, 3 };
	in_then_out[1] = (inv_change){ v11, env.store_loc, env.sold, 3 };
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, in_then_out, 2, NULL), 0);
	ck_assert_int_eq(tu_balance(&env, v11), 0);

	/* The other order takes the running balance below zero first. */
	in_then_out[0] = (inv_change){ v11, env.store_loc, env.sold, 3 };
	in_then_out[1] = (inv_change){ v11, env.supplier, env.store_loc, 3 };
	rc = inv_apply_changes(NULL, env.org, in_then_out, 2, NULL);
	tu_assert_error(rc, INV_EINSUFFICIENT, 0, "quantity");
	ck_assert_int_eq(tu_balance(&env, v11), 0);
}
END_TEST

START_TEST(test_apply_reports_the_first_failing_change)
{
	inv_change c[4];
	int rc;

	catalog();
	c[0] = (inv_change){ v11, env.supplier, env.store_loc, 1 };
	c[1] = (inv_change){ v12, env.store_loc, env.sold, 5 };  /* DENY: fails */
	c[2] = (inv_change){ v21, env.store_loc, env.sold, 1 };  /* untracked */
	c[3] = (inv_change){ v11, env.store_loc, env.sold, 9 };  /* DENY */
	rc = inv_apply_changes(NULL, env.org, c, 4, NULL);
	tu_assert_error(rc, INV_EINSUFFICIENT, 1, "quantity");
	ck_assert_int_eq(tu_last_sequence(&env), 1); /* only the tracking start */
}
END_TEST

START_TEST(test_apply_returns_after_balances_of_touched_variants)
{
	inv_result *r = NULL;
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_change c[4];
	const inv_balance *b;
	const inv_variant *v13;
	inv_uuid p = tu_uuid(10), u11 = tu_uuid(11), u12 = tu_uuid(12);

	catalog();
	v13 = tu_variant(&env, 10, 13);
	env.now = TU_T0 + 1000;
	c[0] = (inv_change){ v12, env.supplier, env.store_loc, 4 };
	c[1] = (inv_change){ v11, env.supplier, env.store_loc, 10 };
	c[2] = (inv_change){ v12, env.store_loc, env.bin, 4 };   /* back to 0: listed */
	c[3] = (inv_change){ v13, env.sold, env.bin, 2 };        /* no STORE side */
	ck_assert_int_eq(inv_apply_changes(&r, env.org, c, 4, NULL), 0);
	ck_assert_int_eq(inv_result_sequence(r), 2);
	ck_assert_int_eq(inv_result_replayed(r), 0);
	ck_assert_ptr_eq(inv_result_location(r), env.store_loc);
	ck_assert_uint_eq(inv_result_count(r), 2);
	b = inv_result_balances(r);
	ck_assert_mem_eq(&b[0].product, &p, 16);
	ck_assert_mem_eq(&b[0].variant, &u12, 16);
	ck_assert_int_eq(b[0].balance, 0);
	ck_assert_mem_eq(&b[1].variant, &u11, 16);
	ck_assert_int_eq(b[1].balance, 10);
	ck_assert_int_eq(b[1].updated, TU_T0 + 1000);
	ck_assert_uint_eq(inv_result_skipped_count(r), 0);
	inv_result_free(r);

	/* Another result location: SOLD holds no balances. */
	opts.return_location = env.sold;
	ck_assert_int_eq(inv_apply_changes(&r, env.org, c, 2, &opts), 0);
	ck_assert_ptr_eq(inv_result_location(r), env.sold);
	ck_assert_uint_eq(inv_result_count(r), 0);
	inv_result_free(r);
}
END_TEST

START_TEST(test_dry_run_stores_nothing)
{
	struct tu_snapshot before, after;
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_result *r = NULL;
	inv_change c;

	catalog();
	tu_stock(&env, v11, 2);
	tu_snapshot_take(&before, &env);
	opts.dry_run = 1;
	opts.idempotency_key = "dry";
	c = (inv_change){ v11, env.supplier, env.store_loc, 5 };
	ck_assert_int_eq(inv_apply_changes(&r, env.org, &c, 1, &opts), 0);
	ck_assert_int_eq(inv_result_sequence(r), 0);
	ck_assert_uint_eq(inv_result_count(r), 1);
	ck_assert_int_eq(inv_result_balances(r)[0].balance, 7);
	inv_result_free(r);
	tu_snapshot_take(&after, &env);
	tu_snapshot_assert_eq(&before, &after);

	/* A dry run is not remembered under its key. */
	opts.dry_run = 0;
	ck_assert_int_eq(inv_apply_changes(&r, env.org, &c, 1, &opts), 0);
	ck_assert_int_eq(inv_result_replayed(r), 0);
	ck_assert_int_eq(inv_result_sequence(r), 3);
	inv_result_free(r);
	tu_snapshot_free(&before);
	tu_snapshot_free(&after);
}
END_TEST

START_TEST(test_allow_policy_lets_a_balance_go_negative)
{
	inv_negative_policy p;

	catalog();
	ck_assert_int_eq(inv_org_get_negative_policy(&p, env.org), 0);
	ck_assert_int_eq(p, INV_NEGATIVE_ALLOW);
	ck_assert_int_eq(tu_move(&env, v11, env.store_loc, env.sold, 3), 0);
	ck_assert_int_eq(tu_balance(&env, v11), -3);
}
END_TEST

START_TEST(test_deny_policy_rejects_a_shortfall)
{
	int rc;

	catalog();
	ck_assert_int_eq(inv_org_set_negative_policy(env.org, INV_NEGATIVE_DENY), 0);
	tu_stock(&env, v11, 2);
	rc = tu_move(&env, v11, env.store_loc, env.sold, 3);
	tu_assert_error(rc, INV_EINSUFFICIENT, 0, "quantity");
	ck_assert_int_eq(tu_balance(&env, v11), 2);
	ck_assert_int_eq(tu_move(&env, v11, env.store_loc, env.sold, 2), 0);
	ck_assert_int_eq(tu_balance(&env, v11), 0);
}
END_TEST

START_TEST(test_sale_skips_and_reports_untracked_lines)
{
	inv_sale_line lines[3];
	inv_result *r = NULL;
	inv_journal *j = NULL;
	const inv_journal_entry *e;

	catalog();
	lines[0] = (inv_sale_line){ v11, 2 };
	lines[1] = (inv_sale_line){ v21, 1 };
	lines[2] = (inv_sale_line){ v12, 1 };
	ck_assert_int_eq(inv_record_sale(&r, env.org, lines, 3, NULL), 0);
	ck_assert_int_eq(inv_result_sequence(r), 2);
	ck_assert_uint_eq(inv_result_skipped_count(r), 1);
	ck_assert_uint_eq(inv_result_skipped(r)[0], 1);
	ck_assert_uint_eq(inv_result_count(r), 2);
	inv_result_free(r);
	ck_assert_int_eq(tu_balance(&env, v11), -2);
	ck_assert_int_eq(tu_balance(&env, v12), -1);
	ck_assert_int_eq(tu_balance(&env, v21), 0);

	ck_assert_int_eq(inv_journal_read(&j, env.org, NULL), 0);
	e = inv_journal_at(j, 1);
	ck_assert_uint_eq(inv_journal_entry_record_count(e), 2);
	ck_assert_mem_eq(&inv_journal_entry_records(e)[0].to, inv_location_uuid(env.sold), 16);
	inv_journal_free(j);
}
END_TEST

START_TEST(test_sale_of_only_untracked_lines_stores_nothing)
{
	inv_sale_line line;
	inv_result *r = NULL;

	catalog();
	line = (inv_sale_line){ v21, 4 };
	ck_assert_int_eq(inv_record_sale(&r, env.org, &line, 1, NULL), 0);
	ck_assert_int_eq(inv_result_sequence(r), 0);
	ck_assert_uint_eq(inv_result_skipped_count(r), 1);
	inv_result_free(r);
	ck_assert_int_eq(tu_last_sequence(&env), 1);
}
END_TEST

START_TEST(test_refund_moves_sold_back_to_store)
{
	inv_sale_line line;
	inv_journal *j = NULL;
	const inv_journal_record *rec;

	catalog();
	line = (inv_sale_line){ v11, 3 };
	ck_assert_int_eq(inv_record_refund(NULL, env.org, &line, 1, NULL), 0);
	ck_assert_int_eq(tu_balance(&env, v11), 3);
	ck_assert_int_eq(inv_journal_read(&j, env.org, NULL), 0);
	rec = inv_journal_entry_records(inv_journal_at(j, 1));
	ck_assert_mem_eq(&rec->from, inv_location_uuid(env.sold), 16);
	ck_assert_mem_eq(&rec->to, inv_location_uuid(env.store_loc), 16);
	ck_assert_int_eq(rec->before, 0);
	ck_assert_int_eq(rec->after, 3);
	inv_journal_free(j);
}
END_TEST

/* The one MOVE record of the last journal entry. */
static inv_journal_record last_move(void)
{
	inv_journal_query q = INV_JOURNAL_QUERY_INIT;
	inv_journal_record rec;
	inv_journal *j = NULL;

	q.after_sequence = tu_last_sequence(&env) - 1;
	ck_assert_int_eq(inv_journal_read(&j, env.org, &q), 0);
	ck_assert_uint_eq(inv_journal_count(j), 1);
	rec = inv_journal_entry_records(inv_journal_at(j, 0))[0];
	inv_journal_free(j);
	return rec;
}

START_TEST(test_set_balance_raises_from_supplier)
{
	inv_result *r = NULL;
	inv_journal_record rec;

	catalog();
	tu_stock(&env, v11, 2);
	ck_assert_int_eq(inv_set_balance(&r, env.org, v11, NULL, 10, NULL, NULL, NULL), 0);
	ck_assert_int_eq(inv_result_sequence(r), 3);
	ck_assert_int_eq(inv_result_balances(r)[0].balance, 10);
	inv_result_free(r);
	rec = last_move();
	ck_assert_mem_eq(&rec.from, inv_location_uuid(env.supplier), 16);
	ck_assert_int_eq(rec.quantity, 8);
	ck_assert_int_eq(tu_balance(&env, v11), 10);
}
END_TEST

START_TEST(test_set_balance_lowers_to_the_reason_location)
{
	inv_journal_record rec;

	catalog();
	tu_stock(&env, v11, 10);
	ck_assert_int_eq(inv_set_balance(NULL, env.org, v11, env.store_loc, 4, NULL, env.bin, NULL), 0);
	rec = last_move();
	ck_assert_mem_eq(&rec.from, inv_location_uuid(env.store_loc), 16);
	ck_assert_mem_eq(&rec.to, inv_location_uuid(env.bin), 16);
	ck_assert_int_eq(rec.quantity, 6);
	ck_assert_int_eq(tu_balance(&env, v11), 4);
	/* Without a reason the difference goes to SUPPLIER. */
	ck_assert_int_eq(inv_set_balance(NULL, env.org, v11, NULL, 1, NULL, NULL, NULL), 0);
	rec = last_move();
	ck_assert_mem_eq(&rec.to, inv_location_uuid(env.supplier), 16);
}
END_TEST

START_TEST(test_set_balance_with_expected_is_compare_and_set)
{
	int64_t expected = 3;
	int rc;

	catalog();
	tu_stock(&env, v11, 5);
	rc = inv_set_balance(NULL, env.org, v11, NULL, 9, &expected, NULL, NULL);
	tu_assert_error(rc, INV_ECONFLICT, -1, "expected");
	ck_assert_int_eq(tu_balance(&env, v11), 5);
	ck_assert_int_eq(tu_last_sequence(&env), 2);
	expected = 5;
	ck_assert_int_eq(inv_set_balance(NULL, env.org, v11, NULL, 9, &expected, NULL, NULL), 0);
	ck_assert_int_eq(tu_balance(&env, v11), 9);
}
END_TEST

START_TEST(test_set_balance_to_the_current_balance_stores_nothing)
{
	inv_result *r = NULL;

	catalog();
	tu_stock(&env, v11, 5);
	ck_assert_int_eq(inv_set_balance(&r, env.org, v11, NULL, 5, NULL, NULL, NULL), 0);
	ck_assert_int_eq(inv_result_sequence(r), 0);
	inv_result_free(r);
	ck_assert_int_eq(tu_last_sequence(&env), 2);
}
END_TEST

START_TEST(test_set_balance_rejects_bad_arguments)
{
	int rc;

	catalog();
	rc = inv_set_balance(NULL, env.org, v11, NULL, 1, NULL, env.store_loc, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "reason");
	rc = inv_set_balance(NULL, env.org, v11, env.sold, 1, NULL, NULL, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "location");
	rc = inv_set_balance(NULL, env.org, v11, NULL, INV_QUANTITY_MAX + 1, NULL, NULL, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "balance");
	rc = inv_set_balance(NULL, env.org, NULL, NULL, 1, NULL, NULL, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "variant");
	rc = inv_set_balance(NULL, env.org, v21, NULL, 1, NULL, NULL, NULL);
	tu_assert_error(rc, INV_ENOTTRACKED, -1, NULL);
	ck_assert_int_eq(tu_last_sequence(&env), 1);
}
END_TEST

START_TEST(test_external_uuid_never_deduplicates)
{
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_uuid ext = tu_uuid(99);
	inv_change c;
	inv_result *r = NULL;

	catalog();
	opts.external_uuid = &ext;
	c = (inv_change){ v11, env.supplier, env.store_loc, 1 };
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, &c, 1, &opts), 0);
	ck_assert_int_eq(inv_apply_changes(&r, env.org, &c, 1, &opts), 0);
	ck_assert_int_eq(inv_result_replayed(r), 0);
	inv_result_free(r);
	ck_assert_int_eq(tu_balance(&env, v11), 2);
	ck_assert_int_eq(tu_last_sequence(&env), 3);
}
END_TEST

START_TEST(test_idempotent_replay_returns_the_first_result_without_applying_again)
{
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_result *r1 = NULL, *r2 = NULL;
	inv_change c;
	struct tu_events ev = { 0 };
	uint64_t id;

	catalog();
	opts.idempotency_key = "order-42";
	c = (inv_change){ v11, env.supplier, env.store_loc, 5 };
	ck_assert_int_eq(inv_apply_changes(&r1, env.org, &c, 1, &opts), 0);
	tu_stock(&env, v11, 1); /* the balance moves on */
	ck_assert_int_eq(inv_subscribe(&id, env.store, 0, tu_collect_event, &ev), 0);
	ck_assert_int_eq(inv_apply_changes(&r2, env.org, &c, 1, &opts), 0);
	ck_assert_int_eq(inv_result_replayed(r2), 1);
	ck_assert_int_eq(inv_result_sequence(r2), inv_result_sequence(r1));
	ck_assert_ptr_eq(inv_result_location(r2), inv_result_location(r1));
	ck_assert_uint_eq(inv_result_count(r2), 1);
	ck_assert_mem_eq(inv_result_balances(r2), inv_result_balances(r1), sizeof(inv_balance));
	ck_assert_int_eq(tu_balance(&env, v11), 6);
	ck_assert_int_eq(tu_last_sequence(&env), 3);
	ck_assert_uint_eq(ev.count, 0);
	inv_result_free(r1);
	inv_result_free(r2);
}
END_TEST

START_TEST(test_idempotency_key_reused_for_another_batch_conflicts)
{
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_change c;
	int rc;

	catalog();
	opts.idempotency_key = "k";
	c = (inv_change){ v11, env.supplier, env.store_loc, 5 };
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, &c, 1, &opts), 0);
	c.quantity = 6;
	rc = inv_apply_changes(NULL, env.org, &c, 1, &opts);
	tu_assert_error(rc, INV_ECONFLICT, -1, "idempotency_key");
	ck_assert_int_eq(tu_balance(&env, v11), 5);
	/* The same key on a sale of the same change is another batch too. */
	rc = inv_record_sale(NULL, env.org, &(inv_sale_line){ v11, 5 }, 1, &opts);
	ck_assert_int_eq(rc, INV_ECONFLICT);
}
END_TEST

START_TEST(test_failed_batch_is_not_remembered_under_its_key)
{
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_change c;
	inv_result *r = NULL;

	catalog();
	opts.idempotency_key = "retry-me";
	c = (inv_change){ v21, env.supplier, env.store_loc, 1 };
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, &c, 1, &opts), INV_ENOTTRACKED);
	tu_track(&env, 20);
	ck_assert_int_eq(inv_apply_changes(&r, env.org, &c, 1, &opts), 0);
	ck_assert_int_eq(inv_result_replayed(r), 0);
	inv_result_free(r);
}
END_TEST

START_TEST(test_variant_belongs_to_the_first_product)
{
	const inv_variant *h = NULL;
	inv_uuid p2 = tu_uuid(30), v = tu_uuid(11), org = tu_uuid(1);
	inv_org *again = NULL;
	int rc;

	catalog();
	tu_stock(&env, v11, 1);
	rc = inv_variant_get(&h, env.org, &p2, &v);
	tu_assert_error(rc, INV_EMISMATCH, -1, "variant");
	ck_assert_ptr_eq(tu_variant(&env, 10, 11), v11);

	/* A fresh handle map learns the owner from storage. */
	tu_close(&env);
	tu_open(&env, INV_NEGATIVE_ALLOW);
	(void)org;
	(void)again;
	tu_track(&env, 10);
	tu_stock(&env, tu_variant(&env, 10, 11), 1);
	inv_org_close(env.org);
	env.org = NULL;
	ck_assert_int_eq(inv_org_open(&env.org, env.store, &org), 0);
	rc = inv_variant_get(&h, env.org, &p2, &v);
	tu_assert_error(rc, INV_EMISMATCH, -1, "variant");
}
END_TEST

START_TEST(test_moves_without_a_store_side_pin_the_owner)
{
	inv_uuid p2 = tu_uuid(30), v = tu_uuid(13), org = tu_uuid(1);
	const inv_variant *h;
	inv_result *r = NULL;
	inv_change c;

	catalog();
	c = (inv_change){ tu_variant(&env, 10, 13), env.sold, env.bin, 1 };
	ck_assert_int_eq(inv_apply_changes(&r, env.org, &c, 1, NULL), 0);
	ck_assert_uint_eq(inv_result_count(r), 0);
	ck_assert_int_eq(inv_result_sequence(r), 2);
	inv_result_free(r);
	inv_org_close(env.org);
	ck_assert_int_eq(inv_org_open(&env.org, env.store, &org), 0);
	ck_assert_int_eq(inv_variant_get(&h, env.org, &p2, &v), INV_EMISMATCH);
}
END_TEST

START_TEST(test_balance_overflow_fails_with_erange)
{
	int rc;

	catalog();
	tu_stock(&env, v11, INV_QUANTITY_MAX);
	rc = tu_move(&env, v11, env.supplier, env.store_loc, 1);
	tu_assert_error(rc, INV_ERANGE, 0, "quantity");
	ck_assert_int_eq(tu_balance(&env, v11), INV_QUANTITY_MAX);

	ck_assert_int_eq(tu_move(&env, v12, env.store_loc, env.sold, INV_QUANTITY_MAX), 0);
	rc = tu_move(&env, v12, env.store_loc, env.sold, 1);
	tu_assert_error(rc, INV_ERANGE, 0, "quantity");
	ck_assert_int_eq(tu_balance(&env, v12), -INV_QUANTITY_MAX);
}
END_TEST

/* Every kind of bad input: its own code, index and field, nothing stored. */
START_TEST(test_bad_inputs_return_their_code_and_change_nothing)
{
	struct tu_env other;
	struct tu_snapshot before, after;
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	const inv_variant *foreign_v;
	inv_change ok, c[2];
	char long_key[300];
	int rc;

	catalog();
	tu_open(&other, INV_NEGATIVE_ALLOW);
	tu_track(&other, 10);
	foreign_v = tu_variant(&other, 10, 11);
	tu_stock(&env, v11, 3);
	tu_snapshot_take(&before, &env);
	ok = (inv_change){ v11, env.supplier, env.store_loc, 1 };

#define BAD(i, field, code, ...) do { \
		c[0] = ok; c[1] = (inv_change){ __VA_ARGS__ }; \
		rc = inv_apply_changes(NULL, env.org, c, 2, NULL); \
		tu_assert_error(rc, code, i, field); \
	} while (0)
	BAD(1, "variant", INV_EINVAL, NULL, env.supplier, env.store_loc, 1);
	BAD(1, "variant", INV_EINVAL, foreign_v, env.supplier, env.store_loc, 1);
	BAD(1, "from", INV_EINVAL, v11, NULL, env.store_loc, 1);
	BAD(1, "to", INV_EINVAL, v11, env.supplier, NULL, 1);
	BAD(1, "from", INV_EINVAL, v11, other.supplier, env.store_loc, 1);
	BAD(1, "to", INV_EINVAL, v11, env.store_loc, other.sold, 1);
	BAD(1, "quantity", INV_EINVAL, v11, env.supplier, env.store_loc, 0);
	BAD(1, "quantity", INV_EINVAL, v11, env.supplier, env.store_loc, -5);
	BAD(1, "quantity", INV_EINVAL, v11, env.supplier, env.store_loc, INV_QUANTITY_MAX + 1);
	BAD(1, "to", INV_EINVAL, v11, env.store_loc, env.store_loc, 1);
	BAD(1, NULL, INV_ENOTTRACKED, v21, env.supplier, env.store_loc, 1);
	BAD(1, "quantity", INV_ERANGE, v11, env.supplier, env.store_loc, INV_QUANTITY_MAX);
	ck_assert_int_eq(inv_org_set_negative_policy(env.org, INV_NEGATIVE_DENY), 0);
	BAD(1, "quantity", INV_EINSUFFICIENT, v11, env.store_loc, env.sold, 5);
	ck_assert_int_eq(inv_org_set_negative_policy(env.org, INV_NEGATIVE_ALLOW), 0);
#undef BAD

	rc = inv_apply_changes(NULL, NULL, c, 1, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "org");
	rc = inv_apply_changes(NULL, env.org, NULL, 1, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "changes");
	rc = inv_apply_changes(NULL, env.org, c, 0, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "changes");
	rc = inv_apply_changes(NULL, env.org, c, (size_t)INV_BATCH_MAX + 1, NULL);
	tu_assert_error(rc, INV_ETOOBIG, -1, NULL);
	opts.version = 2;
	rc = inv_apply_changes(NULL, env.org, &ok, 1, &opts);
	tu_assert_error(rc, INV_EVERSION, -1, NULL);
	opts.version = INV_APPLY_OPTIONS_VERSION;
	opts.idempotency_key = "";
	rc = inv_apply_changes(NULL, env.org, &ok, 1, &opts);
	tu_assert_error(rc, INV_EINVAL, -1, "idempotency_key");
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	opts.idempotency_key = long_key;
	rc = inv_apply_changes(NULL, env.org, &ok, 1, &opts);
	tu_assert_error(rc, INV_EINVAL, -1, "idempotency_key");
	opts.idempotency_key = NULL;
	opts.return_location = other.store_loc;
	rc = inv_apply_changes(NULL, env.org, &ok, 1, &opts);
	tu_assert_error(rc, INV_EINVAL, -1, "return_location");
	rc = inv_record_sale(NULL, env.org, &(inv_sale_line){ v11, 0 }, 1, NULL);
	tu_assert_error(rc, INV_EINVAL, 0, "quantity");
	rc = inv_record_sale(NULL, env.org, NULL, 1, NULL);
	tu_assert_error(rc, INV_EINVAL, -1, "lines");

	/* A second product for a known variant. */
	{
		inv_uuid p = tu_uuid(30), v = tu_uuid(11);
		const inv_variant *h;

		rc = inv_variant_get(&h, env.org, &p, &v);
		tu_assert_error(rc, INV_EMISMATCH, -1, "variant");
	}
	/* An idempotency conflict. */
	opts.return_location = NULL;
	opts.idempotency_key = "once";
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, &ok, 1, &opts), 0);
	tu_snapshot_free(&before);
	tu_snapshot_take(&before, &env);
	c[0] = ok;
	c[0].quantity = 2;
	rc = inv_apply_changes(NULL, env.org, c, 1, &opts);
	tu_assert_error(rc, INV_ECONFLICT, -1, "idempotency_key");

	tu_snapshot_take(&after, &env);
	tu_snapshot_assert_eq(&before, &after);
	tu_snapshot_free(&before);
	tu_snapshot_free(&after);
	tu_close(&other);
}
END_TEST

START_TEST(test_options_init_checks_the_version)
{
	inv_apply_options o;

	ck_assert_int_eq(inv_apply_options_init(&o, INV_APPLY_OPTIONS_VERSION), 0);
	ck_assert_int_eq(o.version, INV_APPLY_OPTIONS_VERSION);
	ck_assert_int_eq(inv_apply_options_init(&o, 99), INV_EVERSION);
	ck_assert_int_eq(inv_apply_options_init(NULL, 1), INV_EINVAL);
}
END_TEST

START_TEST(test_large_batch_touches_many_variants_once_each)
{
	enum { N = 3000 };
	inv_change *c = calloc(N, sizeof(*c));
	const inv_variant *vs[100];
	inv_result *r = NULL;
	size_t i;

	catalog();
	for (i = 0; i < 100; i++)
		vs[i] = tu_variant(&env, 10, 1000 + (uint32_t)i);
	for (i = 0; i < N; i++)
		c[i] = (inv_change){ vs[i % 100], env.supplier, env.store_loc, (int64_t)i + 1 };
	ck_assert_int_eq(inv_apply_changes(&r, env.org, c, N, NULL), 0);
	ck_assert_uint_eq(inv_result_count(r), 100);
	for (i = 0; i < 100; i++) {
		int64_t want = 0;
		size_t k;

		for (k = i; k < N; k += 100)
			want += (int64_t)k + 1;
		ck_assert_int_eq(inv_result_balances(r)[i].balance, want);
		ck_assert_int_eq(tu_balance(&env, vs[i]), want);
	}
	inv_result_free(r);
	free(c);
}
END_TEST

static void keep_instance(void *instance)
{
	(void)instance; /* the first store closes it */
}

/* Two stores on one backend instance stand in for two processes sharing a
 * database: each must see the other's commits, whatever it cached. */
START_TEST(test_a_second_writer_on_the_same_storage_is_seen)
{
	static inv_backend_ops shared_ops;
	struct tu_env second;
	inv_store_options o;
	void *instance = NULL;
	inv_uuid org = tu_uuid(1), p = tu_uuid(10), v = tu_uuid(11);
	const inv_variant *a, *b;
	int rc;

	tu_close(&env);
	memset(&env, 0, sizeof(env));
	memset(&second, 0, sizeof(second));
	env.now = second.now = TU_T0;
	ck_assert_int_eq(inv_memory_backend_new(&instance), 0);
	shared_ops = *inv_memory_backend_ops();
	shared_ops.close = keep_instance;
	tu_options(&o, &env);
	ck_assert_int_eq(inv_store_open(&env.store, inv_memory_backend_ops(), instance, &o), 0);
	tu_options(&o, &second);
	second.uuid_counter = 1000;
	ck_assert_int_eq(inv_store_open(&second.store, &shared_ops, instance, &o), 0);
	ck_assert_int_eq(inv_org_open(&env.org, env.store, &org), 0);
	ck_assert_int_eq(inv_org_open(&second.org, second.store, &org), 0);
	ck_assert_mem_eq(inv_location_uuid(inv_org_location_at(second.org, 0)),
	                 inv_location_uuid(inv_org_location_at(env.org, 0)), 16);
	env.store_loc = inv_org_location_at(env.org, 0);
	env.sold = inv_org_location_at(env.org, 1);
	env.supplier = inv_org_location_at(env.org, 3);
	second.store_loc = inv_org_location_at(second.org, 0);
	second.sold = inv_org_location_at(second.org, 1);
	second.supplier = inv_org_location_at(second.org, 3);

	tu_track(&env, 10);
	a = tu_variant(&env, 10, 11);
	tu_stock(&env, a, 5);                      /* caches 5 in the first store */
	ck_assert_int_eq(inv_variant_get(&b, second.org, &p, &v), 0);
	tu_stock(&second, b, 2);                   /* 7, behind the first's back */
	ck_assert_int_eq(inv_tracking_stop(second.org, &p), 0);
	rc = tu_move(&env, a, env.store_loc, env.sold, 1);
	tu_assert_error(rc, INV_ENOTTRACKED, 0, NULL);
	ck_assert_int_eq(inv_tracking_start(second.org, &p), 0);
	ck_assert_int_eq(tu_move(&env, a, env.store_loc, env.sold, 1), 0);
	ck_assert_int_eq(tu_balance(&env, a), 6);
	ck_assert_int_eq(tu_balance(&second, b), 6);
	ck_assert_int_eq(tu_last_sequence(&second), 6);

	inv_org_close(second.org);
	inv_store_close(second.store);
}
END_TEST

/* The memory backend's allocation-failure hook (see lib/memory.c). */
#define INV_MEMORY_CONTROL_FAIL_ALLOC 0x4d454d01

/* What the built-in memory backend stores for `v` in the default STORE. */
static int64_t stored_balance(const inv_backend_ops *ops, void *inst, const inv_variant *v)
{
	inv_uuid org = tu_uuid(1);
	inv_variant_record rec;
	void *txn;
	int rc;

	ck_assert_int_eq(ops->begin(inst, &org, 0, &txn), 0);
	rc = ops->variant_get(txn, &org, inv_location_uuid(env.store_loc), inv_variant_uuid(v),
	                      &rec);
	ops->rollback(txn);
	return rc == 0 ? rec.balance : -1;
}

/* ENOMEM at any allocation of a batch that adds variant records: the
 * records it added are undone, the next batches add others where they
 * were, and every balance lands on its own variant (the engine remembers
 * where the memory backend keeps each record). */
START_TEST(test_memory_enomem_in_a_batch_leaves_later_batches_right)
{
	const inv_backend_ops *ops = inv_memory_backend_ops();
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	uint64_t k;

	/* The key's record is the batch's last allocation, after the puts. */
	opts.idempotency_key = "after the puts";

	for (k = 1;; k++) {
		void *inst = NULL;
		inv_store_options o;
		inv_uuid org = tu_uuid(1);
		uint64_t off = 0;
		inv_change c;
		int rc;

		tu_close(&env);
		memset(&env, 0, sizeof(env));
		env.now = TU_T0;
		ck_assert_int_eq(inv_memory_backend_new(&inst), 0);
		tu_options(&o, &env);
		ck_assert_int_eq(inv_store_open(&env.store, ops, inst, &o), 0);
		ck_assert_int_eq(inv_org_open(&env.org, env.store, &org), 0);
		env.store_loc = inv_org_location_at(env.org, 0);
		env.sold = inv_org_location_at(env.org, 1);
		env.supplier = inv_org_location_at(env.org, 3);
		catalog();
		tu_stock(&env, v11, 1);
		c = (inv_change){ v12, env.supplier, env.store_loc, 5 };
		ck_assert_int_eq(ops->control(inst, INV_MEMORY_CONTROL_FAIL_ALLOC, &k), 0);
		rc = inv_apply_changes(NULL, env.org, &c, 1, &opts);
		ck_assert_int_eq(ops->control(inst, INV_MEMORY_CONTROL_FAIL_ALLOC, &off), 0);
		ck_assert(rc == 0 || rc == INV_ENOMEM);
		ck_assert_int_eq(tu_balance(&env, v12), rc == 0 ? 5 : 0);
		/* v21 now takes the record v12 had in the undone batch. */
		tu_track(&env, 20);
		tu_stock(&env, v21, 7);
		tu_stock(&env, v12, 3);
		tu_stock(&env, v11, 2);
		ck_assert_int_eq(stored_balance(ops, inst, v11), 3);
		ck_assert_int_eq(stored_balance(ops, inst, v12), rc == 0 ? 8 : 3);
		ck_assert_int_eq(stored_balance(ops, inst, v21), 7);
		ck_assert_int_eq(tu_balance(&env, v12), rc == 0 ? 8 : 3);
		if (rc == 0)
			break; /* past the batch's last allocation */
	}
	ck_assert_uint_gt(k, 1);
}
END_TEST

/* A storage failure at any operation of a batch: the backend's message,
 * nothing stored, no event, and the next batch sees the true state. */
START_TEST(test_a_backend_failure_at_any_step_changes_nothing)
{
	const inv_backend_ops *ops;
	void *inner = NULL, *fault = NULL;
	inv_store_options o;
	inv_uuid org = tu_uuid(1), p = tu_uuid(10), v = tu_uuid(11);
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	struct tu_events ev = { 0 };
	int64_t level = 8;
	uint64_t id, k;
	inv_change c[3];
	int64_t want = 10;

	tu_close(&env);
	memset(&env, 0, sizeof(env));
	env.now = TU_T0;
	ck_assert_int_eq(inv_memory_backend_new(&inner), 0);
	ck_assert_int_eq(inv_fault_backend_wrap(&ops, &fault, inv_memory_backend_ops(), inner), 0);
	tu_options(&o, &env);
	ck_assert_int_eq(inv_store_open(&env.store, ops, fault, &o), 0);
	ck_assert_int_eq(inv_org_open(&env.org, env.store, &org), 0);
	env.store_loc = inv_org_location_at(env.org, 0);
	env.sold = inv_org_location_at(env.org, 1);
	env.supplier = inv_org_location_at(env.org, 3);
	catalog();
	tu_stock(&env, v11, 10);
	ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &v, &level, 1), 0);
	ck_assert_int_eq(inv_subscribe(&id, env.store, 0, tu_collect_event, &ev), 0);
	opts.idempotency_key = "fault";
	c[0] = (inv_change){ v11, env.store_loc, env.sold, 4 };   /* 10 -> 7: crosses 8 */
	c[1] = (inv_change){ v12, env.supplier, env.store_loc, 2 };
	c[2] = (inv_change){ v11, env.supplier, env.store_loc, 1 };

	for (k = 1;; k++) {
		struct tu_snapshot before, after;
		const char *op = NULL;
		int rc;

		tu_snapshot_take(&before, &env);
		inv_fault_backend_fail_at(fault, k, 0);
		rc = inv_apply_changes(NULL, env.org, c, 3, &opts);
		if (!inv_fault_backend_fired(fault, &op)) {
			ck_assert_int_eq(rc, 0);
			inv_fault_backend_fail_at(fault, 0, 0);
			tu_snapshot_free(&before);
			break;
		}
		ck_assert_msg(rc == INV_EBACKEND, "k=%llu (%s): rc %d", (unsigned long long)k, op, rc);
		ck_assert_ptr_nonnull(strstr(inv_error_last()->message, "fault"));
		tu_snapshot_take(&after, &env);
		tu_snapshot_assert_eq(&before, &after);
		ck_assert_uint_eq(ev.count, 0);
		tu_snapshot_free(&before);
		tu_snapshot_free(&after);
	}
	ck_assert_uint_gt(k, 5);
	ck_assert_uint_eq(ev.count, 2); /* balance changed, low stock */
	want += -4 + 1;
	ck_assert_int_eq(tu_balance(&env, v11), want);
	ck_assert_int_eq(tu_balance(&env, v12), 2);
	/* The engine's cache agrees with storage after all those failures. */
	ck_assert_int_eq(tu_move(&env, v11, env.store_loc, env.sold, 1), 0);
	ck_assert_int_eq(tu_balance(&env, v11), want - 1);
}
END_TEST

static Suite *apply_suite(void)
{
	Suite *s = suite_create("apply");
	TCase *tc = tcase_create("rules");
	TCase *deny = tcase_create("deny");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_apply_is_all_or_nothing);
	tcase_add_test(tc, test_apply_returns_after_balances_of_touched_variants);
	tcase_add_test(tc, test_dry_run_stores_nothing);
	tcase_add_test(tc, test_allow_policy_lets_a_balance_go_negative);
	tcase_add_test(tc, test_deny_policy_rejects_a_shortfall);
	tcase_add_test(tc, test_sale_skips_and_reports_untracked_lines);
	tcase_add_test(tc, test_sale_of_only_untracked_lines_stores_nothing);
	tcase_add_test(tc, test_refund_moves_sold_back_to_store);
	tcase_add_test(tc, test_set_balance_raises_from_supplier);
	tcase_add_test(tc, test_set_balance_lowers_to_the_reason_location);
	tcase_add_test(tc, test_set_balance_with_expected_is_compare_and_set);
	tcase_add_test(tc, test_set_balance_to_the_current_balance_stores_nothing);
	tcase_add_test(tc, test_set_balance_rejects_bad_arguments);
	tcase_add_test(tc, test_external_uuid_never_deduplicates);
	tcase_add_test(tc, test_idempotent_replay_returns_the_first_result_without_applying_again);
	tcase_add_test(tc, test_idempotency_key_reused_for_another_batch_conflicts);
	tcase_add_test(tc, test_failed_batch_is_not_remembered_under_its_key);
	tcase_add_test(tc, test_variant_belongs_to_the_first_product);
	tcase_add_test(tc, test_moves_without_a_store_side_pin_the_owner);
	tcase_add_test(tc, test_balance_overflow_fails_with_erange);
	tcase_add_test(tc, test_bad_inputs_return_their_code_and_change_nothing);
	tcase_add_test(tc, test_options_init_checks_the_version);
	tcase_add_test(tc, test_large_batch_touches_many_variants_once_each);
	tcase_add_test(tc, test_a_second_writer_on_the_same_storage_is_seen);
	tcase_add_test(tc, test_a_backend_failure_at_any_step_changes_nothing);
	tcase_add_test(tc, test_memory_enomem_in_a_batch_leaves_later_batches_right);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(deny, setup_deny, teardown);
	tcase_add_test(deny, test_apply_checks_each_change_against_the_running_balance);
	tcase_add_test(deny, test_apply_reports_the_first_failing_change);
	suite_add_tcase(s, deny);
	return s;
}

int main(void)
{
	return tu_run(apply_suite());
}
