/*
 * testutil.c - see testutil.h.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

inv_uuid tu_uuid(uint32_t n)
{
	inv_uuid u;

	memset(&u, 0, sizeof(u));
	u.bytes[0] = 0xa0;
	u.bytes[12] = (uint8_t)(n >> 24);
	u.bytes[13] = (uint8_t)(n >> 16);
	u.bytes[14] = (uint8_t)(n >> 8);
	u.bytes[15] = (uint8_t)n;
	return u;
}

static int64_t test_clock(void *payload)
{
	const struct tu_env *env = payload;

	return __atomic_load_n(&env->now, __ATOMIC_RELAXED);
}

/* Generated UUIDs start with 0xb0 so that they never equal a tu_uuid(). */
static void test_uuid(inv_uuid *out, void *payload)
{
	struct tu_env *env = payload;
	uint64_t n = __atomic_add_fetch(&env->uuid_counter, 1, __ATOMIC_RELAXED);
	int i;

	memset(out, 0, sizeof(*out));
	out->bytes[0] = 0xb0;
	for (i = 0; i < 8; i++)
		out->bytes[15 - i] = (uint8_t)(n >> (8 * i));
}

void tu_options(inv_store_options *opts, struct tu_env *env)
{
	ck_assert_int_eq(inv_store_options_init(opts, INV_STORE_OPTIONS_VERSION), 0);
	opts->clock = test_clock;
	opts->clock_payload = env;
	opts->uuid_generate = test_uuid;
	opts->uuid_payload = env;
}

void tu_open(struct tu_env *env, inv_negative_policy policy)
{
	inv_store_options opts;
	inv_uuid org = tu_uuid(1);

	memset(env, 0, sizeof(*env));
	env->now = TU_T0;
	tu_options(&opts, env);
	opts.negative_policy = policy;
	ck_assert_int_eq(inv_store_open_memory(&env->store, &opts), 0);
	ck_assert_int_eq(inv_org_open(&env->org, env->store, &org), 0);
	ck_assert_int_eq(inv_location_by_type(&env->store_loc, env->org, INV_LOCATION_STORE), 0);
	ck_assert_int_eq(inv_location_by_type(&env->sold, env->org, INV_LOCATION_SOLD), 0);
	ck_assert_int_eq(inv_location_by_type(&env->bin, env->org, INV_LOCATION_BIN), 0);
	ck_assert_int_eq(inv_location_by_type(&env->supplier, env->org, INV_LOCATION_SUPPLIER), 0);
}

void tu_close(struct tu_env *env)
{
	inv_org_close(env->org);
	inv_store_close(env->store);
	env->org = NULL;
	env->store = NULL;
}

const inv_variant *tu_variant(struct tu_env *env, uint32_t product, uint32_t variant)
{
	inv_uuid p = tu_uuid(product), v = tu_uuid(variant);
	const inv_variant *h = NULL;

	ck_assert_int_eq(inv_variant_get(&h, env->org, &p, &v), 0);
	ck_assert_ptr_nonnull(h);
	return h;
}

void tu_track(struct tu_env *env, uint32_t product)
{
	inv_uuid p = tu_uuid(product);

	ck_assert_int_eq(inv_tracking_start(env->org, &p), 0);
}

int64_t tu_balance(struct tu_env *env, const inv_variant *v)
{
	int64_t b = -1;

	ck_assert_int_eq(inv_balance_get(&b, env->org, v, NULL), 0);
	return b;
}

int tu_move(struct tu_env *env, const inv_variant *v, const inv_location *from,
            const inv_location *to, int64_t qty)
{
	inv_change c = { v, from, to, qty };

	return inv_apply_changes(NULL, env->org, &c, 1, NULL);
}

void tu_stock(struct tu_env *env, const inv_variant *v, int64_t qty)
{
	ck_assert_int_eq(tu_move(env, v, env->supplier, env->store_loc, qty), 0);
}

int64_t tu_last_sequence(struct tu_env *env)
{
	int64_t seq = -1;

	ck_assert_int_eq(inv_journal_last_sequence(&seq, env->org), 0);
	return seq;
}

void tu_snapshot_take(struct tu_snapshot *s, struct tu_env *env)
{
	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	inv_journal *j = NULL;

	memset(s, 0, sizeof(*s));
	q.include_zero = 1;
	q.with_low_stock = 1;
	ck_assert_int_eq(inv_balances_read(&s->balances, &s->balance_count, NULL, env->org, &q), 0);
	ck_assert_int_eq(inv_tracking_list(&s->tracked, &s->tracked_count, env->org), 0);
	ck_assert_int_eq(inv_low_stock_list(&s->low, &s->low_count, env->org, env->store_loc, NULL), 0);
	ck_assert_int_eq(inv_journal_last_sequence(&s->last_sequence, env->org), 0);
	ck_assert_int_eq(inv_journal_read(&j, env->org, NULL), 0);
	s->journal_count = inv_journal_count(j);
	s->journal_last = s->journal_count
	                ? inv_journal_entry_sequence(inv_journal_at(j, s->journal_count - 1)) : 0;
	inv_journal_free(j);
}

void tu_snapshot_assert_eq(const struct tu_snapshot *a, const struct tu_snapshot *b)
{
	size_t i;

	ck_assert_int_eq(a->balance_count, b->balance_count);
	for (i = 0; i < a->balance_count; i++) {
		ck_assert_int_eq(a->balances[i].balance, b->balances[i].balance);
		ck_assert_int_eq(a->balances[i].updated, b->balances[i].updated);
		ck_assert_mem_eq(&a->balances[i], &b->balances[i], sizeof(inv_balance));
	}
	ck_assert_int_eq(a->tracked_count, b->tracked_count);
	if (a->tracked_count)
		ck_assert_mem_eq(a->tracked, b->tracked, a->tracked_count * sizeof(inv_uuid));
	ck_assert_int_eq(a->low_count, b->low_count);
	if (a->low_count)
		ck_assert_mem_eq(a->low, b->low, a->low_count * sizeof(inv_low_stock));
	ck_assert_int_eq(a->last_sequence, b->last_sequence);
	ck_assert_int_eq(a->journal_count, b->journal_count);
	ck_assert_int_eq(a->journal_last, b->journal_last);
}

void tu_snapshot_free(struct tu_snapshot *s)
{
	inv_free(s->balances);
	inv_free(s->tracked);
	inv_free(s->low);
	memset(s, 0, sizeof(*s));
}

void tu_assert_error(int rc, int code, int64_t index, const char *field)
{
	const inv_error *e = inv_error_last();

	ck_assert_int_eq(rc, code);
	ck_assert_int_eq(e->code, code);
	ck_assert_int_eq(e->index, index);
	ck_assert_ptr_nonnull(e->message);
	ck_assert(e->message[0] != '\0');
	if (field) {
		ck_assert_ptr_nonnull(e->field);
		ck_assert_str_eq(e->field, field);
	}
}

void tu_collect_event(const inv_event *ev, void *payload)
{
	struct tu_events *c = payload;
	size_t i = c->count;

	ck_assert_uint_lt(i, 64);
	c->types[i] = inv_event_get_type(ev);
	c->sequences[i] = inv_journal_entry_sequence(inv_event_entry(ev));
	c->item_counts[i] = inv_event_item_count(ev);
	if (c->item_counts[i])
		c->first_items[i] = inv_event_items(ev)[0];
	c->count++;
}

void tu_assert_level_set_elsewhere_alerts_the_next_batch(inv_store *a, inv_store *b)
{
	inv_uuid org = tu_uuid(1), product = tu_uuid(900), variant = tu_uuid(1000);
	const inv_location *supplier, *store_loc, *sold, *other_store;
	const inv_journal_record *r;
	const inv_variant *v;
	inv_org *ga, *gb;
	inv_journal *j;
	int64_t level = 8;
	size_t i, n, lows = 0;

	ck_assert_int_eq(inv_org_open(&ga, a, &org), 0);
	ck_assert_int_eq(inv_tracking_start(ga, &product), 0);
	ck_assert_int_eq(inv_variant_get(&v, ga, &product, &variant), 0);
	ck_assert_int_eq(inv_location_by_type(&supplier, ga, INV_LOCATION_SUPPLIER), 0);
	ck_assert_int_eq(inv_location_by_type(&store_loc, ga, INV_LOCATION_STORE), 0);
	ck_assert_int_eq(inv_location_by_type(&sold, ga, INV_LOCATION_SOLD), 0);
	{
		inv_change in = { v, supplier, store_loc, 10 };
		ck_assert_int_eq(inv_apply_changes(NULL, ga, &in, 1, NULL), 0);
	}
	ck_assert_int_eq(inv_org_open(&gb, b, &org), 0);
	ck_assert_int_eq(inv_location_by_type(&other_store, gb, INV_LOCATION_STORE), 0);
	ck_assert_int_eq(inv_low_stock_set(gb, other_store, &product, &variant, &level, 1), 0);
	{
		inv_change out = { v, store_loc, sold, 5 };
		ck_assert_int_eq(inv_apply_changes(NULL, ga, &out, 1, NULL), 0);
	}
	ck_assert_int_eq(inv_journal_read(&j, ga, NULL), 0);
	ck_assert_uint_eq(inv_journal_count(j), 3);
	n = inv_journal_entry_record_count(inv_journal_at(j, 2));
	r = inv_journal_entry_records(inv_journal_at(j, 2));
	for (i = 0; i < n; i++)
		lows += r[i].kind == INV_RECORD_LOW_STOCK;
	ck_assert_uint_eq(lows, 1);
	inv_journal_free(j);
	inv_org_close(gb);
	inv_org_close(ga);
}

int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
