/*
 * zb_hash.c - the memory baseline (see zb_hash.h).
 */
#include "zb_hash.h"
#include "zb.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(zb_hslot) == 64, "a slot is one cache line");

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Four multiply-mixed words: keys are random UUIDs, but a real table must
 * not trust that, so every byte takes part. */
static uint64_t hash32(const uint8_t *k)
{
	uint64_t h = load64(k) * UINT64_C(0x9e3779b97f4a7c15);
	h ^= load64(k + 8) * UINT64_C(0xc2b2ae3d27d4eb4f);
	h ^= load64(k + 16) * UINT64_C(0x165667b19e3779f9);
	h ^= load64(k + 24) * UINT64_C(0x27d4eb2f165667c5);
	return h ^ (h >> 29);
}

static int key_eq(const uint8_t *a, const uint8_t *b)
{
	return ((load64(a) ^ load64(b)) | (load64(a + 8) ^ load64(b + 8)) |
	        (load64(a + 16) ^ load64(b + 16)) | (load64(a + 24) ^ load64(b + 24))) == 0;
}

int zb_htable_init(zb_htable *t, size_t expected, size_t max_batch)
{
	size_t cap = 16;
	while (cap < expected * 2)
		cap *= 2;
	memset(t, 0, sizeof *t);
	if (!max_batch)
		max_batch = 1;
	t->slots = aligned_alloc(64, cap * sizeof *t->slots);
	t->touched = malloc(max_batch * sizeof *t->touched);
	t->hashes = malloc(max_batch * sizeof *t->hashes);
	if (!t->slots || !t->touched || !t->hashes) {
		zb_htable_free(t);
		return -1;
	}
	memset(t->slots, 0, cap * sizeof *t->slots);
	t->mask = cap - 1;
	t->batch_cap = max_batch;
	return 0;
}

void zb_htable_free(zb_htable *t)
{
	free(t->slots);
	free(t->touched);
	free(t->hashes);
	memset(t, 0, sizeof *t);
}

static zb_hslot *find_hashed(const zb_htable *t, const uint8_t *key, uint64_t h)
{
	size_t i = (size_t)h & t->mask;
	for (;;) {
		zb_hslot *s = &t->slots[i];
		if (!s->used)
			return NULL;
		if (key_eq(s->key, key))
			return s;
		i = (i + 1) & t->mask;
	}
}

zb_hslot *zb_htable_find(const zb_htable *t, const uint8_t key[32])
{
	return find_hashed(t, key, hash32(key));
}

int zb_htable_insert(zb_htable *t, const uint8_t key[32], int64_t balance)
{
	size_t i = (size_t)hash32(key) & t->mask;
	if ((t->count + 1) * 2 > t->mask + 1)
		return -1; /* sized once by init; the bench never grows it */
	for (;;) {
		zb_hslot *s = &t->slots[i];
		if (!s->used) {
			memcpy(s->key, key, 32);
			s->balance = balance;
			s->used = 1;
			t->count++;
			return 0;
		}
		if (key_eq(s->key, key)) {
			s->balance = balance;
			return 0;
		}
		i = (i + 1) & t->mask;
	}
}

long zb_htable_apply(zb_htable *t, const zb_hchange *changes, size_t count)
{
	size_t ntouched = 0;
	uint32_t epoch = ++t->epoch;

	if (count > t->batch_cap)
		return -1;
	/* Pass 0: hash every key and start its slot's cache miss, so that the
	 * misses of the whole batch overlap instead of queueing. */
	for (size_t i = 0; i < count; i++) {
		uint64_t h = hash32(changes[i].key);
		t->hashes[i] = h;
		__builtin_prefetch(&t->slots[(size_t)h & t->mask], 1);
	}
	/* Pass 1: validate each change against the running balance. */
	for (size_t i = 0; i < count; i++) {
		const zb_hchange *c = &changes[i];
		zb_hslot *s;
		int64_t delta, next;

		if (c->quantity < 1 || c->quantity > INV_QUANTITY_MAX || c->from == c->to ||
		    c->from >= ZB_LOC_COUNT || c->to >= ZB_LOC_COUNT)
			return -1 - (long)i;
		s = find_hashed(t, c->key, t->hashes[i]);
		if (!s)
			return -1 - (long)i; /* unknown, or not tracked */
		if (c->to == ZB_STORE)
			delta = c->quantity;
		else if (c->from == ZB_STORE)
			delta = -c->quantity;
		else
			continue;
		if (s->epoch != epoch) {
			s->epoch = epoch;
			s->pending = s->balance;
			t->touched[ntouched++] = s;
		}
		next = s->pending + delta;
		if (next > INV_QUANTITY_MAX || next < -INV_QUANTITY_MAX)
			return -1 - (long)i;
		s->pending = next;
	}
	/* Pass 2: every change passed; store them all. */
	for (size_t i = 0; i < ntouched; i++)
		t->touched[i]->balance = t->touched[i]->pending;
	return 0;
}
