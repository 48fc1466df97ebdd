/*
 * check_events.c - notifications after commit.
 */
#include <string.h>

#include "testutil.h"

static struct tu_env env;
static const inv_variant *v11, *v12, *v13;

static void setup(void)
{
	tu_open(&env, INV_NEGATIVE_ALLOW);
	v11 = tu_variant(&env, 10, 11);
	v12 = tu_variant(&env, 10, 12);
	v13 = tu_variant(&env, 10, 13);
}

static void teardown(void)
{
	tu_close(&env);
}

START_TEST(test_events_follow_commit_in_commit_order_never_for_failed_or_dry_runs)
{
	inv_apply_options dry = INV_APPLY_OPTIONS_INIT;
	struct tu_events ev = { 0 };
	inv_change c;
	uint64_t id;

	ck_assert_int_eq(inv_subscribe(&id, env.store, 0, tu_collect_event, &ev), 0);
	ck_assert_int_eq(tu_move(&env, v11, env.supplier, env.store_loc, 1), INV_ENOTTRACKED);
	tu_track(&env, 10);
	tu_stock(&env, v11, 2);
	dry.dry_run = 1;
	c = (inv_change){ v11, env.supplier, env.store_loc, 1 };
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, &c, 1, &dry), 0);
	ck_assert_int_eq(tu_move(&env, v11, env.store_loc, env.store_loc, 1), INV_EINVAL);
	tu_stock(&env, v12, 3);

	ck_assert_uint_eq(ev.count, 3);
	ck_assert_int_eq(ev.types[0], INV_EVENT_TRACKING_STARTED);
	ck_assert_int_eq(ev.sequences[0], 1);
	ck_assert_int_eq(ev.types[1], INV_EVENT_BALANCE_CHANGED);
	ck_assert_int_eq(ev.sequences[1], 2);
	ck_assert_int_eq(ev.types[2], INV_EVENT_BALANCE_CHANGED);
	ck_assert_int_eq(ev.sequences[2], 3);
	ck_assert_int_eq(inv_unsubscribe(env.store, id), 0);
	ck_assert_int_eq(inv_unsubscribe(env.store, id), INV_ENOTFOUND);
	tu_stock(&env, v12, 3);
	ck_assert_uint_eq(ev.count, 3);
}
END_TEST

struct capture {
	int calls;
	inv_uuid org;
	inv_uuid external;
	int has_external;
	size_t count;
	inv_journal_record items[8];
};

static void capture_balance(const inv_event *e, void *payload)
{
	struct capture *c = payload;
	const inv_uuid *ext = inv_journal_entry_external_uuid(inv_event_entry(e));

	ck_assert_int_eq(inv_event_get_type(e), INV_EVENT_BALANCE_CHANGED);
	c->calls++;
	c->org = *inv_event_org_uuid(e);
	c->has_external = ext != NULL;
	if (ext)
		c->external = *ext;
	c->count = inv_event_item_count(e);
	ck_assert_uint_le(c->count, 8);
	memcpy(c->items, inv_event_items(e), c->count * sizeof(*c->items));
}

START_TEST(test_balance_event_has_one_item_per_changed_variant_in_first_touch_order)
{
	static const inv_uuid nil;
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_uuid ext = tu_uuid(77), org = tu_uuid(1);
	struct capture cap = { 0 };
	inv_change c[6];
	uint64_t id;

	tu_track(&env, 10);
	tu_stock(&env, v11, 10);
	ck_assert_int_eq(inv_subscribe(&id, env.store, INV_EVENT_MASK(INV_EVENT_BALANCE_CHANGED),
	                               capture_balance, &cap), 0);
	opts.external_uuid = &ext;
	c[0] = (inv_change){ v12, env.supplier, env.store_loc, 3 };  /* net zero: left out */
	c[1] = (inv_change){ v13, env.sold, env.bin, 1 };            /* no STORE side */
	c[2] = (inv_change){ v11, env.store_loc, env.sold, 4 };
	c[3] = (inv_change){ v12, env.store_loc, env.bin, 3 };
	c[4] = (inv_change){ v13, env.supplier, env.store_loc, 2 };
	c[5] = (inv_change){ v11, env.store_loc, env.sold, 1 };
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, c, 6, &opts), 0);
	ck_assert_int_eq(cap.calls, 1);
	ck_assert_mem_eq(&cap.org, &org, 16);
	ck_assert_int_eq(cap.has_external, 1);
	ck_assert_mem_eq(&cap.external, &ext, 16);
	ck_assert_uint_eq(cap.count, 2);
	ck_assert_mem_eq(&cap.items[0].variant, inv_variant_uuid(v11), 16);
	ck_assert_int_eq(cap.items[0].before, 10);
	ck_assert_int_eq(cap.items[0].after, 5);
	ck_assert_mem_eq(&cap.items[0].location, inv_location_uuid(env.store_loc), 16);
	ck_assert_mem_eq(&cap.items[0].from, &nil, 16);
	ck_assert_int_eq(cap.items[0].quantity, 0);
	ck_assert_mem_eq(&cap.items[1].variant, inv_variant_uuid(v13), 16);
	ck_assert_int_eq(cap.items[1].before, 0);
	ck_assert_int_eq(cap.items[1].after, 2);
}
END_TEST

START_TEST(test_one_batch_yields_tracking_then_balance_then_low_stock_events)
{
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_tracking_change t = { .product = tu_uuid(10), .action = INV_TRACKING_START };
	inv_uuid p = tu_uuid(10), v = tu_uuid(11);
	struct tu_events ev = { 0 };
	int64_t level = 2;
	inv_change c;
	uint64_t id;

	ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &v, &level, 1), 0);
	ck_assert_int_eq(inv_subscribe(&id, env.store, 0, tu_collect_event, &ev), 0);
	opts.tracking = &t;
	opts.tracking_count = 1;
	c = (inv_change){ v11, env.store_loc, env.sold, 1 };   /* 0 -> -1: was low already */
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, &c, 1, &opts), 0);
	ck_assert_uint_eq(ev.count, 2);
	ck_assert_int_eq(ev.types[0], INV_EVENT_TRACKING_STARTED);
	ck_assert_mem_eq(&ev.first_items[0].product, &p, 16);
	ck_assert_int_eq(ev.types[1], INV_EVENT_BALANCE_CHANGED);

	tu_stock(&env, v11, 5);                                  /* -1 -> 4: not low */
	ck_assert_uint_eq(ev.count, 4);
	ck_assert_int_eq(ev.types[2], INV_EVENT_BALANCE_CHANGED);
	ck_assert_int_eq(ev.types[3], INV_EVENT_LOW_STOCK);
	ck_assert_int_eq(ev.first_items[3].low, 0);
	ck_assert_int_eq(ev.first_items[3].after, 4);
	ck_assert_int_eq(ev.first_items[3].quantity, 2);
	ck_assert_int_eq(tu_move(&env, v11, env.store_loc, env.sold, 3), 0);  /* 1: low */
	ck_assert_uint_eq(ev.count, 6);
	ck_assert_int_eq(ev.types[5], INV_EVENT_LOW_STOCK);
	ck_assert_int_eq(ev.first_items[5].low, 1);
	ck_assert_int_eq(tu_move(&env, v11, env.store_loc, env.sold, 1), 0);  /* 0: still low */
	ck_assert_uint_eq(ev.count, 7);
	ck_assert_int_eq(ev.types[6], INV_EVENT_BALANCE_CHANGED);
}
END_TEST

START_TEST(test_subscription_mask_selects_event_types)
{
	struct tu_events all = { 0 }, tracking = { 0 };
	uint64_t a, b;
	inv_uuid p = tu_uuid(10);

	ck_assert_int_eq(inv_subscribe(&a, env.store, 0, tu_collect_event, &all), 0);
	ck_assert_int_eq(inv_subscribe(&b, env.store, INV_EVENT_MASK(INV_EVENT_TRACKING_STARTED) |
	                               INV_EVENT_MASK(INV_EVENT_TRACKING_STOPPED),
	                               tu_collect_event, &tracking), 0);
	ck_assert_uint_ne(a, b);
	tu_track(&env, 10);
	tu_stock(&env, v11, 1);
	ck_assert_int_eq(inv_tracking_stop(env.org, &p), 0);
	ck_assert_uint_eq(all.count, 3);
	ck_assert_uint_eq(tracking.count, 2);
	ck_assert_int_eq(tracking.types[1], INV_EVENT_TRACKING_STOPPED);
	ck_assert_int_eq(inv_subscribe(NULL, env.store, 0, tu_collect_event, &all), INV_EINVAL);
	ck_assert_int_eq(inv_subscribe(&a, env.store, 0, NULL, &all), INV_EINVAL);
}
END_TEST

START_TEST(test_journal_entry_events_rebuild_what_subscribers_saw)
{
	struct tu_events live = { 0 }, replayed = { 0 };
	inv_uuid p = tu_uuid(10), v = tu_uuid(11), org = tu_uuid(1);
	int64_t level = 3;
	inv_journal *j = NULL;
	inv_change c[3];
	uint64_t id;
	size_t i;

	ck_assert_int_eq(inv_subscribe(&id, env.store, 0, tu_collect_event, &live), 0);
	ck_assert_int_eq(inv_low_stock_set(env.org, env.store_loc, &p, &v, &level, 0), 0);
	tu_track(&env, 10);
	c[0] = (inv_change){ v11, env.supplier, env.store_loc, 5 };
	c[1] = (inv_change){ v12, env.supplier, env.store_loc, 1 };
	c[2] = (inv_change){ v11, env.store_loc, env.sold, 3 };
	ck_assert_int_eq(inv_apply_changes(NULL, env.org, c, 3, NULL), 0);
	ck_assert_int_eq(tu_move(&env, v11, env.supplier, env.store_loc, 4), 0);

	ck_assert_int_eq(inv_journal_read(&j, env.org, NULL), 0);
	for (i = 0; i < inv_journal_count(j); i++)
		ck_assert_int_eq(inv_journal_entry_events(inv_journal_at(j, i), &org,
		                                          tu_collect_event, &replayed), 0);
	inv_journal_free(j);
	ck_assert_uint_eq(replayed.count, live.count);
	ck_assert_uint_eq(live.count, 4);
	for (i = 0; i < live.count; i++) {
		ck_assert_int_eq(replayed.types[i], live.types[i]);
		ck_assert_int_eq(replayed.sequences[i], live.sequences[i]);
		ck_assert_uint_eq(replayed.item_counts[i], live.item_counts[i]);
		ck_assert_mem_eq(&replayed.first_items[i], &live.first_items[i],
		                 sizeof(inv_journal_record));
	}
	ck_assert_int_eq(inv_journal_entry_events(NULL, &org, tu_collect_event, &replayed),
	                 INV_EINVAL);
}
END_TEST

struct reentry {
	struct tu_env *other;
	int same_org_rc;
	int other_org_rc;
	int low_stock_rc;
	int64_t balance_seen;
	int calls;
};

static void write_back(const inv_event *e, void *payload)
{
	struct reentry *r = payload;
	inv_uuid p = tu_uuid(10), v = tu_uuid(11);

	if (inv_event_get_type(e) != INV_EVENT_BALANCE_CHANGED || r->calls++)
		return;
	r->same_org_rc = tu_move(&env, v11, env.supplier, env.store_loc, 1);
	r->low_stock_rc = inv_low_stock_set(env.org, env.store_loc, &p, &v, NULL, 1);
	r->balance_seen = tu_balance(&env, v11);
	r->other_org_rc = tu_move(r->other, tu_variant(r->other, 10, 11),
	                          r->other->supplier, r->other->store_loc, 1);
}

START_TEST(test_a_callback_writing_to_its_own_organization_gets_ebusy)
{
	struct tu_env other;
	struct reentry r = { 0 };
	inv_uuid o2 = tu_uuid(2);
	uint64_t id;

	/* A second organization of the same store. */
	other = env;
	ck_assert_int_eq(inv_org_open(&other.org, env.store, &o2), 0);
	ck_assert_int_eq(inv_location_by_type(&other.store_loc, other.org, INV_LOCATION_STORE), 0);
	ck_assert_int_eq(inv_location_by_type(&other.supplier, other.org, INV_LOCATION_SUPPLIER), 0);
	tu_track(&other, 10);
	tu_track(&env, 10);
	r.other = &other;
	ck_assert_int_eq(inv_subscribe(&id, env.store, 0, write_back, &r), 0);
	tu_stock(&env, v11, 5);
	ck_assert_int_eq(r.same_org_rc, INV_EBUSY);
	ck_assert_int_eq(r.low_stock_rc, INV_EBUSY);
	ck_assert_int_eq(r.balance_seen, 5);   /* committed before the callback */
	ck_assert_int_eq(r.other_org_rc, 0);
	ck_assert_int_eq(tu_balance(&env, v11), 5);
	ck_assert_int_eq(tu_balance(&other, tu_variant(&other, 10, 11)), 1);
	inv_org_close(other.org);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_events_follow_commit_in_commit_order_never_for_failed_or_dry_runs);
	tcase_add_test(tc, test_balance_event_has_one_item_per_changed_variant_in_first_touch_order);
	tcase_add_test(tc, test_one_batch_yields_tracking_then_balance_then_low_stock_events);
	tcase_add_test(tc, test_subscription_mask_selects_event_types);
	tcase_add_test(tc, test_journal_entry_events_rebuild_what_subscribers_saw);
	tcase_add_test(tc, test_a_callback_writing_to_its_own_organization_gets_ebusy);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
