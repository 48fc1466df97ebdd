/*
 * zb_hash.h - the memory baseline: the fastest plain C a careful engineer
 * would write for the work inv_apply_changes() does at the least (look
 * every variant up, check every change in order against running balances,
 * store all or nothing), with no library: an open-addressing table of
 * 64-byte slots (one cache line each) keyed by the 32-byte (product,
 * variant) pair, changes that carry their keys (no second random read),
 * and a prefetch pass over the batch before any lookup waits on memory.
 *
 * No journal, no events, no handles, no vtable.
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
	uint64_t pad;        /* a slot is one 64-byte cache line */
} zb_hslot;

typedef struct zb_htable {
	zb_hslot *slots;     /* 64-byte aligned */
	size_t mask;
	size_t count;
	uint32_t epoch;
	zb_hslot **touched;  /* scratch: slots touched by the batch */
	uint64_t *hashes;    /* scratch: the batch's hashes, from the prefetch pass */
	size_t batch_cap;
} zb_htable;

/* One change as the baseline takes it: its key inline, and location codes
 * (ZB_STORE, ZB_SOLD, ZB_SUPPLIER). */
typedef struct zb_hchange {
	uint8_t key[32];
	int64_t quantity;
	uint8_t from;
	uint8_t to;
} zb_hchange;

int zb_htable_init(zb_htable *t, size_t expected, size_t max_batch);
void zb_htable_free(zb_htable *t);
/* Add a variant with balance `balance`; 0, or -1 when out of memory. */
int zb_htable_insert(zb_htable *t, const uint8_t key[32], int64_t balance);
zb_hslot *zb_htable_find(const zb_htable *t, const uint8_t key[32]);
/* 0, or -(1 + index of the first failing change); nothing changed then. */
long zb_htable_apply(zb_htable *t, const zb_hchange *changes, size_t count);

#endif /* ZB_HASH_H */
