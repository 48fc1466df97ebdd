/*
 * check_sync.c - the sync object (zinv/sync.h), one test per rule of
 * DESIGN.md "Offline tills (sync)" and issue 17.  The upstream is a second
 * memory store served by inv_rest_handle(), with faults on the link.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <zinv.h>
#include <zinv/backend.h>

#include "testutil.h"

/* A store of organization tu_uuid(1) whose generated UUIDs start at
 * `offset`, so that every store has its own location UUIDs. */
static void open_env(struct tu_env *env, uint64_t offset, inv_negative_policy policy)
{
	inv_store_options opts;
	inv_uuid org = tu_uuid(1);

	memset(env, 0, sizeof(*env));
	env->now = TU_T0;
	env->uuid_counter = offset;
	tu_options(&opts, env);
	opts.negative_policy = policy;
	ck_assert_int_eq(inv_store_open_memory(&env->store, &opts), 0);
	ck_assert_int_eq(inv_org_open(&env->org, env->store, &org), 0);
	inv_location_by_type(&env->store_loc, env->org, INV_LOCATION_STORE);
	inv_location_by_type(&env->sold, env->org, INV_LOCATION_SOLD);
	inv_location_by_type(&env->bin, env->org, INV_LOCATION_BIN);
	inv_location_by_type(&env->supplier, env->org, INV_LOCATION_SUPPLIER);
}

/* What the link does with one request. */
enum fault { PASS, FAIL_STATUS, LOSE_ANSWER, GARBLE };

struct link {
	struct tu_env *up;
	enum fault (*fault)(struct link *l, inv_sync *s, size_t n);
	int status;                 /* for FAIL_STATUS */
	size_t requests;            /* requests seen */
	size_t waits;
	int64_t delays[16];
	char paths[64][160];
	char keys[64][96];
	char last_body[4096];
	void *payload;
};

static const char *header(inv_sync *s, const char *name)
{
	size_t i;

	for (i = 0; i < inv_sync_request_header_count(s); i++)
		if (strcmp(inv_sync_request_header_name(s, i), name) == 0)
			return inv_sync_request_header_value(s, i);
	return NULL;
}

/* One request through the link; returns inv_sync_answer()'s code. */
static int exchange(struct link *l, inv_sync *s)
{
	inv_rest_request req = INV_REST_REQUEST_INIT;
	inv_rest_response *res = NULL;
	enum fault f = l->fault ? l->fault(l, s, l->requests) : PASS;
	const char *body, *key = header(s, "Idempotency-Key");
	size_t len;
	int rc;

	if (l->requests < 64) {
		snprintf(l->paths[l->requests], sizeof(l->paths[0]), "%s %s",
		         inv_sync_request_method(s), inv_sync_request_path(s));
		snprintf(l->keys[l->requests], sizeof(l->keys[0]), "%s", key ? key : "");
	}
	l->requests++;
	if (f == FAIL_STATUS) {
		static const char *const h[] = { "Retry-After", "7" };
		return inv_sync_answer(s, l->status, h, l->status == 429 ? 1 : 0, "oops", 4);
	}
	req.authenticated = 1;
	req.method = inv_sync_request_method(s);
	req.path = inv_sync_request_path(s);
	req.idempotency_key = key;
	req.body = inv_sync_request_body(s, &req.body_len);
	snprintf(l->last_body, sizeof(l->last_body), "%s", req.body);
	req.organization = tu_uuid(1);
	req.scopes = INV_REST_SCOPE_READ | INV_REST_SCOPE_WRITE;
	ck_assert_int_eq(inv_rest_handle(&res, l->up->store, &req), 0);
	body = inv_rest_response_body(res, &len);
	if (f == LOSE_ANSWER)
		rc = inv_sync_answer(s, 0, NULL, 0, NULL, 0);
	else if (f == GARBLE)
		rc = inv_sync_answer(s, 200, NULL, 0, "{\"customLowStock\":", 18);
	else
		rc = inv_sync_answer(s, inv_rest_response_status(res), NULL, 0, body, len);
	inv_rest_response_free(res);
	return rc;
}

/* Drive one whole round. */
static void round_trip(struct link *l, inv_sync *s)
{
	int step, n = 0;

	while ((step = inv_sync_next(s)) != INV_SYNC_IDLE) {
		ck_assert_int_ge(step, 0);
		ck_assert_int_lt(++n, 10000);
		if (step == INV_SYNC_WAIT) {
			if (l->waits < 16)
				l->delays[l->waits] = inv_sync_delay(s);
			l->waits++;
			continue;
		}
		ck_assert_int_eq(exchange(l, s), 0);
	}
}

static inv_sync *sync_open(struct tu_env *till)
{
	inv_sync *s = NULL;

	ck_assert_int_eq(inv_sync_open(&s, till->org, NULL), 0);
	return s;
}

static int64_t pending(inv_sync *s)
{
	int64_t n = -1;

	ck_assert_int_eq(inv_sync_pending(&n, s), 0);
	return n;
}

static int64_t journal_count(struct tu_env *env)
{
	inv_journal *j;
	int64_t n;

	ck_assert_int_eq(inv_journal_read(&j, env->org, NULL), 0);
	n = (int64_t)inv_journal_count(j);
	inv_journal_free(j);
	return n;
}

struct world {
	struct tu_env up, till;
	struct link link;
	inv_sync *sync;
	const inv_variant *v_up, *v_till;
};

static void world_open(struct world *w, inv_negative_policy up_policy)
{
	memset(w, 0, sizeof(*w));
	open_env(&w->up, 0, up_policy);
	open_env(&w->till, 1000, INV_NEGATIVE_ALLOW);
	w->link.up = &w->up;
	w->sync = sync_open(&w->till);
	w->v_up = tu_variant(&w->up, 10, 11);
	w->v_till = tu_variant(&w->till, 10, 11);
}

static void world_close(struct world *w)
{
	inv_sync_close(w->sync);
	tu_close(&w->till);
	tu_close(&w->up);
}

/* The back office tracks product 10 and stocks 20 of variant 11. */
static void back_office_stocks(struct world *w, int64_t qty)
{
	tu_track(&w->up, 10);
	tu_stock(&w->up, w->v_up, qty);
}

/* ------------------------------------------------------------- the rules */

START_TEST(test_push_sends_each_entry_as_one_request_in_sequence_order)
{
	struct world w;

	world_open(&w, INV_NEGATIVE_ALLOW);
	tu_track(&w.till, 10);                                          /* seq 1 */
	tu_stock(&w.till, w.v_till, 10);                                /* seq 2 */
	ck_assert_int_eq(tu_move(&w.till, w.v_till, w.till.store_loc, w.till.sold, 3), 0);
	ck_assert_int_eq(pending(w.sync), 3);
	round_trip(&w.link, w.sync);
	ck_assert_str_eq(w.link.paths[0], "GET /organizations/self/locations");
	ck_assert_str_eq(w.link.paths[1], "POST /organizations/self/v2/inventory/bulk");
	ck_assert_str_eq(w.link.paths[2], "PUT /organizations/self/inventory");
	ck_assert_str_eq(w.link.paths[3], "PUT /organizations/self/inventory");
	ck_assert_int_eq(tu_balance(&w.up, w.v_up), 7);
	ck_assert_int_eq(journal_count(&w.up), 3);
	ck_assert_int_eq(inv_sync_pushed_sequence(w.sync), 3);
	ck_assert_int_eq(pending(w.sync), 0);
	world_close(&w);
}
END_TEST

START_TEST(test_push_maps_locations_by_type_to_the_upstream_uuids)
{
	struct world w;
	char up_store[37], till_store[37];

	world_open(&w, INV_NEGATIVE_ALLOW);
	back_office_stocks(&w, 5);
	tu_track(&w.till, 10);
	round_trip(&w.link, w.sync);                 /* pull: tracked */
	ck_assert_int_eq(tu_move(&w.till, w.v_till, w.till.store_loc, w.till.bin, 1), 0);
	round_trip(&w.link, w.sync);
	inv_uuid_format(inv_location_uuid(w.up.store_loc), up_store);
	inv_uuid_format(inv_location_uuid(w.till.store_loc), till_store);
	ck_assert_str_ne(up_store, till_store);
	ck_assert_ptr_nonnull(strstr(w.link.paths[w.link.requests - 3], "PUT"));
	ck_assert_int_eq(tu_balance(&w.up, w.v_up), 4);
	/* The locations were fetched once, in the first round only. */
	ck_assert_str_eq(w.link.paths[0], "GET /organizations/self/locations");
	for (size_t i = 1; i < w.link.requests; i++)
		ck_assert_str_ne(w.link.paths[i], "GET /organizations/self/locations");
	world_close(&w);
}
END_TEST

START_TEST(test_push_carries_idempotency_key_till_and_sequence_and_an_external_uuid)
{
	struct world w;
	char till[37], want[96];
	inv_journal *j;
	inv_uuid ext = tu_uuid(99);
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_change c;

	world_open(&w, INV_NEGATIVE_ALLOW);
	tu_track(&w.till, 10);
	c = (inv_change){ w.v_till, w.till.supplier, w.till.store_loc, 4 };
	opts.external_uuid = &ext;
	ck_assert_int_eq(inv_apply_changes(NULL, w.till.org, &c, 1, &opts), 0);
	round_trip(&w.link, w.sync);
	inv_uuid_format(inv_sync_till(w.sync), till);
	snprintf(want, sizeof(want), "%s:1", till);
	ck_assert_str_eq(w.link.keys[1], want);
	snprintf(want, sizeof(want), "%s:2", till);
	ck_assert_str_eq(w.link.keys[2], want);
	ck_assert_int_eq(inv_journal_read(&j, w.up.org, NULL), 0);
	ck_assert_uint_eq(inv_journal_count(j), 2);
	/* Entry 1 had none: a name-based UUID of (till, 1); entry 2 its own. */
	ck_assert_ptr_nonnull(inv_journal_entry_external_uuid(inv_journal_at(j, 0)));
	ck_assert_int_eq(inv_journal_entry_external_uuid(inv_journal_at(j, 0))->bytes[6] >> 4, 5);
	ck_assert_int_eq(inv_uuid_compare(inv_journal_entry_external_uuid(inv_journal_at(j, 1)),
	                                  &ext), 0);
	inv_journal_free(j);
	world_close(&w);
}
END_TEST

static enum fault lose_first_put(struct link *l, inv_sync *s, size_t n)
{
	(void)l;
	(void)s;
	return n == 0 ? LOSE_ANSWER : PASS;
}

START_TEST(test_replay_after_a_lost_answer_applies_nothing_twice)
{
	struct world w;

	world_open(&w, INV_NEGATIVE_ALLOW);
	tu_track(&w.up, 10);
	tu_track(&w.till, 10);
	round_trip(&w.link, w.sync);
	/* The upstream applies the next push, but its answer is lost. */
	tu_stock(&w.till, w.v_till, 6);
	w.link.requests = 0;
	w.link.fault = lose_first_put;
	round_trip(&w.link, w.sync);
	ck_assert_uint_ge(w.link.waits, 1);
	ck_assert_str_eq(w.link.keys[0], w.link.keys[1]);     /* resent with its key */
	ck_assert_int_eq(tu_balance(&w.up, w.v_up), 6);
	ck_assert_int_eq(tu_balance(&w.till, w.v_till), 6);
	world_close(&w);
}
END_TEST

static enum fault fail_three(struct link *l, inv_sync *s, size_t n)
{
	(void)s;
	return n >= 1 && n <= 3 ? (l->status = n == 3 ? 429 : 500, FAIL_STATUS) : PASS;
}

START_TEST(test_retryable_failure_keeps_the_entry_and_backs_off_in_order)
{
	struct world w;

	world_open(&w, INV_NEGATIVE_ALLOW);
	tu_track(&w.till, 10);
	tu_stock(&w.till, w.v_till, 2);
	w.link.fault = fail_three;
	round_trip(&w.link, w.sync);
	ck_assert_uint_eq(w.link.waits, 3);
	ck_assert_int_eq(w.link.delays[0], 1000);
	ck_assert_int_eq(w.link.delays[1], 2000);
	ck_assert_int_eq(w.link.delays[2], 7000);   /* Retry-After: 7 */
	/* Entry 1 was sent four times before entry 2, never skipped. */
	for (int i = 1; i <= 4; i++)
		ck_assert_str_eq(w.link.paths[i], "POST /organizations/self/v2/inventory/bulk");
	ck_assert_str_eq(w.link.paths[5], "PUT /organizations/self/inventory");
	ck_assert_int_eq(tu_balance(&w.up, w.v_up), 2);
	world_close(&w);
}
END_TEST

START_TEST(test_rejection_parks_the_entry_with_the_upstream_body_and_goes_on)
{
	struct world w;
	int64_t seq, pushed, pulled, rejected;
	const char *body;
	size_t len;
	int status;

	world_open(&w, INV_NEGATIVE_DENY);
	back_office_stocks(&w, 2);
	round_trip(&w.link, w.sync);                          /* pull: 2 */
	ck_assert_int_eq(tu_balance(&w.till, w.v_till), 2);
	/* Offline the till sells 5 of 2 (ALLOW locally); upstream DENYs it. */
	ck_assert_int_eq(tu_move(&w.till, w.v_till, w.till.store_loc, w.till.sold, 5), 0);
	ck_assert_int_eq(tu_move(&w.till, w.v_till, w.till.store_loc, w.till.sold, 1), 0);
	round_trip(&w.link, w.sync);
	inv_sync_round(w.sync, &pushed, &pulled, &rejected);
	ck_assert_int_eq(pushed, 1);
	ck_assert_int_eq(rejected, 1);
	ck_assert_uint_eq(inv_sync_rejected_count(w.sync), 1);
	ck_assert_int_eq(inv_sync_rejected_at(w.sync, 0, &seq, &status, &body, &len), 0);
	ck_assert_int_eq(seq, tu_last_sequence(&w.till) - 2);
	ck_assert_int_eq(status, 409);
	ck_assert_ptr_nonnull(strstr(body, "INSUFFICIENT_STOCK"));
	ck_assert_int_eq(inv_sync_rejected_at(w.sync, 1, NULL, NULL, NULL, NULL), INV_ENOTFOUND);
	/* The later sale went through, and the pull shows upstream's truth. */
	ck_assert_int_eq(tu_balance(&w.up, w.v_up), 1);
	ck_assert_int_eq(tu_balance(&w.till, w.v_till), 1);
	ck_assert_int_eq(pending(w.sync), 0);
	world_close(&w);
}
END_TEST

START_TEST(test_pull_sets_local_to_upstream_with_tracking_and_low_stock)
{
	struct world w;
	int64_t level = 3;
	inv_uuid p = tu_uuid(10), v = tu_uuid(11), p2 = tu_uuid(20);
	inv_low_stock low;
	int tracked;

	world_open(&w, INV_NEGATIVE_ALLOW);
	back_office_stocks(&w, 20);
	ck_assert_int_eq(inv_low_stock_set(w.up.org, w.up.store_loc, &p, &v, &level, 1), 0);
	tu_track(&w.till, 20);                   /* pushed: upstream tracks 20 too */
	round_trip(&w.link, w.sync);
	ck_assert_int_eq(tu_balance(&w.till, w.v_till), 20);
	ck_assert_int_eq(inv_tracking_get(&tracked, w.till.org, &p), 0);
	ck_assert_int_eq(tracked, 1);
	ck_assert_int_eq(inv_low_stock_get(&low, w.till.org, w.till.store_loc, &p, &v), 0);
	ck_assert_int_eq(low.has_level, 1);
	ck_assert_int_eq(low.level, 3);
	ck_assert_int_eq(low.alert, 1);
	/* The back office stops tracking 20 and removes the level. */
	ck_assert_int_eq(inv_tracking_stop(w.up.org, &p2), 0);
	ck_assert_int_eq(inv_low_stock_delete(w.up.org, w.up.store_loc, &p, &v), 0);
	round_trip(&w.link, w.sync);
	ck_assert_int_eq(inv_tracking_get(&tracked, w.till.org, &p2), 0);
	ck_assert_int_eq(tracked, 0);
	ck_assert_int_eq(inv_low_stock_get(&low, w.till.org, w.till.store_loc, &p, &v), 0);
	ck_assert_int_eq(low.has_level, 0);
	world_close(&w);
}
END_TEST

START_TEST(test_pulled_entries_are_marked_and_never_pushed_back)
{
	struct world w;
	inv_journal *j;
	inv_uuid pc;
	int64_t up_entries;

	world_open(&w, INV_NEGATIVE_ALLOW);
	back_office_stocks(&w, 9);
	round_trip(&w.link, w.sync);
	up_entries = journal_count(&w.up);
	ck_assert_int_eq(inv_journal_read(&j, w.till.org, NULL), 0);
	ck_assert_uint_eq(inv_journal_count(j), 1);
	inv_uuid_parse(&pc, INV_SYNC_PULL_CLIENT, INV_UUID_STRLEN);
	ck_assert_int_eq(inv_uuid_compare(inv_journal_entry_client_uuid(inv_journal_at(j, 0)),
	                                  &pc), 0);
	inv_journal_free(j);
	ck_assert_int_eq(pending(w.sync), 0);
	round_trip(&w.link, w.sync);
	ck_assert_int_eq(journal_count(&w.up), up_entries);
	ck_assert_int_eq(tu_balance(&w.up, w.v_up), 9);
	ck_assert_int_eq(tu_balance(&w.till, w.v_till), 9);
	world_close(&w);
}
END_TEST

/* A sale on the till while the pull is between its two reads. */
static enum fault sell_during_pull(struct link *l, inv_sync *s, size_t n)
{
	struct world *w = l->payload;

	(void)n;
	if (strstr(inv_sync_request_path(s), "custom-low-stock"))
		ck_assert_int_eq(tu_move(&w->till, w->v_till, w->till.store_loc, w->till.sold, 2), 0);
	return PASS;
}

START_TEST(test_sales_during_a_pull_are_neither_lost_nor_counted_twice)
{
	struct world w;

	world_open(&w, INV_NEGATIVE_ALLOW);
	back_office_stocks(&w, 10);
	tu_track(&w.till, 10);
	w.link.payload = &w;
	w.link.fault = sell_during_pull;
	round_trip(&w.link, w.sync);
	ck_assert_int_eq(tu_balance(&w.till, w.v_till), 8);   /* 10 upstream - 2 pending */
	ck_assert_int_eq(pending(w.sync), 1);
	w.link.fault = NULL;
	round_trip(&w.link, w.sync);
	ck_assert_int_eq(tu_balance(&w.up, w.v_up), 8);
	ck_assert_int_eq(tu_balance(&w.till, w.v_till), 8);
	world_close(&w);
}
END_TEST

static enum fault garble_low_stock(struct link *l, inv_sync *s, size_t n)
{
	(void)l;
	(void)n;
	return strstr(inv_sync_request_path(s), "custom-low-stock") ? GARBLE : PASS;
}

START_TEST(test_malformed_pull_answer_moves_nothing_and_ends_the_round)
{
	struct world w;
	int step, rc = 0;

	world_open(&w, INV_NEGATIVE_ALLOW);
	back_office_stocks(&w, 20);
	w.link.fault = garble_low_stock;
	while ((step = inv_sync_next(w.sync)) != INV_SYNC_IDLE) {
		ck_assert_int_eq(step, INV_SYNC_REQUEST);
		if ((rc = exchange(&w.link, w.sync)) != 0)
			break;
	}
	ck_assert_int_eq(rc, INV_EFORMAT);
	ck_assert_str_eq(inv_error_last()->field, "lowStock");
	ck_assert_int_eq(inv_sync_next(w.sync), INV_SYNC_IDLE);   /* the round is over */
	ck_assert_int_eq(journal_count(&w.till), 0);               /* nothing moved */
	w.link.fault = NULL;
	round_trip(&w.link, w.sync);                               /* the next one pulls */
	ck_assert_int_eq(tu_balance(&w.till, w.v_till), 20);
	world_close(&w);
}
END_TEST

START_TEST(test_state_is_durable_and_resumes_after_reopen)
{
	struct world w;
	inv_uuid till;
	int step;

	world_open(&w, INV_NEGATIVE_DENY);
	tu_track(&w.till, 10);
	ck_assert_int_eq(tu_move(&w.till, w.v_till, w.till.store_loc, w.till.sold, 1), 0);
	tu_stock(&w.till, w.v_till, 3);
	/* Locations, then entry 1 acknowledged, entry 2 (rejected: DENY). */
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(inv_sync_next(w.sync), INV_SYNC_REQUEST);
		ck_assert_int_eq(exchange(&w.link, w.sync), 0);
	}
	/* Entry 3 handed out, then the program stops without an answer. */
	ck_assert_int_eq(inv_sync_next(w.sync), INV_SYNC_REQUEST);
	till = *inv_sync_till(w.sync);
	inv_sync_close(w.sync);
	w.sync = sync_open(&w.till);
	ck_assert_int_eq(inv_uuid_compare(inv_sync_till(w.sync), &till), 0);
	ck_assert_int_eq(inv_sync_pushed_sequence(w.sync), 2);
	ck_assert_uint_eq(inv_sync_rejected_count(w.sync), 1);
	/* The map is kept: the resumed round starts with entry 3. */
	ck_assert_int_eq(step = inv_sync_next(w.sync), INV_SYNC_REQUEST);
	ck_assert_str_eq(inv_sync_request_method(w.sync), "PUT");
	ck_assert_int_eq(exchange(&w.link, w.sync), 0);
	round_trip(&w.link, w.sync);
	ck_assert_int_eq(tu_balance(&w.up, w.v_up), 3);
	ck_assert_int_eq(tu_balance(&w.till, w.v_till), 3);
	world_close(&w);
}
END_TEST

START_TEST(test_till_differing_from_the_stored_one_is_a_conflict)
{
	struct world w;
	inv_sync *other = NULL;
	inv_uuid t = tu_uuid(77), stored;

	world_open(&w, INV_NEGATIVE_ALLOW);
	stored = *inv_sync_till(w.sync);
	ck_assert_int_eq(inv_sync_open(&other, w.till.org, &t), INV_ECONFLICT);
	ck_assert_ptr_null(other);
	ck_assert_int_eq(inv_sync_open(&other, w.till.org, &stored), 0);
	inv_sync_close(other);
	world_close(&w);
}
END_TEST

START_TEST(test_backend_without_sync_state_is_refused)
{
	inv_backend_ops v1 = *inv_memory_backend_ops();
	inv_store *store;
	inv_org *org;
	inv_sync *s = NULL;
	void *inst;
	inv_uuid o = tu_uuid(1);

	v1.version = 1;
	ck_assert_int_eq(inv_memory_backend_new(&inst), 0);
	ck_assert_int_eq(inv_store_open(&store, &v1, inst, NULL), 0);
	ck_assert_int_eq(inv_org_open(&org, store, &o), 0);
	ck_assert_int_eq(inv_sync_open(&s, org, NULL), INV_EVERSION);
	ck_assert_ptr_null(s);
	inv_org_close(org);
	inv_store_close(store);
}
END_TEST

START_TEST(test_corrupt_sync_state_is_a_format_error)
{
	const inv_backend_ops *ops = inv_memory_backend_ops();
	inv_store *store;
	inv_org *org;
	inv_sync *s = NULL;
	void *inst, *txn;
	inv_uuid o = tu_uuid(1);

	ck_assert_int_eq(inv_memory_backend_new(&inst), 0);
	ck_assert_int_eq(inv_store_open(&store, ops, inst, NULL), 0);
	ck_assert_int_eq(inv_org_open(&org, store, &o), 0);
	ck_assert_int_eq(ops->begin(inst, &o, 1, &txn), 0);
	ck_assert_int_eq(ops->sync_state_put(txn, &o, "{\"format\":9}", 12), 0);
	ck_assert_int_eq(ops->commit(txn), 0);
	ck_assert_int_eq(inv_sync_open(&s, org, NULL), INV_EFORMAT);
	inv_org_close(org);
	inv_store_close(store);
}
END_TEST

START_TEST(test_answer_without_a_request_is_refused)
{
	struct world w;

	world_open(&w, INV_NEGATIVE_ALLOW);
	ck_assert_int_eq(inv_sync_answer(w.sync, 200, NULL, 0, "[]", 2), INV_EINVAL);
	world_close(&w);
}
END_TEST

START_TEST(test_two_tills_selling_offline_converge_with_upstream)
{
	struct tu_env up, a, b;
	struct link la = { 0 }, lb = { 0 };
	inv_sync *sa, *sb;
	const inv_variant *vu, *va, *vb;

	open_env(&up, 0, INV_NEGATIVE_ALLOW);
	open_env(&a, 1000, INV_NEGATIVE_ALLOW);
	open_env(&b, 2000, INV_NEGATIVE_ALLOW);
	la.up = lb.up = &up;
	sa = sync_open(&a);
	sb = sync_open(&b);
	vu = tu_variant(&up, 10, 11);
	va = tu_variant(&a, 10, 11);
	vb = tu_variant(&b, 10, 11);
	tu_track(&up, 10);
	tu_stock(&up, vu, 50);
	round_trip(&la, sa);
	round_trip(&lb, sb);
	/* Offline: A sells 3 and discards 1, B sells 5, back office adds 10. */
	ck_assert_int_eq(tu_move(&a, va, a.store_loc, a.sold, 3), 0);
	ck_assert_int_eq(tu_move(&a, va, a.store_loc, a.bin, 1), 0);
	ck_assert_int_eq(tu_move(&b, vb, b.store_loc, b.sold, 5), 0);
	tu_stock(&up, vu, 10);
	round_trip(&lb, sb);
	round_trip(&la, sa);
	round_trip(&lb, sb);
	ck_assert_int_eq(tu_balance(&up, vu), 51);
	ck_assert_int_eq(tu_balance(&a, va), 51);
	ck_assert_int_eq(tu_balance(&b, vb), 51);
	inv_sync_close(sa);
	inv_sync_close(sb);
	tu_close(&a);
	tu_close(&b);
	tu_close(&up);
}
END_TEST

static Suite *sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("rules");

	tcase_add_test(tc, test_push_sends_each_entry_as_one_request_in_sequence_order);
	tcase_add_test(tc, test_push_maps_locations_by_type_to_the_upstream_uuids);
	tcase_add_test(tc, test_push_carries_idempotency_key_till_and_sequence_and_an_external_uuid);
	tcase_add_test(tc, test_replay_after_a_lost_answer_applies_nothing_twice);
	tcase_add_test(tc, test_retryable_failure_keeps_the_entry_and_backs_off_in_order);
	tcase_add_test(tc, test_rejection_parks_the_entry_with_the_upstream_body_and_goes_on);
	tcase_add_test(tc, test_pull_sets_local_to_upstream_with_tracking_and_low_stock);
	tcase_add_test(tc, test_pulled_entries_are_marked_and_never_pushed_back);
	tcase_add_test(tc, test_sales_during_a_pull_are_neither_lost_nor_counted_twice);
	tcase_add_test(tc, test_malformed_pull_answer_moves_nothing_and_ends_the_round);
	tcase_add_test(tc, test_state_is_durable_and_resumes_after_reopen);
	tcase_add_test(tc, test_till_differing_from_the_stored_one_is_a_conflict);
	tcase_add_test(tc, test_backend_without_sync_state_is_refused);
	tcase_add_test(tc, test_corrupt_sync_state_is_a_format_error);
	tcase_add_test(tc, test_answer_without_a_request_is_refused);
	tcase_add_test(tc, test_two_tills_selling_offline_converge_with_upstream);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(sync_suite());
}
