/*
 * testutil.h - shared helpers of the core tests: a store on the memory
 * backend with a fixed clock and a deterministic UUID generator, short ways
 * to name products, variants and moves, and a snapshot of an organization's
 * whole visible state for "nothing changed" assertions.
 */
#ifndef ZINV_TESTUTIL_H
#define ZINV_TESTUTIL_H

#include <check.h>
#include <zinv.h>

/* The test clock's start: 2021-04-19T13:18:11.966Z. */
#define TU_T0 INT64_C(1618838291966)

struct tu_env {
	inv_store *store;
	inv_org *org;
	int64_t now;               /* what the store's clock returns */
	uint64_t uuid_counter;     /* the UUID generator's state */
	const inv_location *store_loc, *sold, *bin, *supplier;
};

/* A UUID whose last four bytes hold `n` (and a fixed non-zero first byte),
 * so that tests name things by number and sort order follows `n`. */
inv_uuid tu_uuid(uint32_t n);

/* Store options with the test clock and generator of `env`. */
void tu_options(inv_store_options *opts, struct tu_env *env);

/* Open a memory store and organization tu_uuid(1) with `policy`. */
void tu_open(struct tu_env *env, inv_negative_policy policy);
void tu_close(struct tu_env *env);

/* Assert-success helpers. */
const inv_variant *tu_variant(struct tu_env *env, uint32_t product, uint32_t variant);
void tu_track(struct tu_env *env, uint32_t product);
int64_t tu_balance(struct tu_env *env, const inv_variant *v);
/* Move `qty` of `v`; returns the call's code. */
int tu_move(struct tu_env *env, const inv_variant *v, const inv_location *from,
            const inv_location *to, int64_t qty);
/* SUPPLIER -> STORE, asserting success. */
void tu_stock(struct tu_env *env, const inv_variant *v, int64_t qty);
int64_t tu_last_sequence(struct tu_env *env);

/* Everything the API shows about an organization. */
struct tu_snapshot {
	inv_balance *balances;     /* include_zero, every tracked product */
	size_t balance_count;
	inv_uuid *tracked;
	size_t tracked_count;
	inv_low_stock *low;
	size_t low_count;
	int64_t last_sequence;
	size_t journal_count;
	int64_t journal_last;      /* sequence of the last entry read */
};

void tu_snapshot_take(struct tu_snapshot *s, struct tu_env *env);
/* Assert that two snapshots are equal, naming the first difference. */
void tu_snapshot_assert_eq(const struct tu_snapshot *a, const struct tu_snapshot *b);
void tu_snapshot_free(struct tu_snapshot *s);

/* Assert inv_error_last() shows `code`, `index` and `field` (NULL: any). */
void tu_assert_error(int rc, int code, int64_t index, const char *field);

/* Collects events for assertions. */
struct tu_events {
	size_t count;
	inv_event_type types[64];
	int64_t sequences[64];
	size_t item_counts[64];
	inv_journal_record first_items[64];
};
void tu_collect_event(const inv_event *ev, void *payload);

/* Two stores `a` and `b` on one database: a batch through `a`, a low-stock
 * level set through `b`, then a batch through `a` that crosses it must
 * record the LOW_STOCK crossing (a store must not trust what it learnt of
 * the levels before another writer's commit). */
void tu_assert_level_set_elsewhere_alerts_the_next_batch(inv_store *a, inv_store *b);

/* Run a suite; returns the process exit status. */
int tu_run(Suite *s);

#endif /* ZINV_TESTUTIL_H */
