/*
 * core_int.h - the core's shared internals: store, organization, handles,
 * the batch engine's entry point, journal entries and event dispatch.
 */
#ifndef ZINV_CORE_INT_H
#define ZINV_CORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <zinv.h>
#include <zinv/backend.h>

#include "error_int.h"
#include "memory_int.h"

/* ------------------------------------------------------------ UUID maps */

/* An intrusive chained hash map keyed by UUID.  Nodes embed inv__map_node as
 * their first member and stay where they are, so pointers to them are stable
 * handles. */
typedef struct inv__map_node {
	struct inv__map_node *next;
	inv_uuid key;
} inv__map_node;

typedef struct inv__map {
	inv__map_node **buckets;
	size_t mask;   /* bucket count - 1 (a power of two), 0 when empty */
	size_t count;
} inv__map;

inv__map_node *inv__map_find(const inv__map *map, const inv_uuid *key);
/* Insert a node whose key is set; INV_ENOMEM when the table cannot grow. */
int inv__map_insert(inv__map *map, inv__map_node *node);
void inv__map_remove(inv__map *map, inv__map_node *node);
/* Free the bucket array; call `free_node` on each node first when not NULL. */
void inv__map_dispose(inv__map *map, void (*free_node)(inv__map_node *));

static inline int inv__uuid_eq(const inv_uuid *a, const inv_uuid *b)
{
	return memcmp(a->bytes, b->bytes, 16) == 0;
}

/* qsort() order of UUIDs: by bytes. */
static inline int inv__uuid_order(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(inv_uuid));
}

/* UUIDs are mostly random bytes already; time-based ones carry their
 * entropy in the first eight, so fold both halves and mix.  Shared by the
 * registry map and the handle index. */
static inline size_t inv__uuid_hash(const inv_uuid *u)
{
	uint64_t a, b;

	memcpy(&a, u->bytes, 8);
	memcpy(&b, u->bytes + 8, 8);
	a ^= b * UINT64_C(0x9e3779b97f4a7c15);
	a ^= a >> 32;
	a *= UINT64_C(0xd6e8feb86659fd93);
	a ^= a >> 32;
	return (size_t)a;
}

static inline int inv__uuid_is_nil(const inv_uuid *u)
{
	static const inv_uuid nil;
	return memcmp(u->bytes, nil.bytes, 16) == 0;
}

/* --------------------------------------------------------------- store */

typedef struct inv__subscriber {
	uint64_t id;
	uint32_t mask;
	inv_event_fn fn;
	void *payload;
} inv__subscriber;

struct inv_store {
	const inv_backend_ops *ops;
	void *instance;
	inv_store_options opts;

	pthread_mutex_t orgs_lock;  /* the registry below */
	inv__map orgs;              /* org UUID -> struct inv_org */

	pthread_mutex_t subs_lock;  /* the subscribers below */
	inv__subscriber *subs;
	size_t sub_count, sub_cap;
	_Atomic size_t sub_live;    /* sub_count, for inv__events_wanted() */
	uint64_t next_sub_id;

	/* The backend's commit_release() (ops version 3), or NULL. */
	int (*commit_release)(void *txn, void (*release)(void *arg), void *arg);
};

/* The store's clock and UUID source. Inline so that the organization layer
 * (org.c) uses the store's data without calling back into store.c: store.c
 * creates and frees organizations, org.c never calls store.c. */
static inline int64_t inv__store_now(const inv_store *store)
{
	return store->opts.clock(store->opts.clock_payload);
}

static inline void inv__store_new_uuid(const inv_store *store, inv_uuid *out)
{
	store->opts.uuid_generate(out, store->opts.uuid_payload);
}

/* 1 when the backend stores sync state (ops version 2 and later, where
 * sync_state_get and sync_state_put are set); a version-1 table has none. */
int inv__backend_has_sync_state(const inv_store *store);

/* --------------------------------------------------------- organization */

/* A product as the batch engine sees it: interned per organization so that
 * variant handles can point at it and a batch caches its tracking state
 * without hashing. */
typedef struct inv__product {
	inv__map_node node;         /* key: product UUID */
	/* scratch of the batch engine, guarded by the org's write lock */
	uint64_t gen;               /* batch that loaded `tracked` */
	int32_t tracked;            /* as of this point of the batch */
	int32_t tracking_dirty;
	uint64_t epoch;             /* cache epoch of `committed` */
	int32_t committed;          /* tracking state as stored */
} inv__product;

struct inv_location {
	struct inv_org *org;
	inv_uuid uuid;
	int32_t type;
	int32_t is_default;
};

/* Allocated from the organization's handle slabs (struct inv__handles),
 * never moved or freed before the organization closes.  One cache line:
 * the slabs are aligned to it, so that the check of a change's
 * organization, the cached balance and the slot are one miss. */
struct inv_variant {
	inv_uuid uuid;
	inv__product *product;
	struct inv_org *org;
	int64_t balance;            /* cached: its default-STORE balance */
	int64_t updated;            /* and update time */
	/* scratch of the batch engine, guarded by the org's write lock */
	uint32_t gen;               /* low 32 bits of the batch that assigned `slot` */
	uint32_t slot;              /* index into the batch's scratch slots */
	/* The low 31 bits of the cache epoch of balance and updated, shifted
	 * left by one, and in the low bit whether a default-STORE record
	 * exists (inv__variant_cache()).  0: nothing cached. */
	uint32_t cache;
	/* The built-in memory backend's hint for the default-STORE record
	 * (memory_int.h); 0 until the first put. */
	uint32_t backend_hint;
};

#define INV__HANDLE_ALIGN 64
_Static_assert(sizeof(struct inv_variant) == INV__HANDLE_ALIGN, "a handle is one cache line");

/* The `cache` word of a handle cached in `epoch`, `found` its flag. */
static inline uint32_t inv__variant_cache(uint64_t epoch, int found)
{
	return (uint32_t)epoch << 1 | (found != 0);
}

/*
 * The variant handles of an organization: slabs of INV__HANDLE_SLAB handles
 * (no allocation header per handle, pointers stay valid) and an
 * open-addressing index of handle numbers + 1 (0: empty) keyed by the
 * variant UUID, at most 3/4 full.
 */
#define INV__HANDLE_SLAB_SHIFT 12
#define INV__HANDLE_SLAB ((size_t)1 << INV__HANDLE_SLAB_SHIFT)

typedef struct inv__handles {
	struct inv_variant **slabs;
	size_t nslabs, slabcap;
	size_t count;
	uint32_t *index;
	size_t cap;                 /* power of two, or 0 */
} inv__handles;

/* The handle of `variant`, or NULL; the caller holds handles_lock. */
struct inv_variant *inv__handles_find(const inv__handles *h, const inv_uuid *variant);

/* Per-batch working memory, kept on the organization and reused so that a
 * batch allocates nothing per change.  Guarded by the org's write lock. */
typedef struct inv__slot {
	inv_variant *variant;
	inv_uuid product;           /* the variant's, copied: no pointer chase per change */
	int32_t tracked;            /* the product's state once tracking changes ran */
	int64_t before;             /* STORE balance before the batch */
	int64_t balance;            /* running STORE balance */
	int64_t updated;            /* as stored before the batch */
	int32_t found;              /* a record exists in the default STORE */
	int16_t touched;            /* a move had a STORE side */
	int16_t moved;              /* a move named the variant */
	int32_t mismatch;           /* the record names another product: */
	inv_uuid owner;             /* this one */
	int32_t has_level;          /* the low-stock level, when read by a scan */
	int64_t level;
} inv__slot;

typedef struct inv__scratch {
	inv__slot *slots;
	inv_variant_key *keys;      /* backend I/O: the variants not cached */
	inv_variant_record *recs;
	int32_t *found;
	uint32_t *miss;             /* slot of keys[i] */
	uint32_t **hints;           /* backend_hint of recs[i]'s handle */
	size_t slot_cap;
	inv__jrec *crecs;           /* journal records (compact form), but for the
	                             * memory backend (scratch_reserve()) */
	inv__jrec *jout;            /* where this batch's are: crecs, or lent */
	inv_journal_record *jrecs;  /* the same decoded, for the vtable and events */
	size_t jrec_cap;            /* of both */
	size_t *skipped;
	size_t skipped_cap;
	inv_change *changes;        /* sales and refunds build their moves here */
	size_t change_cap;
} inv__scratch;

enum { INV__LOC_STORE, INV__LOC_SOLD, INV__LOC_BIN, INV__LOC_SUPPLIER, INV__LOC_COUNT };

#define INV__COMMIT_CVS 8

struct inv_org {
	inv__map_node node;         /* key: org UUID, in the store's registry */
	inv_store *store;
	int refs;                   /* guarded by store->orgs_lock */
	/* The built-in memory backend is begun on the organization it looked
	 * up once (memory_int.h); other backends by UUID. */
	int memory_backend;
	void *backend_org;

	/* Serializes this organization's writes in the process.  Event
	 * callbacks run while it is held, or, for a batch committed through
	 * commit_release(), in ticket order after it; a write from inside a
	 * callback only tries it (INV_EBUSY when taken or while tickets are
	 * out), so callbacks never deadlock. */
	pthread_mutex_t write_lock;

	inv_location locations[INV__LOC_COUNT]; /* STORE, SOLD, BIN, SUPPLIER: [type - 1] */

	pthread_mutex_t handles_lock; /* the two maps below */
	inv__handles variants;      /* variant UUID -> inv_variant */
	inv__map products;          /* product UUID -> inv__product */
	/* The products, allocated INV__HANDLE_SLAB at a time so that they do
	 * not pin the allocator's pages between freed journal entries. */
	inv__product **product_slabs;
	size_t product_count, product_nslabs, product_slabcap;

	uint64_t gen;               /* batch counter; guarded by write_lock */
	inv__scratch scratch;       /* guarded by write_lock */

	/* The engine caches tracking states and default-STORE records in the
	 * product and variant handles.  Every write of either is journaled,
	 * so the cache is valid while the stored last_sequence equals
	 * cache_sequence (no other writer, another process included, has
	 * committed since); otherwise the epoch moves on and every cached
	 * value is stale.  Guarded by write_lock. */
	uint64_t cache_epoch;
	int64_t cache_sequence;

	/* Low-stock entries the last scan of the default STORE met: a hint for
	 * choosing one scan over a get per changed variant, never a cache. */
	size_t low_stock_seen;

	/* Batches committed through the backend's commit_release(), which
	 * unlocks the organization before the batch is durable: each takes a
	 * ticket when released and is answered (events announced) once
	 * tickets_done reaches it.  While any is unanswered, or after one
	 * failed (commit_failed), the caches above are not trusted.  Guarded
	 * by commit_lock; whoever waits for tickets_done to reach t waits on
	 * commit_cv[t % INV__COMMIT_CVS], so that each step wakes its own. */
	pthread_mutex_t commit_lock;
	pthread_cond_t commit_cv[INV__COMMIT_CVS];
	uint64_t tickets_out, tickets_done;
	int commit_failed;
	uint64_t commit_failures;   /* ever, for idempotent replays */
};

static inline const inv_backend_ops *inv__ops(const inv_org *org)
{
	return org->store->ops;
}

static inline const inv_location *inv__default_store(const inv_org *org)
{
	return &org->locations[INV__LOC_STORE];
}

/* 1 when `loc` is a location of `org`: one of org->locations, the only
 * location handles there are, so NULL and another organization's fail the
 * same comparison without reading *loc. */
static inline int inv__org_owns(const inv_org *org, const inv_location *loc)
{
	return (uintptr_t)loc - (uintptr_t)org->locations < sizeof(org->locations);
}

/*
 * The batch engine's counters, moved on under the write lock.  Handles keep
 * the low 32 bits of `gen` and the low 31 of `cache_epoch`: when those come
 * round to 0, every handle forgets its slot or cache (it has kept the
 * value of 2^32 or 2^31 steps ago) and the counter steps past 0, the value
 * of a handle with nothing assigned.
 */
void inv__org_handles_forget(inv_org *org, int slots);

static inline void inv__org_next_gen(inv_org *org)
{
	if ((uint32_t)++org->gen == 0) {
		inv__org_handles_forget(org, 1);
		org->gen++;
	}
}

static inline void inv__org_cache_stale(inv_org *org)
{
	if (((uint32_t)++org->cache_epoch & 0x7fffffffu) == 0) {
		inv__org_handles_forget(org, 0);
		org->cache_epoch++;
	}
}

/* Free an organization object (registry already updated). */
void inv__org_free(inv_org *org);

/* Take the write lock: INV_EBUSY from inside an event callback of `org`. */
int inv__org_lock_write(inv_org *org);
void inv__org_unlock_write(inv_org *org);

/* Begin a transaction on the org, recording a backend failure. */
int inv__org_begin(inv_org *org, int write, void **txn);
/* The organization's stored record, in a read transaction of its own. */
int inv__org_read(inv_org *org, inv_org_record *out);

/* Commit; on failure the backend's message is kept. */
int inv__org_commit(inv_org *org, void *txn);

/* The interned product (created when absent); INV_ENOMEM. */
int inv__org_product(inv__product **out, inv_org *org, const inv_uuid *product);

/* The location of `org` with this UUID, or NULL. */
const inv_location *inv__org_location(const inv_org *org, const inv_uuid *uuid);

/* Grow *buf (of *cap elements of `size`) to hold `need`; INV_ENOMEM. */
int inv__grow(void *buf, size_t *cap, size_t need, size_t size);

/* --------------------------------------------------------------- engine */

enum inv__batch_kind {
	INV__BATCH_APPLY = 1,
	INV__BATCH_SALE = 2,
	INV__BATCH_REFUND = 3,
	INV__BATCH_SET_BALANCE = 4
};

/* tracking.c uses the engine so that tracking changes are journaled and
 * announced by the same code as moves. */
int inv__apply_tracking(inv_org *org, const inv_uuid *product, int32_t action);

/* Read the tracking state of a product in a transaction (0 when never set). */
int inv__tracking_read(inv_org *org, void *txn, const inv_uuid *product, int32_t *tracked);

/* The tracked products, sorted by UUID bytes, in the caller's transaction;
 * free *out. */
int inv__tracking_list(inv_uuid **out, size_t *count, inv_org *org, void *txn);

/* ------------------------------------------------------------ low stock */

/* One write of inv__low_stock_write_many(). */
typedef struct inv__low_stock_write {
	const inv_location *location;
	inv_low_stock entry;     /* product, variant, level, alert */
	int remove;              /* delete the entry instead */
} inv__low_stock_write;

/* Set or delete `count` entries in one write transaction: all or none.
 * Arguments are checked first (index of the first bad one in the error). */
int inv__low_stock_write_many(inv_org *org, const inv__low_stock_write *writes, size_t count);

/* -------------------------------------------------------------- journal */

struct inv_journal_entry {
	inv_journal_entry_record rec;
};

/* ---------------------------------------------------------------- events */

/* Call `fn` with each event of `entry` (journal.h order). */
int inv__events_build(const inv_journal_entry *entry, const inv_uuid *org_uuid,
                      inv_event_fn fn, void *payload);

/* Deliver the events of a just-committed entry to the store's subscribers. */
void inv__events_dispatch(inv_store *store, const inv_uuid *org_uuid,
                          const inv_journal_entry *entry);

/* 1 when the calling thread is inside a subscriber callback. */
int inv__events_in_callback(void);

/* 1 when the store has at least one subscriber (a hint, read under lock). */
int inv__events_wanted(inv_store *store);

#endif /* ZINV_CORE_INT_H */
