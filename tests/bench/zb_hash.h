/*
 * zb_hash.h - the memory baseline: an open-addressing hash table keyed by
 * the 32-byte (product, variant) pair, applying a batch in two passes
 * (validate against running balances, then write), with no library.
 *
 * It does what inv_apply_changes() must do at the least (look every
 * variant up, check every change in order, store all or nothing) and
 * nothing else: no journal, no events, no handles, no vtable.
 */
#ifndef ZB_HASH_H
#define ZB_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct zb_hslot {
	uint8_t key[32];
	int64_t balance;
	int64_t pending;     /* running balance inside the current batch */
	uint32_t epoch;      /* batch that last touched `pending` */
	uint32_t used;
} zb_hslot;

typedef struct zb_htable {
	zb_hslot *slots;
	size_t mask;
	size_t count;
	uint32_t epoch;
	zb_hslot **touched;  /* scratch: slots touched by the batch */
	size_t touched_cap;
} zb_htable;

/* One change as the baseline takes it: the key and location codes
 * (ZB_STORE, ZB_SOLD, ZB_SUPPLIER). */
typedef struct zb_hchange {
	const uint8_t *key;
	uint8_t from;
	uint8_t to;
	int64_t quantity;
} zb_hchange;

int zb_htable_init(zb_htable *t, size_t expected, size_t max_batch);
void zb_htable_free(zb_htable *t);
/* Add a variant with balance `balance`; 0, or -1 when out of memory. */
int zb_htable_insert(zb_htable *t, const uint8_t key[32], int64_t balance);
zb_hslot *zb_htable_find(const zb_htable *t, const uint8_t key[32]);
/* 0, or -(1 + index of the first failing change); nothing changed then. */
long zb_htable_apply(zb_htable *t, const zb_hchange *changes, size_t count);

#endif /* ZB_HASH_H */
