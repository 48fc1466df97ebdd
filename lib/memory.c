/*
 * memory.c - the built-in memory backend.
 *
 * Concurrency: one pthread rwlock per organization.  A write transaction
 * holds its organization's exclusively, a read transaction shares it, so a
 * reader always sees committed state and needs no snapshot machinery, and
 * organizations never wait for each other.  The map of organizations has
 * its own lock, held only to look one up or add one.
 *
 * Transactions write in place and keep an undo log (the old value, or
 * "absent") per write; rollback replays it backwards, commit drops it.  Every
 * write reserves its undo entry and any table growth before it changes
 * anything, so a failed allocation leaves the write undone and the log still
 * able to undo the earlier ones.  Undo never allocates.
 *
 * Variant records, the bulk of the data, live in a dense array (56 bytes
 * each: the location is an index into a small per-organization table of
 * location UUIDs) indexed by an open-addressing table of 8-byte slots, plus
 * a product index of 4-byte slots.  A million variants take about 77 bytes
 * each, and a rolled-back insert is undone by popping the last record.
 *
 * A write transaction is embedded in the organization it begins with and
 * reused (its undo log kept up to UNDO_KEEP_MAX entries), and the journal
 * lives in chunks, so that a batch on a known organization allocates
 * nothing.
 */
/* For glibc's writer-preferring rwlock; everything else is POSIX. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <zinv/backend.h>

#include "memory_int.h"

#define BACKEND_NAME "memory"

static const inv_backend_ops memory_ops;

/* ------------------------------------------------------------- hashing */

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

static inline uint64_t load64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline int uuid_same(const inv_uuid *a, const inv_uuid *b)
{
	return ((load64(a->bytes) ^ load64(b->bytes)) |
	        (load64(a->bytes + 8) ^ load64(b->bytes + 8))) == 0;
}

/* A multiply and a rotation per word, and one full mix at the end: keys
 * are UUIDs and short strings, and a rotation carries each word's high
 * bits down before the next word joins. */
static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	uint64_t h = seed ^ (n * UINT64_C(0x9e3779b97f4a7c15));

	for (; n >= 8; n -= 8, b += 8) {
		h = (h ^ load64(b)) * UINT64_C(0xff51afd7ed558ccd);
		h = h << 31 | h >> 33;
	}
	if (n) {
		uint64_t tail = 0;

		memcpy(&tail, b, n);
		h = (h ^ tail ^ UINT64_C(0x5851f42d4c957f2d)) * UINT64_C(0xc4ceb9fe1a85ec53);
	}
	return mix64(h);
}

/* Stored hashes have the top bit set, so 0 marks an empty slot and the low
 * bits still pick the home slot (tables stay below 2^31 slots). */
static inline uint32_t slot_hash(uint64_t h)
{
	return (uint32_t)h | UINT32_C(0x80000000);
}

/* Linear probing: is `home` outside the cyclic range (hole, pos]?  Then the
 * entry at `pos` may move back into the hole. */
static inline int may_shift(size_t home, size_t hole, size_t pos)
{
	return hole <= pos ? (home <= hole || home > pos)
	                   : (home <= hole && home > pos);
}

/* -------------------------------------------------------- allocation */

/*
 * Control op INV_MEMORY_CONTROL_FAIL_ALLOC (arg: const uint64_t *k) makes
 * the k-th allocation from now fail (0 disarms), so that tests can prove
 * that ENOMEM anywhere leaves nothing half-written.
 */
#define INV_MEMORY_CONTROL_FAIL_ALLOC 0x4d454d01

struct alloc_hook {
	_Atomic uint64_t fail_in;   /* allocations until one fails; 0: never */
};

static int alloc_fails(struct alloc_hook *h)
{
	uint64_t n = atomic_load_explicit(&h->fail_in, memory_order_relaxed);

	if (n == 0)
		return 0;
	atomic_store_explicit(&h->fail_in, n - 1, memory_order_relaxed);
	return n == 1;
}

static void *h_malloc(struct alloc_hook *h, size_t n)
{
	return alloc_fails(h) ? NULL : malloc(n);
}

static void *h_calloc(struct alloc_hook *h, size_t n, size_t size)
{
	return alloc_fails(h) ? NULL : calloc(n, size);
}

static void *h_realloc(struct alloc_hook *h, void *p, size_t n)
{
	return alloc_fails(h) ? NULL : realloc(p, n);
}

/* -------------------------------------------- fixed-size entry tables */

/*
 * An open-addressing table of fixed-size entries whose first `ksize` bytes
 * are the key.  With ksize 0 the entry is a struct idem_item pointer and the
 * key a C string (the idempotency table).
 */
struct ftab {
	unsigned char *entries;
	uint32_t *hashes;           /* 0: empty */
	size_t cap;                 /* power of two, or 0 */
	size_t count;
	uint32_t esize;
	uint32_t ksize;
};

struct idem_item {
	uint8_t fingerprint[32];
	int64_t sequence;
	size_t result_len;
	size_t key_len;
	char data[];                /* key, NUL, result */
};

static void ftab_init(struct ftab *t, uint32_t esize, uint32_t ksize)
{
	memset(t, 0, sizeof(*t));
	t->esize = esize;
	t->ksize = ksize;
}

static void ftab_free(struct ftab *t)
{
	free(t->entries);
	free(t->hashes);
	t->entries = NULL;
	t->hashes = NULL;
	t->cap = t->count = 0;
}

static inline void *ftab_at(const struct ftab *t, size_t i)
{
	return t->entries + i * t->esize;
}

static int ftab_key_eq(const struct ftab *t, size_t i, const void *key)
{
	if (t->ksize)
		return memcmp(ftab_at(t, i), key, t->ksize) == 0;
	struct idem_item *item;

	memcpy(&item, ftab_at(t, i), sizeof(item));
	return strcmp(item->data, key) == 0;
}

static uint32_t ftab_hash(const struct ftab *t, const void *key)
{
	if (t->ksize)
		return slot_hash(hash_bytes(key, t->ksize, 0));
	return slot_hash(hash_bytes(key, strlen(key), 1));
}

/* The slot holding `key`, or SIZE_MAX. */
static size_t ftab_find(const struct ftab *t, const void *key, uint32_t h)
{
	if (!t->count)
		return SIZE_MAX;
	size_t mask = t->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		if (t->hashes[i] == 0)
			return SIZE_MAX;
		if (t->hashes[i] == h && ftab_key_eq(t, i, key))
			return i;
	}
}

/* Make room for one more entry (load at most 3/4).  -1 on ENOMEM, table
 * unchanged. */
static int ftab_reserve(struct alloc_hook *h, struct ftab *t)
{
	if ((t->count + 1) * 4 <= t->cap * 3)
		return 0;
	size_t ncap = t->cap ? t->cap * 2 : 16;
	unsigned char *ne = h_malloc(h, ncap * t->esize);
	uint32_t *nh = h_calloc(h, ncap, sizeof(*nh));

	if (!ne || !nh) {
		free(ne);
		free(nh);
		return -1;
	}
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->hashes[i])
			continue;
		size_t j = t->hashes[i] & (ncap - 1);

		while (nh[j])
			j = (j + 1) & (ncap - 1);
		nh[j] = t->hashes[i];
		memcpy(ne + j * t->esize, ftab_at(t, i), t->esize);
	}
	free(t->entries);
	free(t->hashes);
	t->entries = ne;
	t->hashes = nh;
	t->cap = ncap;
	return 0;
}

/* Insert an entry known to be absent, after ftab_reserve(). */
static void *ftab_insert(struct ftab *t, const void *entry, uint32_t h)
{
	size_t mask = t->cap - 1;
	size_t i = h & mask;

	while (t->hashes[i])
		i = (i + 1) & mask;
	t->hashes[i] = h;
	memcpy(ftab_at(t, i), entry, t->esize);
	t->count++;
	return ftab_at(t, i);
}

/* Backward-shift deletion: no tombstones, and never allocates. */
static void ftab_remove_at(struct ftab *t, size_t hole)
{
	size_t mask = t->cap - 1;

	for (size_t pos = (hole + 1) & mask; t->hashes[pos]; pos = (pos + 1) & mask) {
		if (may_shift(t->hashes[pos] & mask, hole, pos)) {
			t->hashes[hole] = t->hashes[pos];
			memcpy(ftab_at(t, hole), ftab_at(t, pos), t->esize);
			hole = pos;
		}
	}
	t->hashes[hole] = 0;
	t->count--;
}

/* ------------------------------------------------------ variant table */

#define VNONE UINT32_MAX

struct vrec {
	inv_uuid variant;
	inv_uuid product;
	int64_t balance;
	int64_t updated;
	uint32_t loc;               /* index into morg.vlocs */
	uint32_t next;              /* next record of the same product, or VNONE */
};

struct vslot {
	uint32_t hash;              /* 0: empty */
	uint32_t index;             /* into vtab.recs */
};

/*
 * Records in insertion order, a (location, variant) index, and a product
 * index: each product slot holds the newest record of the product (index +
 * 1; 0: empty) and records chain through `next`, so that a scan by product
 * touches only that product's records for 4 bytes per slot.  The product
 * slot keeps no hash or key: both come from the head record.
 */
struct vtab {
	struct vrec *recs;
	size_t count, reccap;
	struct vslot *slots;
	size_t cap;
	uint32_t *pslots;
	size_t pcap, pcount;
};

static inline uint32_t vkey_hash(uint32_t loc, const inv_uuid *variant)
{
	uint64_t a = load64(variant->bytes), b = load64(variant->bytes + 8);

	return slot_hash(mix64(a ^ mix64(b ^ ((uint64_t)loc << 32 | loc))));
}

static inline size_t product_hash(const inv_uuid *product)
{
	return (size_t)mix64(load64(product->bytes) ^ mix64(load64(product->bytes + 8)));
}

/* The slot of (loc, variant), or SIZE_MAX. */
static size_t vtab_find(const struct vtab *t, uint32_t loc, const inv_uuid *variant,
                        uint32_t h)
{
	if (!t->count)
		return SIZE_MAX;
	size_t mask = t->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct vslot *s = &t->slots[i];

		if (s->hash == 0)
			return SIZE_MAX;
		if (s->hash == h) {
			const struct vrec *r = &t->recs[s->index];

			if (r->loc == loc && memcmp(&r->variant, variant, sizeof(*variant)) == 0)
				return i;
		}
	}
}

/* The product slot of `product`, or SIZE_MAX. */
static size_t ptab_find(const struct vtab *t, const inv_uuid *product)
{
	if (!t->pcount)
		return SIZE_MAX;
	size_t mask = t->pcap - 1;

	for (size_t i = product_hash(product) & mask;; i = (i + 1) & mask) {
		if (t->pslots[i] == 0)
			return SIZE_MAX;
		if (memcmp(&t->recs[t->pslots[i] - 1].product, product, sizeof(*product)) == 0)
			return i;
	}
}

static inline size_t ptab_home(const struct vtab *t, uint32_t slot, size_t mask)
{
	return product_hash(&t->recs[slot - 1].product) & mask;
}

static int ptab_reserve(struct alloc_hook *h, struct vtab *t)
{
	if ((t->pcount + 1) * 4 <= t->pcap * 3)
		return 0;
	size_t ncap = t->pcap ? t->pcap * 2 : 64;
	uint32_t *ns = h_calloc(h, ncap, sizeof(*ns));

	if (!ns)
		return -1;
	for (size_t i = 0; i < t->pcap; i++) {
		if (!t->pslots[i])
			continue;
		size_t j = ptab_home(t, t->pslots[i], ncap - 1);

		while (ns[j])
			j = (j + 1) & (ncap - 1);
		ns[j] = t->pslots[i];
	}
	free(t->pslots);
	t->pslots = ns;
	t->pcap = ncap;
	return 0;
}

/* Make record `index` the head of its product's chain (its `product` is
 * set; a slot is reserved). */
static void ptab_push(struct vtab *t, uint32_t index)
{
	struct vrec *r = &t->recs[index];
	size_t i = ptab_find(t, &r->product);

	if (i != SIZE_MAX) {
		r->next = t->pslots[i] - 1;
		t->pslots[i] = index + 1;
		return;
	}
	size_t mask = t->pcap - 1;

	r->next = VNONE;
	for (i = product_hash(&r->product) & mask; t->pslots[i]; i = (i + 1) & mask)
		;
	t->pslots[i] = index + 1;
	t->pcount++;
}

static void ptab_remove_at(struct vtab *t, size_t hole)
{
	size_t mask = t->pcap - 1;

	for (size_t pos = (hole + 1) & mask; t->pslots[pos]; pos = (pos + 1) & mask) {
		if (may_shift(ptab_home(t, t->pslots[pos], mask), hole, pos)) {
			t->pslots[hole] = t->pslots[pos];
			hole = pos;
		}
	}
	t->pslots[hole] = 0;
	t->pcount--;
}

/* Take the head record off its product's chain. */
static void ptab_pop_head(struct vtab *t, uint32_t index)
{
	const struct vrec *r = &t->recs[index];
	size_t i = ptab_find(t, &r->product);

	if (r->next == VNONE)
		ptab_remove_at(t, i);
	else
		t->pslots[i] = r->next + 1;
}

/* Unlink record `index` from anywhere in its product's chain; returns its
 * predecessor (VNONE when it was the head), for the undo log. */
static uint32_t ptab_unlink(struct vtab *t, uint32_t index)
{
	size_t i = ptab_find(t, &t->recs[index].product);
	uint32_t pred = VNONE, cur = t->pslots[i] - 1;

	if (cur == index) {
		ptab_pop_head(t, index);
		return VNONE;
	}
	while (cur != index) {
		pred = cur;
		cur = t->recs[cur].next;
	}
	t->recs[pred].next = t->recs[index].next;
	return pred;
}

/* Put record `index` back after `pred` (VNONE: as the head); its `next`
 * is already what it was. */
static void ptab_relink(struct vtab *t, uint32_t index, uint32_t pred)
{
	if (pred != VNONE) {
		t->recs[pred].next = index;
		return;
	}
	uint32_t next = t->recs[index].next;

	ptab_push(t, index);
	t->recs[index].next = next;
}

static int vtab_reserve(struct alloc_hook *h, struct vtab *t)
{
	if (t->count == t->reccap) {
		size_t ncap = t->reccap ? t->reccap * 2 : 64;

		if (ncap >= VNONE)
			return -1;
		struct vrec *nr = h_realloc(h, t->recs, ncap * sizeof(*nr));

		if (!nr)
			return -1;
		t->recs = nr;
		t->reccap = ncap;
	}
	if ((t->count + 1) * 4 > t->cap * 3) {
		size_t ncap = t->cap ? t->cap * 2 : 128;
		struct vslot *ns = h_calloc(h, ncap, sizeof(*ns));

		if (!ns)
			return -1;
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->slots[i].hash)
				continue;
			size_t j = t->slots[i].hash & (ncap - 1);

			while (ns[j].hash)
				j = (j + 1) & (ncap - 1);
			ns[j] = t->slots[i];
		}
		free(t->slots);
		t->slots = ns;
		t->cap = ncap;
	}
	return ptab_reserve(h, t);
}

static void vtab_insert(struct vtab *t, const struct vrec *rec, uint32_t h)
{
	size_t mask = t->cap - 1;
	size_t i = h & mask;
	uint32_t index = (uint32_t)t->count;

	while (t->slots[i].hash)
		i = (i + 1) & mask;
	t->slots[i].hash = h;
	t->slots[i].index = index;
	t->recs[index] = *rec;
	t->count++;
	ptab_push(t, index);
}

/* Undo the last insert: inserts are undone in reverse, so the record to
 * drop is the last one, and the head of its product's chain. */
static void vtab_pop(struct vtab *t)
{
	uint32_t index = (uint32_t)t->count - 1;
	struct vrec *r = &t->recs[index];
	size_t hole = vtab_find(t, r->loc, &r->variant, vkey_hash(r->loc, &r->variant));
	size_t mask = t->cap - 1;

	ptab_pop_head(t, index);
	for (size_t pos = (hole + 1) & mask; t->slots[pos].hash; pos = (pos + 1) & mask) {
		if (may_shift(t->slots[pos].hash & mask, hole, pos)) {
			t->slots[hole] = t->slots[pos];
			hole = pos;
		}
	}
	t->slots[hole].hash = 0;
	t->count--;
}

static void vtab_free(struct vtab *t)
{
	free(t->recs);
	free(t->slots);
	free(t->pslots);
}

/* ------------------------------------------------------- organizations */

struct tracking_entry {
	inv_uuid product;
	int32_t tracked;
	int32_t reserved;
};

/* The key of a low-stock record is its first 48 bytes. */
#define LOW_KEY_SIZE (3 * sizeof(inv_uuid))

/*
 * The journal is stored in chunks of JCHUNK bytes (a bigger entry gets a
 * chunk of its own), carved in append order and freed whole once trimming
 * has passed every entry in them, so that an append allocates nothing in
 * the steady state and a trim frees little.  One emptied chunk is kept as
 * a spare.
 *
 * A record takes 64 bytes instead of the 112 of inv_journal_record: its
 * three locations are indices into a table of the entry's locations, which
 * follows the records (the core hands both over as they are).  An entry
 * whose records do not fit that form (a kind above 255, more than
 * INV__JREC_LOCATIONS_MAX locations) keeps them as given.  Readers get
 * compact records decoded into the transaction's buffer, valid for the
 * callback.
 */
#define JCHUNK ((size_t)64 << 10)

struct jchunk {
	struct jchunk *next;
	size_t cap, used;           /* bytes of data */
	_Alignas(16) unsigned char data[];
};

/* Compact records (memory_int.h) index their entry's table of locations. */
typedef inv__jrec jrec;

_Static_assert(sizeof(jrec) == 64, "a journal record is one cache line");

/* A journal entry, its records and its key, in one stretch of a chunk;
 * rec.records is NULL for compact records (they follow the entry). */
struct jentry {
	inv_journal_entry_record rec;
	struct jchunk *chunk;
	size_t offset;              /* of the entry in chunk->data */
	int compact;
	const inv_uuid *locs;       /* compact: the locations records index */
};

struct minst;
struct undo;

#define JOINED_INLINE 4

struct mtxn {
	struct minst *inst;
	int write;
	int embedded;               /* the morg.wtx of joined[0]: never freed */
	/* Organizations this transaction has locked (shared for a read,
	 * exclusive for a write), the one begin() named first. */
	struct morg **joined;
	size_t njoined, capjoined;
	struct morg *joined_inline[JOINED_INLINE];
	struct undo *log;
	size_t nlog, caplog;
	/* Undo entries holding memory that commit frees (a trim, a replaced
	 * idempotency item or sync state): commit walks the log only then. */
	size_t nfree_at_commit;
	inv_journal_record *jbuf;   /* journal reads decode into this */
	size_t jbufcap;
};

/* Undo entries a write transaction keeps between transactions: a batch of
 * one never allocates, nor does one of up to the 1,024 changes whose
 * working memory the core keeps (SCRATCH_KEEP_MAX in apply.c, an entry per
 * changed balance and a few more); a bigger batch's log does not stay. */
#define UNDO_KEEP_MAX 2048
/* Decoded journal records a transaction keeps for the next read. */
#define JBUF_KEEP_MAX 256

struct morg {
	pthread_rwlock_t lock;      /* held by the transactions that joined it */
	inv_uuid uuid;
	struct alloc_hook *hook;    /* the instance's */
	inv_org_record rec;
	int has_rec;
	inv_location_record *locs;
	size_t nlocs, caplocs;
	struct ftab tracking;       /* struct tracking_entry */
	inv_uuid *vlocs;            /* locations named by variant records */
	uint32_t nvlocs, capvlocs;
	struct vtab variants;
	struct ftab low;            /* inv_low_stock_record */
	struct ftab idem;           /* struct idem_item * */
	struct jentry **journal;    /* live entries are [jhead, jcount) */
	size_t jhead, jcount, jcap;
	struct jchunk *jfirst, *jlast; /* the chunks, oldest first */
	struct jchunk *jspare;
	/* The write transaction that begins with this organization: only the
	 * holder of `lock` (exclusively) uses it, so begin allocates nothing. */
	struct mtxn wtx;
	struct sync_blob *sync;     /* the sync state; NULL: never put */
};

/* A sync-state record (ops version 2), copied on put. */
struct sync_blob {
	size_t len;
	unsigned char data[];
};

struct org_entry {
	inv_uuid uuid;
	struct morg *org;
};

/* ---------------------------------------------------- transactions */

enum undo_kind {
	U_ORG_REC,          /* org record replaced (or first set) */
	U_LOC_ADD,
	U_LOC_SET,
	U_TRACK_NEW,
	U_TRACK_SET,
	U_VAR_NEW,
	U_VAR_SET,          /* same product: only balance and time changed */
	U_VAR_MOVE,         /* the record's product changed */
	U_LOW_NEW,
	U_LOW_SET,
	U_LOW_DEL,
	U_JOURNAL_APPEND,
	U_JOURNAL_TRIM,
	U_IDEM_NEW,
	U_IDEM_SET,
	U_SYNC_SET          /* sync state replaced (or first set) */
};

struct undo {
	enum undo_kind kind;
	int flag;                   /* U_ORG_REC: had a record */
	struct morg *org;
	union {
		inv_org_record org_rec;
		struct {
			size_t index;
			inv_location_record rec;
		} loc;
		struct tracking_entry track;
		struct {
			uint32_t index;
			uint32_t pred;      /* U_VAR_MOVE: predecessor in the old chain */
			struct vrec rec;
		} var;
		struct {
			uint32_t index;
			int64_t balance, updated;
		} var_set;
		inv_low_stock_record low;
		struct {
			size_t old_head, new_head;
		} trim;
		struct idem_item *idem; /* U_IDEM_SET: the replaced item */
		struct sync_blob *sync; /* U_SYNC_SET: the replaced one, or NULL */
	} u;
};


struct minst {
	pthread_rwlock_t maplock;   /* guards `orgs` itself, never held long */
	struct alloc_hook hook;
	struct ftab orgs;           /* struct org_entry; never shrinks */
};

static int oom(const char *message)
{
	return inv_backend_error(INV_ENOMEM, message);
}

/* Room for `n` more undo entries. */
static int undo_reserve_n(struct mtxn *tx, size_t n)
{
	if (tx->caplog - tx->nlog >= n)
		return 0;
	if (n > SIZE_MAX / 2 / sizeof(struct undo) - tx->nlog)
		return oom("memory backend: transaction too large for the undo log");
	size_t ncap = tx->caplog ? tx->caplog * 2 : 64;

	while (ncap - tx->nlog < n)
		ncap *= 2;
	struct undo *nl = h_realloc(&tx->inst->hook, tx->log, ncap * sizeof(*nl));

	if (!nl)
		return oom("memory backend: out of memory growing the undo log");
	tx->log = nl;
	tx->caplog = ncap;
	return 0;
}

/* Inline: every write asks, and the log nearly always has room. */
static inline int undo_reserve(struct mtxn *tx)
{
	return tx->nlog < tx->caplog ? 0 : undo_reserve_n(tx, 1);
}

static struct undo *undo_push(struct mtxn *tx, enum undo_kind kind, struct morg *org)
{
	struct undo *u = &tx->log[tx->nlog++];

	u->kind = kind;
	u->org = org;
	u->flag = 0;
	return u;
}

static void morg_free(struct morg *o)
{
	if (!o)
		return;
	free(o->locs);
	ftab_free(&o->tracking);
	free(o->vlocs);
	vtab_free(&o->variants);
	ftab_free(&o->low);
	for (size_t i = 0; i < o->idem.cap; i++) {
		if (o->idem.hashes[i]) {
			struct idem_item *item;

			memcpy(&item, ftab_at(&o->idem, i), sizeof(item));
			free(item);
		}
	}
	ftab_free(&o->idem);
	free(o->sync);
	free(o->journal);
	while (o->jfirst) {
		struct jchunk *c = o->jfirst;

		o->jfirst = c->next;
		free(c);
	}
	free(o->jspare);
	free(o->wtx.jbuf);
	free(o->wtx.log);
	pthread_rwlock_destroy(&o->lock);
	free(o);
}

static int rwlock_init_writer_first(pthread_rwlock_t *lock);

/* Room for an entry of `size` bytes at the end of the journal's chunks
 * (the chunk list may grow; `used` is the caller's to advance). */
static struct jchunk *jchunk_room(struct morg *o, size_t size)
{
	struct jchunk *c = o->jlast;

	if (c && c->cap - c->used >= size)
		return c;
	if (c && c->used == 0 && o->jfirst == c) {
		/* The only chunk is empty but too small: replace it. */
		o->jfirst = o->jlast = NULL;
		free(c);
	}
	if (o->jspare && o->jspare->cap >= size) {
		c = o->jspare;
		o->jspare = NULL;
	} else {
		size_t cap = size > JCHUNK ? size : JCHUNK;

		c = h_malloc(o->hook, sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
	}
	c->next = NULL;
	c->used = 0;
	if (o->jlast)
		o->jlast->next = c;
	else
		o->jfirst = c;
	o->jlast = c;
	return c;
}

/* Free the chunks that hold no live entry, after a trim committed. */
static void jchunk_release(struct morg *o)
{
	struct jchunk *keep = o->jhead < o->jcount ? o->journal[o->jhead]->chunk : NULL;

	while (o->jfirst && o->jfirst != keep) {
		struct jchunk *c = o->jfirst;

		if (c == o->jlast && !keep) {
			c->used = 0; /* everything trimmed: the last chunk is reused */
			break;
		}
		o->jfirst = c->next;
		if (!o->jspare && c->cap == JCHUNK)
			o->jspare = c;
		else
			free(c);
	}
}

static struct morg *org_find(const struct minst *m, const inv_uuid *uuid)
{
	size_t i = ftab_find(&m->orgs, uuid, ftab_hash(&m->orgs, uuid));

	if (i == SIZE_MAX)
		return NULL;
	return ((struct org_entry *)ftab_at(&m->orgs, i))->org;
}

/* Add an empty organization; the caller holds the map lock exclusively. */
static int org_create(struct minst *m, const inv_uuid *uuid, struct morg **out)
{
	struct morg *o;

	if (ftab_reserve(&m->hook, &m->orgs) < 0)
		return oom("memory backend: out of memory adding an organization");
	o = h_calloc(&m->hook, 1, sizeof(*o));
	if (!o)
		return oom("memory backend: out of memory adding an organization");
	if (rwlock_init_writer_first(&o->lock) != 0) {
		free(o);
		return oom("memory backend: cannot create an organization's lock");
	}
	ftab_init(&o->tracking, sizeof(struct tracking_entry), sizeof(inv_uuid));
	ftab_init(&o->low, sizeof(inv_low_stock_record), LOW_KEY_SIZE);
	ftab_init(&o->idem, sizeof(struct idem_item *), 0);
	o->uuid = *uuid;
	o->rec.org = *uuid;
	o->hook = &m->hook;

	struct org_entry e = { *uuid, o };

	ftab_insert(&m->orgs, &e, ftab_hash(&m->orgs, uuid));
	*out = o;
	return 0;
}

/*
 * Find an organization, and with `create` make it when unknown.  An
 * organization lives until the instance closes, even when the transaction
 * that made it rolls back: empty, it looks exactly like an unknown one (no
 * record, nothing to scan), and the pointers transactions hold stay valid.
 */
static int org_lookup(struct minst *m, const inv_uuid *uuid, int create, struct morg **out)
{
	struct morg *o;
	int rc = 0;

	pthread_rwlock_rdlock(&m->maplock);
	o = org_find(m, uuid);
	pthread_rwlock_unlock(&m->maplock);
	if (!o && create) {
		pthread_rwlock_wrlock(&m->maplock);
		o = org_find(m, uuid);
		if (!o)
			rc = org_create(m, uuid, &o);
		pthread_rwlock_unlock(&m->maplock);
	}
	*out = rc ? NULL : o;
	return rc;
}

/*
 * Lock `o` for this transaction.  Blocking is safe only while the
 * transaction holds no other organization (the core's case: it names one
 * in begin() and touches no other); a second one is only tried, so that
 * two transactions can never wait for each other.
 */
static int txn_join(struct mtxn *tx, struct morg *o)
{
	int rc;

	if (tx->njoined == tx->capjoined) {
		size_t ncap = tx->capjoined * 2;
		struct morg **nj = h_malloc(&tx->inst->hook, ncap * sizeof(*nj));

		if (!nj)
			return oom("memory backend: out of memory joining an organization");
		memcpy(nj, tx->joined, tx->njoined * sizeof(*nj));
		if (tx->joined != tx->joined_inline)
			free(tx->joined);
		tx->joined = nj;
		tx->capjoined = ncap;
	}
	if (tx->njoined == 0)
		rc = tx->write ? pthread_rwlock_wrlock(&o->lock) : pthread_rwlock_rdlock(&o->lock);
	else
		rc = tx->write ? pthread_rwlock_trywrlock(&o->lock)
		               : pthread_rwlock_tryrdlock(&o->lock);
	if (rc != 0)
		return inv_backend_error(INV_EBUSY,
		                         "memory backend: organization busy in another transaction");
	tx->joined[tx->njoined++] = o;
	return 0;
}

static int txn_org_slow(struct mtxn *tx, const inv_uuid *uuid, int create, struct morg **out)
{
	struct morg *o;
	int rc;

	for (size_t i = 1; i < tx->njoined; i++) {
		if (memcmp(&tx->joined[i]->uuid, uuid, sizeof(*uuid)) == 0) {
			*out = tx->joined[i];
			return 0;
		}
	}
	*out = NULL;
	rc = org_lookup(tx->inst, uuid, create, &o);
	if (rc || !o)
		return rc;
	rc = txn_join(tx, o);
	if (rc)
		return rc;
	*out = o;
	return 0;
}

/* The organization `uuid` as this transaction sees it, joined on first
 * use; NULL (and 0) when unknown and not `create`.  Nearly always the one
 * begin() named: checked inline. */
static inline int txn_org(struct mtxn *tx, const inv_uuid *uuid, int create, struct morg **out)
{
	if (tx->njoined) {
		const inv_uuid *j = &tx->joined[0]->uuid;

		if (((load64(j->bytes) ^ load64(uuid->bytes)) |
		     (load64(j->bytes + 8) ^ load64(uuid->bytes + 8))) == 0) {
			*out = tx->joined[0];
			return 0;
		}
	}
	return txn_org_slow(tx, uuid, create, out);
}

/* The organization for a read: NULL (and 0) when unknown. */
static int org_for_read(struct mtxn *tx, const inv_uuid *uuid, struct morg **out)
{
	return txn_org(tx, uuid, 0, out);
}

/*
 * The organization for a write, created empty when unknown so that a backend
 * without foreign keys behaves the same.  Reserves one undo entry for the
 * caller's write.
 */
static int org_for_write(struct mtxn *tx, const inv_uuid *uuid, struct morg **out)
{
	if (!tx->write)
		return inv_backend_error(INV_EBACKEND,
		                         "memory backend: write in a read transaction");
	int rc = txn_org(tx, uuid, 1, out);

	return rc ? rc : undo_reserve(tx);
}

static void undo_one(struct undo *u)
{
	struct morg *o = u->org;
	size_t i;

	switch (u->kind) {
	case U_ORG_REC:
		o->rec = u->u.org_rec;
		o->has_rec = u->flag;
		break;
	case U_LOC_ADD:
		o->nlocs--;
		break;
	case U_LOC_SET:
		o->locs[u->u.loc.index] = u->u.loc.rec;
		break;
	case U_TRACK_NEW:
		i = ftab_find(&o->tracking, &u->u.track.product,
		              ftab_hash(&o->tracking, &u->u.track.product));
		ftab_remove_at(&o->tracking, i);
		break;
	case U_TRACK_SET:
		i = ftab_find(&o->tracking, &u->u.track.product,
		              ftab_hash(&o->tracking, &u->u.track.product));
		memcpy(ftab_at(&o->tracking, i), &u->u.track, sizeof(u->u.track));
		break;
	case U_VAR_NEW:
		vtab_pop(&o->variants);
		break;
	case U_VAR_SET: {
		struct vrec *r = &o->variants.recs[u->u.var_set.index];

		r->balance = u->u.var_set.balance;
		r->updated = u->u.var_set.updated;
		break;
	}
	case U_VAR_MOVE:
		/* Later inserts into the new chain are undone: it is the head. */
		ptab_pop_head(&o->variants, u->u.var.index);
		o->variants.recs[u->u.var.index] = u->u.var.rec;
		ptab_relink(&o->variants, u->u.var.index, u->u.var.pred);
		break;
	case U_LOW_NEW:
		i = ftab_find(&o->low, &u->u.low, ftab_hash(&o->low, &u->u.low));
		ftab_remove_at(&o->low, i);
		break;
	case U_LOW_SET:
		i = ftab_find(&o->low, &u->u.low, ftab_hash(&o->low, &u->u.low));
		memcpy(ftab_at(&o->low, i), &u->u.low, sizeof(u->u.low));
		break;
	case U_LOW_DEL:
		/* The delete left the table's capacity, so this cannot fail. */
		ftab_insert(&o->low, &u->u.low, ftab_hash(&o->low, &u->u.low));
		break;
	case U_JOURNAL_APPEND: {
		/* Appends are undone last first: the entry ends its chunk. */
		struct jentry *e = o->journal[--o->jcount];

		e->chunk->used = e->offset;
		break;
	}
	case U_JOURNAL_TRIM:
		o->jhead = u->u.trim.old_head;
		break;
	case U_IDEM_NEW:
	case U_IDEM_SET: {
		/* Both kinds hold an item with the key: the new one or the
		 * replaced one. */
		const char *key = u->u.idem->data;
		struct idem_item *cur;

		i = ftab_find(&o->idem, key, ftab_hash(&o->idem, key));
		memcpy(&cur, ftab_at(&o->idem, i), sizeof(cur));
		if (u->kind == U_IDEM_NEW) {
			ftab_remove_at(&o->idem, i);
		} else {
			memcpy(ftab_at(&o->idem, i), &u->u.idem, sizeof(u->u.idem));
		}
		free(cur);
		break;
	}
	case U_SYNC_SET:
		free(o->sync);
		o->sync = u->u.sync;
		break;
	}
}

/* Release every organization the transaction joined, and the transaction.
 * An embedded transaction is done with before its owner's lock goes: from
 * then on the next writer may use it. */
static void txn_end(struct mtxn *tx)
{
	struct morg *owner = tx->embedded ? tx->joined[0] : NULL;

	for (size_t i = owner ? 1 : 0; i < tx->njoined; i++)
		pthread_rwlock_unlock(&tx->joined[i]->lock);
	if (tx->joined != tx->joined_inline)
		free(tx->joined);
	if (!owner) {
		free(tx->log);
		free(tx->jbuf);
		free(tx);
		return;
	}
	if (tx->caplog > UNDO_KEEP_MAX) {
		free(tx->log);
		tx->log = NULL;
		tx->caplog = 0;
	}
	if (tx->jbufcap > JBUF_KEEP_MAX) {
		free(tx->jbuf);
		tx->jbuf = NULL;
		tx->jbufcap = 0;
	}
	tx->joined = tx->joined_inline;
	tx->njoined = 0;
	tx->nlog = 0;
	tx->nfree_at_commit = 0;
	pthread_rwlock_unlock(&owner->lock);
}

/* A write transaction that starts by locking `o`: its embedded one. */
static int begin_write_on(struct minst *m, struct morg *o, void **txn)
{
	struct mtxn *tx = &o->wtx;

	if (pthread_rwlock_wrlock(&o->lock) != 0)
		return inv_backend_error(INV_EBUSY,
		                         "memory backend: organization busy in another transaction");
	tx->inst = m;
	tx->write = 1;
	tx->embedded = 1;
	tx->joined = tx->joined_inline;
	tx->capjoined = JOINED_INLINE;
	tx->joined[0] = o;
	tx->njoined = 1;
	tx->nlog = 0;
	*txn = tx;
	return 0;
}

static int mem_begin(void *instance, const inv_uuid *org, int write, void **txn)
{
	struct minst *m = instance;
	struct mtxn *tx;
	int rc = 0;

	if (write && org) {
		struct morg *o;

		rc = org_lookup(m, org, 1, &o);
		return rc ? rc : begin_write_on(m, o, txn);
	}
	tx = h_calloc(&m->hook, 1, sizeof(*tx));
	if (!tx)
		return oom("memory backend: out of memory beginning a transaction");
	tx->inst = m;
	tx->write = write != 0;
	tx->joined = tx->joined_inline;
	tx->capjoined = JOINED_INLINE;
	/* Lock the named organization now, so that the transaction is a
	 * snapshot from its start.  A reader of an unknown organization locks
	 * nothing until it appears. */
	if (org) {
		struct morg *o;

		rc = txn_org(tx, org, tx->write, &o);
	}
	if (rc) {
		txn_end(tx);
		return rc;
	}
	*txn = tx;
	return 0;
}

int inv__memory_begin(void *instance, void **org_cache, const inv_uuid *org, int write,
                      void **txn)
{
	struct minst *m = instance;

	if (!write)
		return mem_begin(instance, org, write, txn);
	if (!*org_cache) {
		struct morg *o;
		int rc = org_lookup(m, org, 1, &o);

		if (rc)
			return rc;
		*org_cache = o;
	}
	return begin_write_on(m, *org_cache, txn);
}

int inv__memory_is(const inv_backend_ops *ops)
{
	return ops == &memory_ops;
}

static void journal_compact(struct morg *o)
{
	if (o->jhead == 0)
		return;
	memmove(o->journal, o->journal + o->jhead,
	        (o->jcount - o->jhead) * sizeof(*o->journal));
	o->jcount -= o->jhead;
	o->jhead = 0;
}

static int mem_commit(void *txn)
{
	struct mtxn *tx = txn;

	if (tx->write && tx->nfree_at_commit) {
		/* Trimmed entries and replaced items were kept for rollback;
		 * free them now. */
		for (size_t i = 0; i < tx->nlog; i++) {
			struct undo *u = &tx->log[i];

			if (u->kind == U_JOURNAL_TRIM) {
				journal_compact(u->org);
				jchunk_release(u->org);
			} else if (u->kind == U_IDEM_SET) {
				free(u->u.idem);
			} else if (u->kind == U_SYNC_SET) {
				free(u->u.sync);
			}
		}
	}
	txn_end(tx);
	return 0;
}

static void mem_rollback(void *txn)
{
	struct mtxn *tx = txn;

	if (tx->write) {
		while (tx->nlog > 0)
			undo_one(&tx->log[--tx->nlog]);
	}
	txn_end(tx);
}

/* ----------------------------------------------------- organizations */

static int mem_org_get(void *txn, const inv_uuid *org, inv_org_record *out)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o || !o->has_rec)
		return jrc ? jrc : INV_ENOTFOUND;
	*out = o->rec;
	return 0;
}

static int mem_org_put(void *txn, const inv_org_record *rec)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int rc = org_for_write(tx, &rec->org, &o);

	if (rc < 0)
		return rc;
	struct undo *u = undo_push(tx, U_ORG_REC, o);

	u->u.org_rec = o->rec;
	u->flag = o->has_rec;
	o->rec = *rec;
	o->has_rec = 1;
	return 0;
}

/* ---------------------------------------------------------- locations */

static int mem_location_scan(void *txn, const inv_uuid *org,
                             inv_location_record_fn fn, void *payload)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o)
		return jrc;
	for (size_t i = 0; i < o->nlocs; i++) {
		int rc = fn(&o->locs[i], payload);

		if (rc)
			return rc;
	}
	return 0;
}

static int mem_location_put(void *txn, const inv_uuid *org, const inv_location_record *rec)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int rc = org_for_write(tx, org, &o);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < o->nlocs; i++) {
		if (memcmp(&o->locs[i].uuid, &rec->uuid, sizeof(rec->uuid)) == 0) {
			struct undo *u = undo_push(tx, U_LOC_SET, o);

			u->u.loc.index = i;
			u->u.loc.rec = o->locs[i];
			o->locs[i] = *rec;
			return 0;
		}
	}
	if (o->nlocs == o->caplocs) {
		size_t ncap = o->caplocs ? o->caplocs * 2 : 4;
		inv_location_record *nl = h_realloc(o->hook, o->locs, ncap * sizeof(*nl));

		if (!nl)
			return oom("memory backend: out of memory adding a location");
		o->locs = nl;
		o->caplocs = ncap;
	}
	undo_push(tx, U_LOC_ADD, o);
	o->locs[o->nlocs++] = *rec;
	return 0;
}

/* ----------------------------------------------------------- tracking */

static int mem_tracking_get(void *txn, const inv_uuid *org, const inv_uuid *product,
                            int32_t *tracked)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o)
		return jrc ? jrc : INV_ENOTFOUND;
	size_t i = ftab_find(&o->tracking, product, ftab_hash(&o->tracking, product));

	if (i == SIZE_MAX)
		return INV_ENOTFOUND;
	*tracked = ((struct tracking_entry *)ftab_at(&o->tracking, i))->tracked;
	return 0;
}

static int mem_tracking_put(void *txn, const inv_uuid *org, const inv_uuid *product,
                            int32_t tracked)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int rc = org_for_write(tx, org, &o);

	if (rc < 0)
		return rc;
	uint32_t h = ftab_hash(&o->tracking, product);
	size_t i = ftab_find(&o->tracking, product, h);

	if (i != SIZE_MAX) {
		struct tracking_entry *e = ftab_at(&o->tracking, i);
		struct undo *u = undo_push(tx, U_TRACK_SET, o);

		u->u.track = *e;
		e->tracked = tracked;
		return 0;
	}
	if (ftab_reserve(o->hook, &o->tracking) < 0)
		return oom("memory backend: out of memory growing the tracking table");
	struct tracking_entry e = { *product, tracked, 0 };
	struct undo *u = undo_push(tx, U_TRACK_NEW, o);

	u->u.track = e;
	ftab_insert(&o->tracking, &e, h);
	return 0;
}

static int mem_tracking_scan(void *txn, const inv_uuid *org,
                             inv_tracking_record_fn fn, void *payload)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o)
		return jrc;
	for (size_t i = 0; i < o->tracking.cap; i++) {
		if (!o->tracking.hashes[i])
			continue;
		const struct tracking_entry *e = ftab_at(&o->tracking, i);
		int rc = fn(&e->product, e->tracked, payload);

		if (rc)
			return rc;
	}
	return 0;
}

/* ----------------------------------------------------------- variants */

/* Index of a location among the variant records' locations, or UINT32_MAX. */
static uint32_t vloc_find(const struct morg *o, const inv_uuid *location)
{
	for (uint32_t i = 0; i < o->nvlocs; i++)
		if (memcmp(&o->vlocs[i], location, sizeof(*location)) == 0)
			return i;
	return UINT32_MAX;
}

/* Interned location UUIDs are never removed, not even by rollback: an
 * unused one costs 16 bytes and no record refers to it. */
static int vloc_intern(struct morg *o, const inv_uuid *location, uint32_t *out)
{
	uint32_t i = vloc_find(o, location);

	if (i == UINT32_MAX) {
		if (o->nvlocs == o->capvlocs) {
			uint32_t ncap = o->capvlocs ? o->capvlocs * 2 : 4;
			inv_uuid *nv = h_realloc(o->hook, o->vlocs, ncap * sizeof(*nv));

			if (!nv)
				return oom("memory backend: out of memory adding a location");
			o->vlocs = nv;
			o->capvlocs = ncap;
		}
		i = o->nvlocs++;
		o->vlocs[i] = *location;
	}
	*out = i;
	return 0;
}

static void vrec_export(const struct morg *o, const struct vrec *r, inv_variant_record *out)
{
	out->location = o->vlocs[r->loc];
	out->variant = r->variant;
	out->product = r->product;
	out->balance = r->balance;
	out->updated = r->updated;
}

static int mem_variant_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                           const inv_uuid *variant, inv_variant_record *out)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o)
		return jrc ? jrc : INV_ENOTFOUND;
	uint32_t loc = vloc_find(o, location);

	if (loc == UINT32_MAX)
		return INV_ENOTFOUND;
	size_t i = vtab_find(&o->variants, loc, variant, vkey_hash(loc, variant));

	if (i == SIZE_MAX)
		return INV_ENOTFOUND;
	vrec_export(o, &o->variants.recs[o->variants.slots[i].index], out);
	return 0;
}

/* The core never changes a variant's product, but the contract allows it;
 * the product index must follow. */
static int variant_move(struct mtxn *tx, struct morg *o, uint32_t index,
                        const inv_variant_record *rec)
{
	struct vtab *t = &o->variants;
	struct vrec *r = &t->recs[index];
	struct undo *u;

	if (ptab_reserve(o->hook, t) < 0)
		return oom("memory backend: out of memory growing the product index");
	u = undo_push(tx, U_VAR_MOVE, o);
	u->u.var.index = index;
	u->u.var.rec = *r;
	u->u.var.pred = ptab_unlink(t, index);
	r->product = rec->product;
	r->balance = rec->balance;
	r->updated = rec->updated;
	ptab_push(t, index);
	return 0;
}

/* Overwrite record `index` (r) with rec, of the same key and product,
 * logging in `u` only what changes. */
static inline void variant_set(struct undo *u, struct morg *o, uint32_t index, struct vrec *r,
                               const inv_variant_record *rec)
{
	u->kind = U_VAR_SET;
	u->org = o;
	u->flag = 0;
	u->u.var_set.index = index;
	u->u.var_set.balance = r->balance;
	u->u.var_set.updated = r->updated;
	r->balance = rec->balance;
	r->updated = rec->updated;
}

/* Overwrite record `index`, whose key is rec's; the caller has reserved
 * the undo entry. */
static int variant_update(struct mtxn *tx, struct morg *o, uint32_t index,
                          const inv_variant_record *rec)
{
	struct vrec *r = &o->variants.recs[index];

	if (!uuid_same(&r->product, &rec->product))
		return variant_move(tx, o, index, rec);
	variant_set(&tx->log[tx->nlog++], o, index, r, rec);
	return 0;
}

/* Put `rec`, whose location is vlocs[loc] and key hash `h`; *index is set
 * to its record's.  The caller has reserved the undo entry. */
static int variant_put_at(struct mtxn *tx, struct morg *o, uint32_t loc, uint32_t h,
                          const inv_variant_record *rec, uint32_t *index)
{
	struct vtab *t = &o->variants;
	size_t i = vtab_find(t, loc, &rec->variant, h);

	if (i != SIZE_MAX) {
		*index = t->slots[i].index;
		return variant_update(tx, o, *index, rec);
	}
	if (vtab_reserve(o->hook, t) < 0)
		return oom("memory backend: out of memory growing the variant table");
	struct vrec nr = {
		.variant = rec->variant,
		.product = rec->product,
		.balance = rec->balance,
		.updated = rec->updated,
		.loc = loc,
		.next = VNONE,
	};

	undo_push(tx, U_VAR_NEW, o);
	*index = (uint32_t)t->count;
	vtab_insert(t, &nr, h);
	return 0;
}

static int mem_variant_put(void *txn, const inv_uuid *org, const inv_variant_record *rec)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int rc = org_for_write(tx, org, &o);

	if (rc < 0)
		return rc;
	uint32_t loc = 0, index;

	rc = vloc_intern(o, &rec->location, &loc);
	if (rc < 0)
		return rc;
	return variant_put_at(tx, o, loc, vkey_hash(loc, &rec->variant), rec, &index);
}

static int mem_variant_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                            const inv_uuid *product, inv_variant_record_fn fn, void *payload)
{
	struct mtxn *tx = txn;
	struct morg *o;
	const struct vtab *t;
	uint32_t loc = VNONE;
	inv_variant_record out;
	int rc = org_for_read(tx, org, &o);

	if (rc || !o)
		return rc;
	t = &o->variants;
	if (location) {
		loc = vloc_find(o, location);
		if (loc == VNONE)
			return 0;
	}
	if (product) {
		size_t i = ptab_find(t, product);

		for (uint32_t r = i == SIZE_MAX ? VNONE : t->pslots[i] - 1; r != VNONE;
		     r = t->recs[r].next) {
			if (location && t->recs[r].loc != loc)
				continue;
			vrec_export(o, &t->recs[r], &out);
			rc = fn(&out, payload);
			if (rc)
				return rc;
		}
		return 0;
	}
	for (size_t i = 0; i < t->count; i++) {
		if (location && t->recs[i].loc != loc)
			continue;
		vrec_export(o, &t->recs[i], &out);
		rc = fn(&out, payload);
		if (rc)
			return rc;
	}
	return 0;
}

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* Keys per round of get_many: enough misses in flight to hide memory
 * latency, few enough that the round's slots stay in cache. */
#define GET_MANY_ROUND 32

static int mem_variant_get_many(void *txn, const inv_uuid *org, size_t count,
                                const inv_variant_key *keys, inv_variant_record *out,
                                int32_t *found)
{
	struct mtxn *tx = txn;
	struct morg *o;
	const inv_uuid *last_location = NULL;
	uint32_t cur_loc = VNONE;
	uint32_t loc[GET_MANY_ROUND], h[GET_MANY_ROUND];

	if (count == 0)
		return 0;
	memset(found, 0, count * sizeof(*found));
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o || !o->variants.count)
		return jrc;
	const struct vtab *t = &o->variants;
	size_t mask = t->cap - 1;

	/*
	 * In a big table nearly every key costs two cache misses (slot,
	 * record).  Each round issues them for all its keys before looking
	 * any up, so they overlap instead of queueing.
	 */
	for (size_t base = 0; base < count; base += GET_MANY_ROUND) {
		size_t n = count - base < GET_MANY_ROUND ? count - base : GET_MANY_ROUND;
		const inv_variant_key *k = keys + base;

		for (size_t j = 0; j < n; j++) {
			/* Batches name few locations: look each up once per run. */
			if (!last_location || memcmp(last_location, &k[j].location,
			                             sizeof(inv_uuid)) != 0) {
				last_location = &k[j].location;
				cur_loc = vloc_find(o, last_location);
			}
			loc[j] = cur_loc;
			if (cur_loc == VNONE)
				continue;
			h[j] = vkey_hash(cur_loc, &k[j].variant);
			PREFETCH(&t->slots[h[j] & mask]);
		}
		for (size_t j = 0; j < n; j++) {
			if (loc[j] == VNONE)
				continue;
			const struct vslot *slot = &t->slots[h[j] & mask];

			if (slot->hash == h[j])
				PREFETCH(&t->recs[slot->index]);
		}
		for (size_t j = 0; j < n; j++) {
			if (loc[j] == VNONE)
				continue;
			size_t i = vtab_find(t, loc[j], &k[j].variant, h[j]);

			if (i == SIZE_MAX)
				continue;
			vrec_export(o, &t->recs[t->slots[i].index], &out[base + j]);
			found[base + j] = 1;
		}
	}
	return 0;
}

static int mem_variant_put_many(void *txn, const inv_uuid *org, size_t count,
                                const inv_variant_record *recs)
{
	struct mtxn *tx = txn;
	struct morg *o;

	if (count == 0)
		return 0;
	int rc = org_for_write(tx, org, &o);

	/* One undo reservation for the batch keeps the loop allocation-free
	 * but for table growth. */
	if (rc == 0 && count > 1)
		rc = undo_reserve_n(tx, count);
	if (rc)
		return rc;

	/* As in get_many: the core reads cached balances, so these puts are
	 * often the first touch of the slots and records; issue a round's
	 * cache misses before any put waits on one. */
	const inv_uuid *last_location = NULL;
	uint32_t cur_loc = 0, loc[GET_MANY_ROUND], h[GET_MANY_ROUND];

	for (size_t base = 0; base < count; base += GET_MANY_ROUND) {
		size_t n = count - base < GET_MANY_ROUND ? count - base : GET_MANY_ROUND;
		const inv_variant_record *r = recs + base;
		const struct vtab *t = &o->variants;

		for (size_t j = 0; j < n; j++) {
			if (!last_location || memcmp(last_location, &r[j].location,
			                             sizeof(inv_uuid)) != 0) {
				rc = vloc_intern(o, &r[j].location, &cur_loc);
				if (rc < 0)
					return rc;
				last_location = &r[j].location;
			}
			loc[j] = cur_loc;
			h[j] = vkey_hash(cur_loc, &r[j].variant);
			if (t->cap)
				PREFETCH(&t->slots[h[j] & (t->cap - 1)]);
		}
		for (size_t j = 0; t->cap && j < n; j++) {
			const struct vslot *slot = &t->slots[h[j] & (t->cap - 1)];

			if (slot->hash == h[j])
				PREFETCH(&t->recs[slot->index]);
		}
		/* A put may grow the table: the loop above only hinted. */
		for (size_t j = 0; j < n; j++) {
			uint32_t index;

			rc = variant_put_at(tx, o, loc[j], h[j], &r[j], &index);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* 1 when `hint` (an index + 1; 0: none) still names the record of (loc,
 * variant) among recs[0, count).  Records never move but for the pop that
 * undoes an insert, so checking the key makes any hint safe. */
static inline int vrec_hinted(const struct vrec *recs, size_t count, uint32_t loc,
                              const inv_uuid *variant, uint32_t hint)
{
	uint32_t index = hint - 1;

	return index < count && recs[index].loc == loc && uuid_same(&recs[index].variant, variant);
}

int inv__memory_variant_put_hinted(void *txn, const inv_uuid *org, const inv_uuid *location,
                                   size_t count, const inv_variant_record *recs,
                                   uint32_t *const *hints)
{
	struct mtxn *tx = txn;
	struct morg *o;
	uint32_t loc = 0;
	int rc = org_for_write(tx, org, &o);

	if (rc == 0 && count > 1)
		rc = undo_reserve_n(tx, count);
	if (rc == 0)
		rc = vloc_intern(o, location, &loc);
	if (rc)
		return rc;
	/* Locals: the stores below may alias the tables and the log; `at`
	 * because loc, its address taken, would be reloaded from memory. */
	struct vrec *vr = o->variants.recs;
	size_t nrecs = o->variants.count;
	struct undo *u = tx->log + tx->nlog;
	const uint32_t at = loc;

	for (size_t j = 0; j < count; j++) {
		const inv_variant_record *r = &recs[j];
		const uint32_t hint = *hints[j];
		uint32_t index = hint - 1;

		if (vrec_hinted(vr, nrecs, at, &r->variant, hint)) {
			if (uuid_same(&vr[index].product, &r->product)) {
				/* The core's case; its undo entry is reserved above. */
				variant_set(u++, o, index, &vr[index], r);
				continue;
			}
			tx->nlog = (size_t)(u - tx->log);
			rc = variant_move(tx, o, index, r);
		} else {
			uint32_t put;

			tx->nlog = (size_t)(u - tx->log);
			rc = variant_put_at(tx, o, at, vkey_hash(at, &r->variant), r, &put);
			index = put;
		}
		if (rc)
			return rc;
		*hints[j] = index + 1;
		/* Either may have grown the tables. */
		vr = o->variants.recs;
		nrecs = o->variants.count;
		u = tx->log + tx->nlog;
	}
	tx->nlog = (size_t)(u - tx->log);
	return 0;
}

/* ---------------------------------------------------------- low stock */

static int mem_low_stock_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                             const inv_uuid *product, const inv_uuid *variant,
                             inv_low_stock_record *out)
{
	struct mtxn *tx = txn;
	struct morg *o;
	unsigned char key[LOW_KEY_SIZE];
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o)
		return jrc ? jrc : INV_ENOTFOUND;
	/* The core asks for every changed variant of a small batch, most
	 * often of an organization that sets no levels: no key to hash then. */
	if (!o->low.count)
		return INV_ENOTFOUND;
	memcpy(key, location, sizeof(inv_uuid));
	memcpy(key + sizeof(inv_uuid), product, sizeof(inv_uuid));
	memcpy(key + 2 * sizeof(inv_uuid), variant, sizeof(inv_uuid));
	size_t i = ftab_find(&o->low, key, ftab_hash(&o->low, key));

	if (i == SIZE_MAX)
		return INV_ENOTFOUND;
	memcpy(out, ftab_at(&o->low, i), sizeof(*out));
	return 0;
}

static int mem_low_stock_put(void *txn, const inv_uuid *org, const inv_low_stock_record *rec)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int rc = org_for_write(tx, org, &o);

	if (rc < 0)
		return rc;
	uint32_t h = ftab_hash(&o->low, rec);
	size_t i = ftab_find(&o->low, rec, h);

	if (i != SIZE_MAX) {
		struct undo *u = undo_push(tx, U_LOW_SET, o);

		memcpy(&u->u.low, ftab_at(&o->low, i), sizeof(u->u.low));
		memcpy(ftab_at(&o->low, i), rec, sizeof(*rec));
		return 0;
	}
	if (ftab_reserve(o->hook, &o->low) < 0)
		return oom("memory backend: out of memory growing the low-stock table");
	struct undo *u = undo_push(tx, U_LOW_NEW, o);

	u->u.low = *rec;
	ftab_insert(&o->low, rec, h);
	return 0;
}

static int mem_low_stock_delete(void *txn, const inv_uuid *org, const inv_uuid *location,
                                const inv_uuid *product, const inv_uuid *variant)
{
	struct mtxn *tx = txn;
	struct morg *o;
	unsigned char key[LOW_KEY_SIZE];

	if (!tx->write)
		return inv_backend_error(INV_EBACKEND,
		                         "memory backend: write in a read transaction");
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o)
		return jrc;
	memcpy(key, location, sizeof(inv_uuid));
	memcpy(key + sizeof(inv_uuid), product, sizeof(inv_uuid));
	memcpy(key + 2 * sizeof(inv_uuid), variant, sizeof(inv_uuid));
	size_t i = ftab_find(&o->low, key, ftab_hash(&o->low, key));

	if (i == SIZE_MAX)
		return 0;
	int rc = undo_reserve(tx);

	if (rc < 0)
		return rc;
	struct undo *u = undo_push(tx, U_LOW_DEL, o);

	memcpy(&u->u.low, ftab_at(&o->low, i), sizeof(u->u.low));
	ftab_remove_at(&o->low, i);
	return 0;
}

static int mem_low_stock_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                              const inv_uuid *product, inv_low_stock_record_fn fn,
                              void *payload)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o)
		return jrc;
	for (size_t i = 0; i < o->low.cap; i++) {
		if (!o->low.hashes[i])
			continue;
		const inv_low_stock_record *r = ftab_at(&o->low, i);

		if (location && memcmp(&r->location, location, sizeof(*location)) != 0)
			continue;
		if (product && memcmp(&r->product, product, sizeof(*product)) != 0)
			continue;
		int rc = fn(r, payload);

		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------ journal */

/* The index of `location` in an entry's table of `*nlocs` locations, added
 * when new; -1 when the table is full. */
static inline int entry_location(inv_uuid *locs, uint32_t *nlocs, const inv_uuid *location)
{
	for (uint32_t i = 0; i < *nlocs; i++)
		if (uuid_same(&locs[i], location))
			return (int)i;
	if (*nlocs == INV__JREC_LOCATIONS_MAX)
		return -1;
	locs[*nlocs] = *location;
	return (int)(*nlocs)++;
}

/* Encode `n` records compactly, their locations into the table `locs`;
 * 1 when one does not fit the form. */
static int jrec_encode(inv_uuid *locs, uint32_t *nlocs, jrec *out,
                       const inv_journal_record *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const inv_journal_record *r = &in[i];
		jrec *c = &out[i];
		int from, to, loc;

		if (r->kind < 0 || r->kind > 255 || r->low < 0 || r->low > 255)
			return 1;
		from = entry_location(locs, nlocs, &r->from);
		to = entry_location(locs, nlocs, &r->to);
		loc = entry_location(locs, nlocs, &r->location);
		if (from < 0 || to < 0 || loc < 0)
			return 1;
		c->product = r->product;
		c->variant = r->variant;
		c->quantity = r->quantity;
		c->before = r->before;
		c->after = r->after;
		c->from = (uint16_t)from;
		c->to = (uint16_t)to;
		c->location = (uint16_t)loc;
		c->kind = (uint8_t)r->kind;
		c->low = (uint8_t)r->low;
	}
	return 0;
}

static int jentry_fits(size_t n, size_t key_len)
{
	return n <= (SIZE_MAX / 2 - sizeof(struct jentry) - key_len) / sizeof(inv_journal_record) -
	            INV__JREC_LOCATIONS_MAX;
}

/* Room for an entry of `n` records in the larger form, or the compact one
 * and its locations, and its key; what is not used stays free. */
static size_t jentry_size(size_t n, size_t key_len)
{
	return (sizeof(struct jentry) + n * sizeof(inv_journal_record) +
	        INV__JREC_LOCATIONS_MAX * sizeof(inv_uuid) + key_len + 15) & ~(size_t)15;
}

/* The records of the next entry start here in the chunk the next
 * jentry_start() of at most that size picks: it keeps the last chunk while
 * that has room. */
int inv__memory_journal_room(void *txn, const inv_uuid *org, size_t max_records,
                             size_t key_len, inv__jrec **out)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int rc;

	/* Writes nothing yet: no undo entry. */
	if (!tx->write)
		return inv_backend_error(INV_EBACKEND,
		                         "memory backend: write in a read transaction");
	rc = txn_org(tx, org, 1, &o);
	if (rc < 0)
		return rc;
	if (!jentry_fits(max_records, key_len))
		return oom("memory backend: journal entry too large");
	struct jchunk *c = jchunk_room(o, jentry_size(max_records, key_len));

	if (!c)
		return oom("memory backend: out of memory appending to the journal");
	*out = (inv__jrec *)(c->data + c->used + sizeof(struct jentry));
	return 0;
}

/* Start an entry for `rec` at the end of the journal, with room for its
 * records in either form and its key: *p is where the records go. */
static int jentry_start(struct mtxn *tx, const inv_uuid *org,
                        const inv_journal_entry_record *rec, struct morg **out,
                        struct jentry **entry, unsigned char **p)
{
	struct morg *o;
	int rc = org_for_write(tx, org, &o);

	if (rc < 0)
		return rc;
	if (o->jcount > o->jhead && o->journal[o->jcount - 1]->rec.sequence >= rec->sequence)
		return inv_backend_error(INV_EBACKEND,
		                         "memory backend: journal sequence not increasing");
	size_t key_len = rec->idempotency_key ? strlen(rec->idempotency_key) + 1 : 0;

	if (!jentry_fits(rec->record_count, key_len))
		return oom("memory backend: journal entry too large");
	if (o->jcount == o->jcap) {
		size_t ncap = o->jcap ? o->jcap * 2 : 64;
		struct jentry **nj = h_realloc(o->hook, o->journal, ncap * sizeof(*nj));

		if (!nj)
			return oom("memory backend: out of memory growing the journal");
		o->journal = nj;
		o->jcap = ncap;
	}
	struct jchunk *c = jchunk_room(o, jentry_size(rec->record_count, key_len));

	if (!c)
		return oom("memory backend: out of memory appending to the journal");
	struct jentry *e = (struct jentry *)(c->data + c->used);

	e->rec = *rec;
	e->rec.records = NULL;
	e->chunk = c;
	e->offset = c->used;
	e->compact = 0;
	e->locs = NULL;
	*out = o;
	*entry = e;
	*p = (unsigned char *)(e + 1);
	return 0;
}

/* Keep the records of `e` in the vtable's form, written at *p. */
static void jentry_wide(struct jentry *e, unsigned char **p)
{
	e->rec.records = (inv_journal_record *)*p;
	*p += e->rec.record_count * sizeof(inv_journal_record);
}

/* Keep the records of `e` in the compact form, written at *p, and their
 * table of locations after them. */
static void jentry_compact(struct jentry *e, unsigned char **p, const inv_uuid *locs,
                           size_t nlocs)
{
	e->compact = 1;
	*p += e->rec.record_count * sizeof(jrec);
	memcpy(*p, locs, nlocs * sizeof(*locs));
	e->locs = (const inv_uuid *)*p;
	*p += nlocs * sizeof(*locs);
}

/* Finish the entry whose records end at `p`: its key, and the append. */
static void jentry_finish(struct mtxn *tx, struct morg *o, struct jentry *e,
                          unsigned char *p)
{
	const char *key = e->rec.idempotency_key;

	if (key) {
		size_t key_len = strlen(key) + 1;

		memcpy(p, key, key_len);
		e->rec.idempotency_key = (char *)p;
		p += key_len;
	}
	e->chunk->used += ((size_t)(p - (unsigned char *)e) + 15) & ~(size_t)15;
	undo_push(tx, U_JOURNAL_APPEND, o);
	o->journal[o->jcount++] = e;
}

static int mem_journal_append(void *txn, const inv_uuid *org,
                              const inv_journal_entry_record *rec)
{
	struct mtxn *tx = txn;
	struct morg *o;
	struct jentry *e;
	unsigned char *p;
	inv_uuid locs[INV__JREC_LOCATIONS_MAX];
	uint32_t nlocs = 0;
	size_t n = rec->record_count;
	int rc = jentry_start(tx, org, rec, &o, &e, &p);

	if (rc < 0)
		return rc;
	if (jrec_encode(locs, &nlocs, (jrec *)p, rec->records, n) == 0) {
		jentry_compact(e, &p, locs, nlocs);
	} else {
		memcpy(p, rec->records, n * sizeof(inv_journal_record));
		jentry_wide(e, &p);
	}
	jentry_finish(tx, o, e, p);
	return 0;
}

int inv__memory_journal_append_compact(void *txn, const inv_uuid *org,
                                       const inv_journal_entry_record *entry,
                                       const inv__jrec *recs, const inv_uuid *locations,
                                       size_t nlocations)
{
	struct mtxn *tx = txn;
	struct morg *o;
	struct jentry *e;
	unsigned char *p;

	if (nlocations > INV__JREC_LOCATIONS_MAX)
		return inv_backend_error(INV_EBACKEND, "memory backend: too many journal locations");
	int rc = jentry_start(tx, org, entry, &o, &e, &p);

	if (rc < 0)
		return rc;
	if (recs != (const inv__jrec *)p)
		memcpy(p, recs, entry->record_count * sizeof(*recs));
	jentry_compact(e, &p, locations, nlocations);
	jentry_finish(tx, o, e, p);
	return 0;
}

/* Index of the first live entry with sequence > after. */
static size_t journal_lower(const struct morg *o, int64_t after)
{
	size_t lo = o->jhead, hi = o->jcount;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (o->journal[mid]->rec.sequence <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int mem_journal_read(void *txn, const inv_uuid *org, int64_t after, size_t limit,
                            inv_journal_entry_record_fn fn, void *payload)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o)
		return jrc;
	size_t i = journal_lower(o, after);
	size_t end = o->jcount;

	if (limit && end - i > limit)
		end = i + limit;
	for (; i < end; i++) {
		const struct jentry *e = o->journal[i];
		inv_journal_entry_record lent = e->rec;
		size_t n = e->rec.record_count;
		int rc;

		if (e->compact && n) {
			if (n > tx->jbufcap) {
				inv_journal_record *nb = h_realloc(&tx->inst->hook, tx->jbuf,
				                                   n * sizeof(*nb));

				if (!nb)
					return oom("memory backend: out of memory reading the journal");
				tx->jbuf = nb;
				tx->jbufcap = n;
			}
			inv__jrec_decode(tx->jbuf, (const jrec *)(e + 1), n, e->locs);
			lent.records = tx->jbuf;
		}
		rc = fn(&lent, payload);
		if (rc)
			return rc;
	}
	return 0;
}

static int mem_journal_trim(void *txn, const inv_uuid *org, int64_t up_to)
{
	struct mtxn *tx = txn;
	struct morg *o;

	if (!tx->write)
		return inv_backend_error(INV_EBACKEND,
		                         "memory backend: write in a read transaction");
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o)
		return jrc;
	size_t new_head = journal_lower(o, up_to);

	if (new_head == o->jhead)
		return 0;
	int rc = undo_reserve(tx);

	if (rc < 0)
		return rc;
	/* The entries are freed at commit, so that rollback can restore them. */
	struct undo *u = undo_push(tx, U_JOURNAL_TRIM, o);

	tx->nfree_at_commit++;

	u->u.trim.old_head = o->jhead;
	u->u.trim.new_head = new_head;
	o->jhead = new_head;
	return 0;
}

/* -------------------------------------------------------- idempotency */

static int mem_idempotency_get(void *txn, const inv_uuid *org, const char *key,
                               inv_idempotency_record_fn fn, void *payload)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o)
		return jrc ? jrc : INV_ENOTFOUND;
	size_t i = ftab_find(&o->idem, key, ftab_hash(&o->idem, key));

	if (i == SIZE_MAX)
		return INV_ENOTFOUND;
	struct idem_item *item;

	memcpy(&item, ftab_at(&o->idem, i), sizeof(item));
	inv_idempotency_record rec = {
		.key = item->data,
		.sequence = item->sequence,
		.result = item->data + item->key_len + 1,
		.result_len = item->result_len,
	};

	memcpy(rec.fingerprint, item->fingerprint, sizeof(rec.fingerprint));
	return fn(&rec, payload);
}

static int mem_idempotency_put(void *txn, const inv_uuid *org,
                               const inv_idempotency_record *rec)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int rc = org_for_write(tx, org, &o);

	if (rc < 0)
		return rc;
	if (!rec->key || (!rec->result && rec->result_len))
		return inv_backend_error(INV_EBACKEND, "memory backend: idempotency record without key");
	size_t key_len = strlen(rec->key);

	if (rec->result_len > SIZE_MAX - sizeof(struct idem_item) - key_len - 1)
		return oom("memory backend: idempotency result too large");
	uint32_t h = ftab_hash(&o->idem, rec->key);
	size_t i = ftab_find(&o->idem, rec->key, h);

	if (i == SIZE_MAX && ftab_reserve(o->hook, &o->idem) < 0)
		return oom("memory backend: out of memory growing the idempotency table");
	struct idem_item *item = h_malloc(o->hook, sizeof(*item) + key_len + 1 + rec->result_len);

	if (!item)
		return oom("memory backend: out of memory storing an idempotency key");
	memcpy(item->fingerprint, rec->fingerprint, sizeof(item->fingerprint));
	item->sequence = rec->sequence;
	item->result_len = rec->result_len;
	item->key_len = key_len;
	memcpy(item->data, rec->key, key_len + 1);
	if (rec->result_len)
		memcpy(item->data + key_len + 1, rec->result, rec->result_len);

	if (i != SIZE_MAX) {
		struct undo *u = undo_push(tx, U_IDEM_SET, o);

		tx->nfree_at_commit++;

		memcpy(&u->u.idem, ftab_at(&o->idem, i), sizeof(u->u.idem));
		memcpy(ftab_at(&o->idem, i), &item, sizeof(item));
	} else {
		struct undo *u = undo_push(tx, U_IDEM_NEW, o);

		u->u.idem = item;
		ftab_insert(&o->idem, &item, h);
	}
	return 0;
}

/* --------------------------------------------------------- sync state */

static int mem_sync_state_get(void *txn, const inv_uuid *org,
                              inv_sync_state_fn fn, void *payload)
{
	struct mtxn *tx = txn;
	struct morg *o;
	int jrc = org_for_read(tx, org, &o);

	if (jrc || !o || !o->sync)
		return jrc ? jrc : INV_ENOTFOUND;
	return fn(o->sync->data, o->sync->len, payload);
}

static int mem_sync_state_put(void *txn, const inv_uuid *org, const void *data, size_t len)
{
	struct mtxn *tx = txn;
	struct morg *o;

	if (len > INV_SYNC_STATE_MAX)
		return inv_backend_error(INV_ETOOBIG, "memory backend: sync state too large");
	if (!data && len)
		return inv_backend_error(INV_EBACKEND, "memory backend: sync state data is NULL");
	int rc = org_for_write(tx, org, &o);

	if (rc < 0)
		return rc;
	struct sync_blob *b = h_malloc(o->hook, sizeof(*b) + len);

	if (!b)
		return oom("memory backend: out of memory storing the sync state");
	b->len = len;
	if (len)
		memcpy(b->data, data, len);
	/* The replaced record is freed at commit, so that rollback can
	 * restore it. */
	struct undo *u = undo_push(tx, U_SYNC_SET, o);

	tx->nfree_at_commit++;

	u->u.sync = o->sync;
	o->sync = b;
	return 0;
}

/* ---------------------------------------------------------- lifecycle */

/* glibc's default rwlock lets a stream of readers starve a writer, that is
 * a batch behind balance reads; prefer the writer where we can. */
static int rwlock_init_writer_first(pthread_rwlock_t *lock)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	pthread_rwlockattr_t attr;
	int rc = pthread_rwlockattr_init(&attr);

	if (rc == 0) {
		pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		rc = pthread_rwlock_init(lock, &attr);
		pthread_rwlockattr_destroy(&attr);
	}
	return rc;
#else
	return pthread_rwlock_init(lock, NULL);
#endif
}

static int mem_control(void *instance, int op, void *arg)
{
	struct minst *m = instance;

	if (op == INV_MEMORY_CONTROL_FAIL_ALLOC) {
		if (!arg)
			return inv_backend_error(INV_EINVAL, "memory backend: control arg is NULL");
		atomic_store(&m->hook.fail_in, *(const uint64_t *)arg);
		return 0;
	}
	return inv_backend_error(INV_ENOTFOUND, "memory backend: unknown control op");
}

static void mem_close(void *instance)
{
	struct minst *m = instance;

	if (!m)
		return;
	for (size_t i = 0; i < m->orgs.cap; i++)
		if (m->orgs.hashes[i])
			morg_free(((struct org_entry *)ftab_at(&m->orgs, i))->org);
	ftab_free(&m->orgs);
	pthread_rwlock_destroy(&m->maplock);
	free(m);
}

static const inv_backend_ops memory_ops = {
	.version = INV_BACKEND_VERSION,
	.name = BACKEND_NAME,
	.close = mem_close,
	.begin = mem_begin,
	.commit = mem_commit,
	.rollback = mem_rollback,
	.org_get = mem_org_get,
	.org_put = mem_org_put,
	.location_scan = mem_location_scan,
	.location_put = mem_location_put,
	.tracking_get = mem_tracking_get,
	.tracking_put = mem_tracking_put,
	.tracking_scan = mem_tracking_scan,
	.variant_get = mem_variant_get,
	.variant_put = mem_variant_put,
	.variant_scan = mem_variant_scan,
	.low_stock_get = mem_low_stock_get,
	.low_stock_put = mem_low_stock_put,
	.low_stock_delete = mem_low_stock_delete,
	.low_stock_scan = mem_low_stock_scan,
	.journal_append = mem_journal_append,
	.journal_read = mem_journal_read,
	.journal_trim = mem_journal_trim,
	.idempotency_get = mem_idempotency_get,
	.idempotency_put = mem_idempotency_put,
	.variant_get_many = mem_variant_get_many,
	.variant_put_many = mem_variant_put_many,
	.control = mem_control,
	.sync_state_get = mem_sync_state_get,
	.sync_state_put = mem_sync_state_put,
};

const inv_backend_ops *inv_memory_backend_ops(void)
{
	return &memory_ops;
}

int inv_memory_backend_new(void **instance)
{
	struct minst *m;

	if (!instance)
		return inv_backend_error(INV_EINVAL, "memory backend: instance is NULL");
	*instance = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return oom("memory backend: out of memory creating an instance");
	if (pthread_rwlock_init(&m->maplock, NULL) != 0) {
		free(m);
		return inv_backend_error(INV_ENOMEM, "memory backend: cannot create the lock");
	}
	ftab_init(&m->orgs, sizeof(struct org_entry), sizeof(inv_uuid));
	*instance = m;
	return 0;
}
